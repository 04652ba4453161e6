"""offlineimap3 against the node over implicit TLS (the node's self-signed certificate as
its CA file, COMPRESS=DEFLATE on, up to three connections at once): a two-way sync of
two folders with a local Maildir, then flags and deletions made on each side synced
back; both sides agree afterwards (read back through imaplib and from the Maildir's file
names)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from server.node.node import Node
from tests.server.imap.clients import (
    add_to_maildir,
    certificate,
    deliver,
    login,
    maildir_files,
    maildir_state,
    message,
    need,
    run,
    server_state,
    set_maildir_flags,
)
from tests.server.imap.conftest import PASSWORD


def _config(node: Node, home: Path) -> Path:
    path = home / "offlineimaprc"
    path.write_text(
        "[general]\n"
        "accounts = fdbmail\n"
        f"metadata = {home / 'offlineimap-state'}\n"
        "\n"
        "[Account fdbmail]\n"
        "localrepository = local\n"
        "remoterepository = remote\n"
        "\n"
        "[Repository local]\n"
        "type = Maildir\n"
        f"localfolders = {home / 'Mail'}\n"
        "\n"
        "[Repository remote]\n"
        "type = IMAP\n"
        # a name the certificate carries (offlineimap matches DNS names, not addresses)
        "remotehost = localhost\n"
        f"remoteport = {node.ports['imaps']}\n"
        "remoteuser = alice\n"
        f"remotepass = {PASSWORD}\n"
        "ssl = yes\n"
        f"sslcacertfile = {certificate(node)}\n"
        "folderfilter = lambda name: name in ('INBOX', 'Projects')\n"
        "createfolders = False\n"
        "usecompression = yes\n"
        "maxconnections = 3\n")
    return path


async def test_offlineimap_two_way_sync_of_two_folders(node: Node, tmp_path: Path) -> None:
    """RFC 9051 sections 6.3.9 (LIST), 6.3.2 (SELECT), 6.3.12 (APPEND), 6.4.5 (FETCH),
    6.4.6 (STORE), 6.4.3 (EXPUNGE) and RFC 4315 (APPENDUID) as offlineimap uses them."""
    offlineimap = need("offlineimap", "offlineimap3")
    home = tmp_path / "home"
    home.mkdir()
    inbox = home / "Mail" / "INBOX"
    archive = home / "Mail" / "Projects"
    server_tags = [f"s{i}" for i in range(30)]
    local_tags = [f"l{i}" for i in range(10)]
    archived = [f"a{i}" for i in range(5)]

    def sync() -> None:
        run([offlineimap, "-c", str(_config(node, home)), "-o", "-u", "basic"], home)

    def scenario() -> None:
        deliver(node, server_tags)
        c = login(node)
        try:
            assert c.create("Projects")[0] == "OK"
            for tag in archived:
                assert c.append("Projects", r"(\Seen)", time.time(), message(tag))[0] == "OK"
        finally:
            c.logout()
        for n, tag in enumerate(local_tags):
            add_to_maildir(inbox, tag, n)

        sync()
        assert set(server_state(node)) == set(maildir_state(inbox)) == set(server_tags + local_tags)
        assert maildir_state(archive) == {tag: {"\\Seen"} for tag in archived}

        # flags and a deletion on the server
        c = login(node)
        try:
            c.select("INBOX")
            typ, data = c.search(None, "SUBJECT", '"message s1"')   # s1, s10..s19
            assert typ == "OK" and len(data[0].split()) == 11
            assert c.store(b",".join(data[0].split()).decode(), "+FLAGS", r"(\Flagged)")[0] == "OK"
            typ, data = c.search(None, "SUBJECT", '"message s29"')
            assert c.store(data[0].decode(), "+FLAGS", r"(\Deleted)")[0] == "OK"
            assert c.expunge()[0] == "OK"
        finally:
            c.logout()
        # flags and a deletion in the Maildir
        files = maildir_files(inbox)
        for tag in ("s2", "s3", "l2", "l3"):
            set_maildir_flags(files[tag], "RS")
        files["l9"].unlink()
        set_maildir_flags(maildir_files(archive)["a0"], "FS")

        sync()
        expected: dict[str, set[str]] = {tag: set() for tag in server_tags + local_tags}
        for tag in ["s1"] + [f"s1{i}" for i in range(10)]:
            expected[tag] = {"\\Flagged"}
        for tag in ("s2", "s3", "l2", "l3"):
            expected[tag] = {"\\Seen", "\\Answered"}
        del expected["s29"], expected["l9"]
        assert server_state(node) == expected
        assert maildir_state(inbox) == expected
        archive_expected = {tag: {"\\Seen"} for tag in archived}
        archive_expected["a0"] = {"\\Seen", "\\Flagged"}
        assert server_state(node, "Projects") == archive_expected
        assert maildir_state(archive) == archive_expected

    await asyncio.to_thread(scenario)
