"""OpenDKIM's ``opendkim-testmsg`` (Debian opendkim-tools, installed by ops/test) as
an independent DKIM verifier.  It asks the system resolver (resolv.conf, port 53), so
it runs in a network and mount namespace of its own (``unshare``): there loopback is
the only interface, resolv.conf names 127.0.0.1, and unbound answers the test's
records on 127.0.0.1:53 -- no query leaves the namespace."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.dns import Records, UnboundServer

PROBE = ("import dns.message, dns.query, time\n"
         "q = dns.message.make_query('probe.test.', 'A')\n"
         "for _ in range(200):\n"
         "    try:\n"
         "        dns.query.udp(q, '127.0.0.1', port=53, timeout=0.1); break\n"
         "    except Exception: time.sleep(0.05)\n")


def available() -> str | None:
    """None if the verifier can run here, else why not."""
    for tool in ("opendkim-testmsg", "unshare", "unbound", "ip"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed"
    return None


def _which(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


def opendkim_verify(message: bytes, records: Records, directory: Path) -> tuple[int, str]:
    """Verify ``message``'s DKIM signatures with opendkim-testmsg against
    ``records``: (exit status, its output); 0 means every signature verified."""
    directory.mkdir(parents=True, exist_ok=True)
    server = UnboundServer(records, directory, _which("unbound"))
    server.port = 53
    (directory / "unbound.conf").write_text(server._config())
    (directory / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (directory / "message.eml").write_bytes(message)
    (directory / "probe.py").write_text(PROBE)
    script = " && ".join([
        "ip link set lo up",
        f"mount --bind {shlex.quote(str(directory / 'resolv.conf'))} /etc/resolv.conf",
        f"({shlex.quote(_which('unbound'))} -d -c "
        f"{shlex.quote(str(directory / 'unbound.conf'))} >/dev/null 2>&1 & echo $! > "
        f"{shlex.quote(str(directory / 'unbound.pid'))})",
        f"{shlex.quote(sys.executable)} {shlex.quote(str(directory / 'probe.py'))}",
        f"{{ {shlex.quote(_which('opendkim-testmsg'))} < "
        f"{shlex.quote(str(directory / 'message.eml'))}; rc=$?; "
        f"kill $(cat {shlex.quote(str(directory / 'unbound.pid'))}); exit $rc; }}",
    ])
    done = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", script],
                          capture_output=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")
