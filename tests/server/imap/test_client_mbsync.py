"""mbsync (Debian isync) against the node over implicit TLS: a two-way sync of 500 messages
between the server's INBOX and a local Maildir, flags changed on both sides and deletions
on both sides, synced back; afterwards both sides hold the same messages with the same
flags (read back through imaplib and from the Maildir's file names)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.node.node import Node
from tests.server.imap.clients import (
    add_to_maildir,
    certificate,
    deliver,
    login,
    maildir_files,
    maildir_state,
    need,
    run,
    server_state,
    set_maildir_flags,
)
from tests.server.imap.conftest import PASSWORD

ON_SERVER = 300
IN_MAILDIR = 200


def _config(node: Node, home: Path, *, starttls: bool = False, patterns: str = "INBOX") -> Path:
    path = home / "mbsyncrc"
    path.write_text(
        "IMAPAccount fdbmail\n"
        "Host 127.0.0.1\n"
        f"Port {node.ports['imap' if starttls else 'imaps']}\n"
        "User alice\n"
        f'Pass "{PASSWORD}"\n'
        f"SSLType {'STARTTLS' if starttls else 'IMAPS'}\n"
        f"CertificateFile {certificate(node)}\n"
        "PipelineDepth 50\n"
        "\n"
        "IMAPStore remote\n"
        "Account fdbmail\n"
        "\n"
        "MaildirStore local\n"
        f"Path {home / 'Mail'}/\n"
        f"Inbox {home / 'Mail' / 'INBOX'}\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel inbox\n"
        "Far :remote:\n"
        "Near :local:\n"
        f"Patterns {patterns}\n"
        "Create Both\n"
        "Expunge Both\n"
        "Sync All\n"
        "SyncState *\n")
    return path


async def test_mbsync_two_way_sync_of_500_messages_with_flags_and_deletions(
    node: Node, tmp_path: Path,
) -> None:
    """RFC 9051 sections 6.3.2 (SELECT), 6.3.12 (APPEND), 6.4.6 (STORE), 6.4.3 (EXPUNGE),
    RFC 4315 (UIDPLUS: APPENDUID, UID EXPUNGE) as mbsync uses them: what one side changed
    shows on the other after the next sync, and nothing is lost or doubled."""
    mbsync = need("mbsync", "isync")
    home = tmp_path / "home"
    home.mkdir()
    inbox = home / "Mail" / "INBOX"
    server_tags = [f"s{i}" for i in range(ON_SERVER)]
    local_tags = [f"l{i}" for i in range(IN_MAILDIR)]

    def sync() -> None:
        conf = _config(node, home)
        run([mbsync, "-c", str(conf), "-a"], home)

    def scenario() -> None:
        deliver(node, server_tags)
        for n, tag in enumerate(local_tags):
            add_to_maildir(inbox, tag, n)

        # first sync: each side gets the other's messages
        sync()
        everything = set(server_tags) | set(local_tags)
        assert set(server_state(node)) == everything
        assert set(maildir_state(inbox)) == everything
        assert all(not flags for flags in server_state(node).values())

        # flags changed on the server (imaplib STORE) ...
        c = login(node)
        try:
            c.select("INBOX")
            uids = _uids_by_tag(c)
            for tag in server_tags[:40] + local_tags[:10]:
                assert c.uid("STORE", uids[tag], "+FLAGS.SILENT", r"(\Seen)")[0] == "OK"
            for tag in server_tags[20:30]:
                stored = c.uid("STORE", uids[tag], "+FLAGS.SILENT", r"(\Flagged \Answered)")
                assert stored[0] == "OK"
            # ... and deleted there: flagged \Deleted and expunged
            gone_on_server = server_tags[280:290] + local_tags[190:]
            for tag in gone_on_server:
                assert c.uid("STORE", uids[tag], "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
            assert c.expunge()[0] == "OK"
        finally:
            c.logout()

        # flags changed locally by renaming the files (Maildir info ":2,<letters>") ...
        files = maildir_files(inbox)
        for tag in server_tags[100:130] + local_tags[50:60]:
            set_maildir_flags(files[tag], "S")
        for tag in local_tags[60:70]:
            set_maildir_flags(files[tag], "FS")
        # ... and deleted locally: files removed, and files marked trashed (T)
        gone_locally = server_tags[200:210] + local_tags[100:105]
        for tag in gone_locally:
            files[tag].unlink()
        trashed_locally = server_tags[210:215]
        for tag in trashed_locally:
            set_maildir_flags(files[tag], "T")

        sync()
        expected = {tag: set() for tag in everything}
        for tag in server_tags[:40] + local_tags[:10] + server_tags[100:130] + local_tags[50:60]:
            expected[tag] = {"\\Seen"}
        for tag in server_tags[20:30]:
            expected[tag] = {"\\Seen", "\\Flagged", "\\Answered"}
        for tag in local_tags[60:70]:
            expected[tag] = {"\\Seen", "\\Flagged"}
        for tag in gone_on_server + gone_locally + trashed_locally:
            del expected[tag]
        assert len(expected) == ON_SERVER + IN_MAILDIR - 40
        assert server_state(node) == expected
        assert maildir_state(inbox) == expected

        # a third sync with no change on either side changes nothing
        sync()
        assert server_state(node) == expected
        assert maildir_state(inbox) == expected

    await asyncio.to_thread(scenario)


def _uids_by_tag(c) -> dict[str, str]:  # type: ignore[no-untyped-def]
    import re

    typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            tag = re.search(rb"<([^>]+)@remote\.test>", item[1])
            assert uid is not None and tag is not None, item
            out[tag.group(1).decode()] = uid.group(1).decode()
    return out


async def test_mbsync_over_starttls(node: Node, tmp_path: Path) -> None:
    """RFC 9051 section 6.2.1 (STARTTLS) and RFC 8314: on the plain port, where LOGIN is
    disabled until TLS is up, mbsync starts TLS first and then syncs both ways."""
    mbsync = need("mbsync", "isync")
    home = tmp_path / "home"
    home.mkdir()
    inbox = home / "Mail" / "INBOX"

    def scenario() -> None:
        deliver(node, ["s0", "s1"])
        add_to_maildir(inbox, "l0", 0)
        run([mbsync, "-c", str(_config(node, home, starttls=True)), "-a"], home)
        assert server_state(node) == maildir_state(inbox) == {"s0": set(), "s1": set(),
                                                              "l0": set()}

    await asyncio.to_thread(scenario)


async def test_mbsync_creates_mailboxes_both_ways(node: Node, tmp_path: Path) -> None:
    """RFC 9051 sections 6.3.9 (LIST), 6.3.4 (CREATE, with a hierarchy) and 6.3.12
    (APPEND): with every mailbox synced, a server mailbox appears as a Maildir folder and
    local folders (one nested) are created on the server with their messages."""
    mbsync = need("mbsync", "isync")
    home = tmp_path / "home"
    home.mkdir()
    mail = home / "Mail"

    def scenario() -> None:
        c = login(node)
        try:
            assert c.create("Lists")[0] == "OK"
        finally:
            c.logout()
        deliver(node, ["s0"])
        add_to_maildir(mail / "Projects", "p0", 0)
        add_to_maildir(mail / "Projects" / "Old", "p1", 1)
        run([mbsync, "-c", str(_config(node, home, patterns="*")), "-a"], home)
        assert maildir_state(mail / "Lists") == {}
        assert server_state(node, "Projects") == {"p0": set()}
        assert server_state(node, "Projects/Old") == {"p1": set()}
        assert server_state(node) == maildir_state(mail / "INBOX") == {"s0": set()}
        c = login(node)
        try:
            typ, data = c.list('""', "Projects*")
            assert typ == "OK"
            names = sorted(x.rsplit(b" ", 1)[1].strip(b'"') for x in data if x)
            assert names == [b"Projects", b"Projects/Old"], data
        finally:
            c.logout()

    await asyncio.to_thread(scenario)
