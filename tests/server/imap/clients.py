"""Shared by the real-client tests (mbsync, neomutt, offlineimap3, fetchmail): mail put on
the server through SMTP, the server's view of a mailbox read back through imaplib, a local
Maildir read back from its files, and the node's self-signed certificate for the clients
to trust."""

from __future__ import annotations

import email
import imaplib
import os
import re
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest

from server.node.node import Node
from tests.server.imap.conftest import PASSWORD, tls_client_context

# Maildir "info" flags (https://cr.yp.to/proto/maildir.html) and the IMAP system flags the
# clients map them to: Draft, Flagged, Passed (no IMAP flag), Replied, Seen, Trashed.
MAILDIR_TO_IMAP = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                   "T": "\\Deleted"}


def need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} (Debian package {package}) is not installed; ops/test installs it")
    return path


def run(argv: list[str], home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A client run to its end with its own HOME (nothing read from or written to the
    real one); a failure shows the client's own output."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "TERM": "dumb"}
    done = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (argv, done.returncode, done.stdout[-4000:], done.stderr[-4000:])
    print(done.stdout[-4000:], done.stderr[-4000:])   # shown with a failing test
    return done


def certificate(node: Node) -> Path:
    """The node's self-signed certificate (``<data_dir>/tls/selfsigned-cert.pem``)."""
    path = Path(node.config.data_dir) / "tls" / "selfsigned-cert.pem"
    assert path.exists(), path
    return path


def message(tag: str, to: str = "alice@example.test") -> bytes:
    return (f"From: someone@remote.test\r\nTo: {to}\r\nSubject: message {tag}\r\n"
            f"Message-ID: <{tag}@remote.test>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
            f"\r\nThe body of {tag}.\r\n").encode()


def deliver(node: Node, tags: list[str], to: str = "alice@example.test") -> None:
    """Through the node's MX, one connection; each 250 means stored."""
    with smtplib.SMTP("127.0.0.1", node.ports["mx"], timeout=60) as s:
        for tag in tags:
            s.sendmail("someone@remote.test", [to], message(tag, to))


def login(node: Node, user: str = "alice") -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL("127.0.0.1", node.ports["imaps"], ssl_context=tls_client_context(),
                          timeout=60)
    c.login(user, PASSWORD)
    return c


_MID = re.compile(rb"<([^>]+)@remote\.test>")


def server_state(node: Node, mailbox: str = "INBOX") -> dict[str, set[str]]:
    """tag (from the Message-ID) -> the message's flags, as the server reports them."""
    c = login(node)
    try:
        typ, data = c.select(mailbox, readonly=True)
        assert typ == "OK", data
        if int(data[0] or 0) == 0:
            return {}
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK", data
        out: dict[str, set[str]] = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = imaplib.ParseFlags(item[0])
            found = _MID.search(item[1])
            assert found is not None, item
            tag = found.group(1).decode()
            assert tag not in out, f"{tag} twice on the server"
            out[tag] = {f.decode() for f in flags} - {"\\Recent"}
        return out
    finally:
        c.logout()


def maildir_files(folder: Path) -> dict[str, Path]:
    """tag -> the file of each message in a Maildir folder (new/ and cur/)."""
    out: dict[str, Path] = {}
    for sub in ("new", "cur"):
        for path in (folder / sub).iterdir():
            msg = email.message_from_bytes(path.read_bytes())
            found = _MID.search((msg["Message-ID"] or "").encode())
            assert found is not None, path
            tag = found.group(1).decode()
            assert tag not in out, f"{tag} twice in {folder}"
            out[tag] = path
    return out


def maildir_flags(path: Path) -> set[str]:
    """The IMAP flags of a Maildir file, from the letters after ``:2,``."""
    if ":2," not in path.name:
        return set()
    letters = path.name.rsplit(":2,", 1)[1]
    return {MAILDIR_TO_IMAP[x] for x in letters if x in MAILDIR_TO_IMAP}


def maildir_state(folder: Path) -> dict[str, set[str]]:
    return {tag: maildir_flags(path) for tag, path in maildir_files(folder).items()}


def set_maildir_flags(path: Path, letters: str) -> Path:
    """Rename a Maildir file to carry ``letters`` (sorted, as the convention wants), in cur/."""
    base = path.name.rsplit(":2,", 1)[0]
    target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}"
    path.rename(target)
    return target


def add_to_maildir(folder: Path, tag: str, n: int) -> Path:
    """A message written into ``new/`` as a mail delivery agent would (tmp/, then renamed)."""
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    name = f"1765000000.P{os.getpid()}Q{n}.local.test"
    tmp = folder / "tmp" / name
    tmp.write_bytes(message(tag).replace(b"\r\n", b"\n"))
    target = folder / "new" / name
    tmp.rename(target)
    return target
