"""neomutt in batch mode against the node over implicit TLS (the node's self-signed
certificate as its CA file): keystrokes pushed from the muttrc read one message (shown in
the pager, then piped to a file) and move three others to another mailbox, then quit.
neomutt is a full-screen program, so it runs on a pseudo-terminal of its own; what it did
is read back through imaplib."""

from __future__ import annotations

import asyncio
import email
import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
from pathlib import Path

from server.node.node import Node
from tests.server.imap.clients import certificate, deliver, login, need, server_state
from tests.server.imap.conftest import PASSWORD

KEYS = (
    "<limit>~i s3@<enter>"                      # the one message s3 ...
    "<display-message><exit>"                   # ... read in the pager (sets \\Seen)
    "<pipe-message>cat > {read}<enter>"         # ... and piped whole to a file
    "<limit>~A<enter>"
    "<tag-pattern>~s mv<enter>"                 # the three "message mv*" ...
    "<tag-prefix><save-message>=Projects<enter>"  # ... saved to Projects (and deleted)
    "<sync-mailbox>"                            # expunged from INBOX, flags stored
    "<quit>"
)


def _muttrc(node: Node, home: Path, keys: str | None = None, extra: str = "") -> Path:
    if keys is None:
        keys = KEYS.format(read=home / "read.eml")
    path = home / "muttrc"
    path.write_text(
        # a name the certificate carries: neomutt checks the host name against it
        f'set folder = "imaps://alice@localhost:{node.ports["imaps"]}/"\n'
        f'set imap_pass = "{PASSWORD}"\n'
        'set spoolfile = "+INBOX"\n'
        f'set ssl_ca_certificates_file = "{certificate(node)}"\n'
        f'set certificate_file = "{home / "certificates"}"\n'
        "set ssl_force_tls = yes\n"
        'set record = ""\n'
        "set confirmappend = no\n"
        "set delete = yes\n"
        "set quit = yes\n"
        "set wait_key = no\n"
        "set move = no\n"
        "set mark_old = no\n"
        "set mail_check_stats = no\n"
        "set imap_passive = yes\n"
        f'set tmpdir = "{home}"\n'
        f"{extra}"
        f'push "{keys}"\n')
    return path


def _run_on_a_terminal(argv: list[str], home: Path, timeout: float = 60) -> str:
    """``argv`` on a new 80x24 pseudo-terminal until it exits; the screen output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "TERM": "xterm", "LANG": "C.UTF-8"}
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=home,
                            start_new_session=True)
    os.close(slave)
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"neomutt did not finish: {bytes(screen[-3000:])!r}") from None
    finally:
        reader.join(5)
        os.close(master)
    assert code == 0, (code, bytes(screen[-3000:]))
    return screen.decode(errors="replace")


async def test_neomutt_reads_and_moves_messages(node: Node, tmp_path: Path) -> None:
    """RFC 9051 sections 6.4.5 (FETCH BODY[] sets \\Seen), 6.4.7 (COPY) or RFC 6851 (MOVE),
    6.4.6 (STORE \\Deleted) and 6.4.3 (EXPUNGE), as neomutt uses them."""
    neomutt = need("neomutt", "neomutt")
    home = tmp_path / "home"
    home.mkdir()
    tags = [f"s{i}" for i in range(6)] + ["mv0", "mv1", "mv2"]

    def scenario() -> None:
        deliver(node, tags)
        c = login(node)
        try:
            assert c.create("Projects")[0] == "OK"
        finally:
            c.logout()

        _run_on_a_terminal([neomutt, "-n", "-F", str(_muttrc(node, home))], home)

        read = email.message_from_bytes((home / "read.eml").read_bytes())
        assert read["Message-ID"] == "<s3@remote.test>"
        assert read.get_payload().strip() == "The body of s3."
        expected = {tag: set() for tag in tags if not tag.startswith("mv")}
        expected["s3"] = {"\\Seen"}
        assert server_state(node) == expected
        assert server_state(node, "Projects") == {"mv0": set(), "mv1": set(), "mv2": set()}

    await asyncio.to_thread(scenario)


QRESYNC_KEYS = (
    "<tag-pattern>~A<enter>"                        # every message neomutt believes in ...
    "<tag-prefix><pipe-message>grep -i message-id: >> {ids}<enter>"   # ... fetched whole
    "<untag-pattern>~A<enter>"
    "<tag-pattern>~F<enter>"                        # the flagged ones ...
    "<tag-prefix><save-message>=Projects<enter>"    # ... moved to Projects
    "<sync-mailbox>"
    "<quit>"
)


async def test_neomutt_header_cache_and_qresync_see_changes_made_meanwhile(
    node: Node, tmp_path: Path,
) -> None:
    """RFC 7162 sections 3.1.4 (CHANGEDSINCE), 3.2.5 (SELECT after ENABLE QRESYNC) and
    3.2.6 (UID FETCH ... VANISHED): neomutt opens the mailbox from its header cache and
    asks only what changed since; a flag set, a message expunged and one delivered
    meanwhile are all seen (the flagged message is moved, the expunged one not fetched)."""
    neomutt = need("neomutt", "neomutt")
    home = tmp_path / "home"
    home.mkdir()
    cache = (f'set header_cache = "{home / "cache"}"\n'
             "set imap_condstore = yes\nset imap_qresync = yes\n")

    def scenario() -> None:
        deliver(node, ["s0", "s1", "s2"])
        c = login(node)
        try:
            assert c.create("Projects")[0] == "OK"
        finally:
            c.logout()
        _run_on_a_terminal([neomutt, "-n", "-F", str(_muttrc(node, home, "<quit>", cache))],
                           home)
        assert (home / "cache").exists()

        c = login(node)
        try:
            c.select("INBOX")
            assert c.uid("STORE", "1", "+FLAGS.SILENT", r"(\Flagged)")[0] == "OK"
            assert c.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
            assert c.expunge()[0] == "OK"
        finally:
            c.logout()
        deliver(node, ["s3"])

        ids = home / "ids"
        keys = QRESYNC_KEYS.format(ids=ids)
        _run_on_a_terminal([neomutt, "-n", "-F", str(_muttrc(node, home, keys, cache))], home)
        seen = sorted(line.split("<", 1)[1].split("@", 1)[0]
                      for line in ids.read_text().splitlines())
        assert seen == ["s0", "s2", "s3"]
        assert server_state(node, "Projects") == {"s0": {"\\Flagged"}}
        assert server_state(node) == {"s2": set(), "s3": set()}

    await asyncio.to_thread(scenario)
