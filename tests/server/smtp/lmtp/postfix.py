"""A private Postfix instance for tests: its own config, queue and data folders under a
fresh temporary folder, smtpd on a free loopback port, mail for the test domains handed to
an LMTP server.  No DNS, no system MTA touched, stopped (and killed if need be) at the end.

Postfix's daemons start as root and drop to ``mail_owner`` (``postfix``); nothing is
chrooted.  The instance folder is made world-searchable (pytest's own temporary folders
are 0700, which the ``postfix`` user could not traverse).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"

# (service, type, private, unpriv, chroot, wakeup, maxproc, command): what a relay to LMTP
# needs; no chroot (the instance is not laid out as a chroot).
_SERVICES = """\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def unavailable() -> str | None:
    """Why Postfix cannot run here, or None."""
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (ops/test installs it: install_postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master process runs as root)"
    try:
        import pwd
        pwd.getpwnam("postfix")
    except KeyError:
        return "no 'postfix' user (the Debian package creates it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postfix:
    root: Path
    smtp_port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=60)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` shows it: one object per message."""
        out = subprocess.run([POSTQUEUE, "-c", str(self.config_dir), "-j"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """Deliver the deferred mail now (``postqueue -f``)."""
        subprocess.run([POSTQUEUE, "-c", str(self.config_dir), "-f"], capture_output=True,
                       text=True, timeout=60, check=True)

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def main_cf(root: Path, lmtp_target: str, domains: list[str]) -> str:
    return f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = mta.postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_reject_unlisted_recipient = no
virtual_mailbox_domains = {", ".join(domains)}
virtual_transport = lmtp:{lmtp_target}
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_tls_security_level = none
smtp_tls_security_level = none
lmtp_tls_security_level = none
biff = no
append_dot_mydomain = no
notify_classes =
delay_warning_time = 0
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
"""


def _wait_listening(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def running_postfix(lmtp_target: str, domains: list[str]) -> Iterator[Postfix]:
    """A started instance relaying ``domains`` to ``lmtp_target`` (``inet:host:port`` or
    ``unix:/path``); stopped and removed at the end, also on failure."""
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="fdbmail-postfix-"))
    root.chmod(0o755)
    postfix = Postfix(root, free_port())
    try:
        postfix.config_dir.mkdir()
        (root / "queue").mkdir()
        (root / "data").mkdir()
        shutil.chown(root / "data", "postfix", "postfix")
        (postfix.config_dir / "main.cf").write_text(main_cf(root, lmtp_target, domains))
        (postfix.config_dir / "master.cf").write_text(
            f"127.0.0.1:{postfix.smtp_port} inet n - n - - smtpd\n" + _SERVICES)
        started = postfix.run("start")
        if started.returncode != 0:
            pytest.fail(f"postfix start failed ({started.returncode}): {started.stderr}\n"
                        f"{postfix.log()}")
        if not _wait_listening(postfix.smtp_port, time.monotonic() + 30):
            pytest.fail(f"postfix smtpd did not listen on {postfix.smtp_port}:\n{postfix.log()}")
        yield postfix
    finally:
        _stop(postfix)
        shutil.rmtree(root, ignore_errors=True)


def _stop(postfix: Postfix) -> None:
    pid = postfix.master_pid()
    postfix.run("stop")
    if pid is None:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)     # the master leads its daemons' process group
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
