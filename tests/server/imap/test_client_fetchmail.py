"""fetchmail against the node over implicit TLS (the node's self-signed certificate trusted
through sslcertfile, names checked): messages fetched and handed to a local delivery agent
(a script writing one file per message), kept on the server marked \\Seen, or deleted from
it once delivered."""

from __future__ import annotations

import asyncio
import email
import stat
from pathlib import Path

from server.node.node import Node
from tests.server.imap.clients import certificate, deliver, need, run, server_state
from tests.server.imap.conftest import PASSWORD

MDA = """#!/bin/sh
# one file per message: tmp name first, renamed when complete
cat > "{sink}/.tmp.$$" && mv "{sink}/.tmp.$$" "{sink}/msg.$$"
"""


def _rcfile(node: Node, home: Path, mda: Path, *, keep: bool, starttls: bool = False) -> Path:
    path = home / "fetchmailrc"
    # implicit TLS ("ssl"), or STARTTLS demanded on the plain port ("sslproto tls1.2+")
    tls = "sslproto 'tls1.2+'" if starttls else "ssl"
    path.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 with proto IMAP port {node.ports['imap' if starttls else 'imaps']}\n"
        f'  user "alice" there with password "{PASSWORD}" is "alice" here\n'
        f'  {tls} sslcertck sslcertfile "{certificate(node)}"\n'
        # the certificate names the node's hostname (fetchmail checks DNS names only)
        '  sslcommonname "imap.test"\n'
        f'  mda "{mda}"\n'
        f"  {'keep' if keep else 'nokeep'}\n")
    path.chmod(0o600)   # fetchmail refuses a password file others can read
    return path


def _sink(folder: Path) -> dict[str, bytes]:
    """tag (from the Message-ID) -> the body of each message the delivery agent got."""
    out = {}
    for path in folder.glob("msg.*"):
        msg = email.message_from_bytes(path.read_bytes())
        tag = msg["Message-ID"].strip("<>").split("@")[0]
        assert tag not in out, f"{tag} delivered twice"
        payload = msg.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[tag] = payload
    return out


async def test_fetchmail_fetches_over_tls_keeps_then_deletes(node: Node, tmp_path: Path) -> None:
    """RFC 9051 sections 6.3.2 (SELECT), 6.4.5 (FETCH: BODY[] sets \\Seen, section 6.4.5),
    6.4.6 (STORE \\Deleted) and 6.4.3 (EXPUNGE), as fetchmail drives them."""
    fetchmail = need("fetchmail", "fetchmail")
    home = tmp_path / "home"
    sink = home / "sink"
    sink.mkdir(parents=True)
    mda = home / "mda"
    mda.write_text(MDA.format(sink=sink))
    mda.chmod(stat.S_IRWXU)
    first = [f"f{i}" for i in range(20)]
    second = [f"g{i}" for i in range(5)]

    def scenario() -> None:
        deliver(node, first)
        # keep: every message delivered locally, left on the server and marked read
        run([fetchmail, "-f", str(_rcfile(node, home, mda, keep=True)), "--nodetach"], home)
        got = _sink(sink)
        assert set(got) == set(first)
        assert all(got[tag] == f"The body of {tag}.\r\n".encode()
                   or got[tag] == f"The body of {tag}.\n".encode() for tag in first)
        assert server_state(node) == {tag: {"\\Seen"} for tag in first}

        # new mail only (fetchmail takes the unseen ones), deleted once delivered
        deliver(node, second)
        run([fetchmail, "-f", str(_rcfile(node, home, mda, keep=False)), "--nodetach"], home)
        got = _sink(sink)
        assert set(got) == set(first) | set(second)
        assert server_state(node) == {tag: {"\\Seen"} for tag in first}

    await asyncio.to_thread(scenario)


async def test_fetchmail_over_starttls(node: Node, tmp_path: Path) -> None:
    """RFC 9051 section 6.2.1 (STARTTLS): on the plain port fetchmail starts TLS, checks
    the certificate, logs in and fetches."""
    fetchmail = need("fetchmail", "fetchmail")
    home = tmp_path / "home"
    sink = home / "sink"
    sink.mkdir(parents=True)
    mda = home / "mda"
    mda.write_text(MDA.format(sink=sink))
    mda.chmod(stat.S_IRWXU)

    def scenario() -> None:
        deliver(node, ["t0", "t1", "t2"])
        rc = _rcfile(node, home, mda, keep=False, starttls=True)
        run([fetchmail, "-f", str(rc), "--nodetach"], home)
        assert set(_sink(sink)) == {"t0", "t1", "t2"}
        assert server_state(node) == {}

    await asyncio.to_thread(scenario)
