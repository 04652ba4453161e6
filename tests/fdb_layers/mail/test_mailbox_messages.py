"""Messages: append, copy, move, keywords, expunge, reads, quota, summaries.

Contract tests on sqlite and sqlite under fault injection; writes run twice."""

from __future__ import annotations

import pytest

from fdb_layers.blobs import refs as blobrefs

from fdb_layers.mail import accounts, mailboxes, quota
from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.mail.keywords import keyword_from_imap, keyword_to_imap, normalise_keywords
from fdb_layers.mail.errors import BatchTooLarge, EmailExists, MailboxNotFound, QuotaExceeded
from fdb_layers.mail.layout import (
    SUMMARY_CHUNK,
    account_keys,
    decode_received,
    pack,
    pack_int,
    received_thread_key,
)
from fdb_layers.mail.queries import (
    get_email,
    get_message,
    get_summary,
    list_changed_since,
    list_messages,
    list_uids,
    list_vanished,
    query_mailbox,
    query_mailbox_threads,
)
from fdb_layers.mail.messages import (
    MAX_BATCH,
    append_email,
    RoleMailbox,
    copy_messages,
    deliver_email,
    destroy_email,
    email_id_for,
    expunge_messages,
    move_messages,
    set_email_keywords,
    set_email_mailboxes,
    store_keywords,
)
from fdb_layers.mail.threads import list_thread

from .fixtures import ACCOUNT, blob_id, new_email, twice



async def setup(engine: Engine, n: int = 0, box: str = "inbox") -> list[str]:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    ids = []
    for i in range(n):
        got = await transact(engine, append_email, ACCOUNT, box, new_email(i), delivery_id=f"d{i}")
        ids.append(got.email_id)
    return ids


async def refcount(engine: Engine, n: int) -> int:
    async def count(tr: Transaction) -> int:
        return await blobrefs.get_blob_refcount(tr, blob_id(n))

    return await transact(engine, count)


def test_keyword_mapping() -> None:
    assert keyword_from_imap("\\Seen") == "$seen"
    assert keyword_from_imap("\\DELETED") == "$deleted"
    assert keyword_from_imap("$Forwarded") == "$forwarded"
    assert keyword_to_imap("$flagged") == "\\Flagged"
    assert keyword_to_imap("$junk") == "$junk"
    assert normalise_keywords(["B", "a", "b"]) == ("a", "b")
    with pytest.raises(ValueError):
        keyword_from_imap("\\Recent")


async def test_append_is_idempotent_by_delivery_id(engine: Engine) -> None:
    await setup(engine)
    e = new_email(1, keywords=("$Seen",))
    first = await twice(engine, append_email, ACCOUNT, "inbox", e, delivery_id="x1")
    again = await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="x1")
    assert again.created is False
    assert (again.email_id, again.uid, again.modseq) == (first.email_id, first.uid, first.modseq)
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert (status.messages, status.unseen, status.size, status.uidnext) == (1, 0, 1000, 2)
    assert await refcount(engine, 1) == 1
    usage = await transact(engine, quota.get_usage, ACCOUNT)
    assert (usage.bytes, usage.messages) == (1000, 1)
    with pytest.raises(EmailExists):  # same email id, other delivery id
        await transact(engine, append_email, ACCOUNT, "inbox", e, delivery_id="x2")


async def test_uids_increase_and_list(engine: Engine) -> None:
    ids = await setup(engine, 5)
    msgs = await transact(engine, list_messages, ACCOUNT, "inbox")
    assert [m.uid for m in msgs] == [1, 2, 3, 4, 5]
    assert [m.email_id for m in msgs] == ids
    assert all(a.modseq < b.modseq for a, b in zip(msgs, msgs[1:], strict=False))
    newest = await transact(engine, list_messages, ACCOUNT, "inbox", limit=2, reverse=True)
    assert [m.uid for m in newest] == [5, 4]
    assert [m.uid for m in await transact(engine, list_messages, ACCOUNT, "inbox",
                                          first_uid=2, last_uid=3)] == [2, 3]
    assert await transact(engine, list_uids, ACCOUNT, "inbox") == [1, 2, 3, 4, 5]
    assert await transact(engine, list_uids, ACCOUNT, "inbox", after_uid=2, limit=2) == [3, 4]
    m3 = await transact(engine, get_message, ACCOUNT, "inbox", 3)
    assert m3 is not None and m3.email_id == ids[2]
    assert await transact(engine, get_message, ACCOUNT, "inbox", 9) is None
    query = await transact(engine, query_mailbox, ACCOUNT, "inbox", limit=3)
    assert query == [(ids[4], 5), (ids[3], 4), (ids[2], 3)]
    assert await transact(engine, query_mailbox, ACCOUNT, "inbox", position=3, limit=5,
                          newest_first=False) == [(ids[3], 4), (ids[4], 5)]


async def test_listed_messages_follow_every_change(engine: Engine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """list_messages reuses the Message it made from a record while the record's bytes
    are the same: a keyword change, an expunge and a message past the bound (3 kept
    here) are each seen at once."""
    from fdb_layers.mail import queries

    monkeypatch.setattr(queries, "MESSAGES_KEPT", 3)
    monkeypatch.setattr(queries, "_MESSAGES", {})
    ids = await setup(engine, 5)
    first = await transact(engine, list_messages, ACCOUNT, "inbox")
    assert [(m.uid, m.email_id, m.keywords) for m in first] == \
        [(u, ids[u - 1], ()) for u in range(1, 6)]
    await transact(engine, store_keywords, ACCOUNT, "inbox", [2, 4], add=["$seen"])
    await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=[3], only_deleted=False,
                   op_id=None)
    for _ in range(2):
        again = await transact(engine, list_messages, ACCOUNT, "inbox")
        assert [(m.uid, m.keywords) for m in again] == \
            [(1, ()), (2, ("$seen",)), (4, ("$seen",)), (5, ())]
        before = {m.uid: m.modseq for m in first}
        assert [m.modseq > before[m.uid] for m in again] == [False, True, True, False]
        assert len(queries._MESSAGES) <= 3


async def test_query_mailbox_threads_keeps_the_first_email_of_each_thread(
        engine: Engine) -> None:
    """JMAP collapseThreads on the received-at index, read in chunks smaller than the
    page so that a thread's emails fall in different chunks."""
    await setup(engine)
    roots = [0, 1, 0, 3, 1, 3, 6, 0, 6]
    ids = []
    for i, root in enumerate(roots):
        refs = (f"<m{root}@example.org>",) if root != i else ()
        got = await transact(engine, append_email, ACCOUNT, "inbox",
                             new_email(i, subject=f"s{root}", references=refs),
                             delivery_id=f"d{i}")
        ids.append(got.email_id)
    threads = [await transact(engine, get_email, ACCOUNT, ids[i]) for i in (0, 2, 7)]
    assert len({e.thread_id for e in threads if e is not None}) == 1

    async def page(**kw: object) -> list[str]:
        return await transact(engine, query_mailbox_threads, ACCOUNT, "inbox", chunk=2,
                              **kw)  # type: ignore[arg-type]
    assert await page() == [ids[8], ids[7], ids[5], ids[4]]
    assert await page(newest_first=False) == [ids[0], ids[1], ids[3], ids[6]]
    assert await page(position=1, limit=2) == [ids[7], ids[5]]
    assert await page(position=3, limit=5, newest_first=False) == [ids[6]]
    assert await page(position=9) == []
    assert await page(limit=0) == []


async def test_query_mailbox_threads_reads_entries_of_every_layout(engine: Engine) -> None:
    """Layout 1.4 keeps each email's thread id in its received-at entry (a collapsed
    listing reads no email record); entries written before it, ``(uid,)``, still give
    the same listing, mixed with new ones, and a copy's entry names the thread too."""
    await setup(engine)
    roots = [0, 1, 0, 1, 4, 0]
    ids = []
    for i, root in enumerate(roots):
        refs = (f"<m{root}@example.org>",) if root != i else ()
        got = await transact(engine, append_email, ACCOUNT, "inbox",
                             new_email(i, subject=f"s{root}", references=refs),
                             delivery_id=f"d{i}")
        ids.append(got.email_id)
    await twice(engine, copy_messages, ACCOUNT, "inbox", [1, 2, 3], "archive")
    keys = account_keys(ACCOUNT)

    async def entries(tr: Transaction) -> list[tuple[bytes, int, str | None]]:
        rows = await tr.get_range(*keys.received.range())
        return [(r.key, *decode_received(r.value)) for r in rows]

    stored = await transact(engine, entries)
    assert len(stored) == 9
    for uid in (0, 1, 300, 2**40):  # the packed thread id, compared undecoded
        assert received_thread_key(pack((uid, "T\x00é"))) == pack(("T\x00é",))
        assert received_thread_key(pack_int(uid)) is None
    for key, uid, thread_id in stored:
        email = await transact(engine, get_email, ACCOUNT, str(keys.received.unpack(key)[2]))
        assert email is not None and thread_id == email.thread_id and uid in \
            email.mailboxes.values()

    async def page(**kw: object) -> list[str]:
        return await transact(engine, query_mailbox_threads, ACCOUNT, "inbox", chunk=2,
                              **kw)  # type: ignore[arg-type]
    expected = [ids[5], ids[4], ids[3]]
    assert await page() == expected
    assert await page(newest_first=False) == [ids[0], ids[1], ids[4]]

    async def downgrade(tr: Transaction) -> None:  # every other entry as layout 1.3 wrote it
        for key, uid, _ in stored[::2]:
            tr.set(key, pack_int(uid))
    await transact(engine, downgrade)
    assert [t for _, _, t in await transact(engine, entries)][:2] == [
        None, stored[1][2]]
    assert await page() == expected
    assert await page(newest_first=False) == [ids[0], ids[1], ids[4]]
    assert await page(position=1, limit=1) == [ids[4]]
    assert await transact(engine, query_mailbox, ACCOUNT, "inbox", limit=2) == [
        (ids[5], 6), (ids[4], 5)]


async def test_quota(engine: Engine) -> None:
    await setup(engine)
    await transact(engine, append_email, ACCOUNT, "inbox", new_email(1), delivery_id="q1",
                   quota=1500)
    with pytest.raises(QuotaExceeded):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(2), delivery_id="q2",
                       quota=1500)
    assert (await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")).messages == 1


async def test_quota_zero_is_unlimited(engine: Engine) -> None:
    # as in the directory (Principal.quota): 0 means no limit
    await setup(engine)
    for i in range(3):
        await twice(engine, append_email, ACCOUNT, "inbox", new_email(i), delivery_id=f"q{i}",
                    quota=0)
    assert (await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")).messages == 3


async def test_deliver_email_checks_its_hint(engine: Engine) -> None:
    appended, inbox = await twice(engine, deliver_email, ACCOUNT, new_email(0), delivery_id="d0")
    assert inbox is not None and inbox.mailbox_id == "inbox" and appended.uid == 1
    got, same = await twice(engine, deliver_email, ACCOUNT, new_email(1), delivery_id="d1",
                            hint=inbox)
    assert same == inbox and got.uid == 2
    # stale hints: another role's mailbox, a deleted mailbox, a mailbox that never was
    await transact(engine, mailboxes.delete_mailbox, ACCOUNT, "trash")
    for i, stale in enumerate([RoleMailbox("junk", inbox.storage), RoleMailbox("trash", 3),
                               RoleMailbox("nope", inbox.storage)], start=2):
        got, found = await twice(engine, deliver_email, ACCOUNT, new_email(i),
                                 delivery_id=f"d{i}", hint=stale)
        assert found == inbox and got.mailbox_id == "inbox" and got.uid == i + 1
    got, trash = await twice(engine, deliver_email, ACCOUNT, new_email(9), delivery_id="d9",
                             role="trash", hint=RoleMailbox("trash", 3))
    assert trash is not None and trash.mailbox_id != "trash" and got.mailbox_id == trash.mailbox_id


async def test_large_summary_is_split(engine: Engine) -> None:
    await setup(engine)
    big = bytes(range(256)) * 1000  # 256,000 bytes: three values
    got = await transact(engine, append_email, ACCOUNT, "inbox", new_email(1, summary=big),
                         delivery_id="s")
    assert await transact(engine, get_summary, ACCOUNT, got.email_id) == big
    assert len(big) > 2 * SUMMARY_CHUNK


async def test_store_keywords_and_unchangedsince(engine: Engine) -> None:
    ids = await setup(engine, 3)
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    res = await twice(engine, store_keywords, ACCOUNT, "inbox", [1, 2, 7], add=["$seen", "work"])
    assert [(u, k) for u, _, k in res.messages] == [(1, ("$seen", "work")), (2, ("$seen", "work"))]
    after = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert after.unseen == 1 and after.highestmodseq > status.highestmodseq
    changed = await transact(engine, list_changed_since, ACCOUNT, "inbox", status.highestmodseq)
    assert [m.uid for m in changed] == [1, 2]
    assert changed[0].keywords == ("$seen", "work")
    # UNCHANGEDSINCE (RFC 7162 section 3.1.3): uid 1 changed after status.highestmodseq
    res = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 3], add=["$flagged"],
                         unchanged_since=status.highestmodseq, op_id="c1")
    assert res.modified == (1,)
    assert [(u, k) for u, _, k in res.messages] == [(1, ("$seen", "work")), (3, ("$flagged",))]
    # RFC 7162 section 3.1.3 (example 10): a message changed after UNCHANGEDSINCE fails
    # also when the store would change nothing, and UNCHANGEDSINCE 0 always fails
    again = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 3], add=["$flagged"],
                           unchanged_since=0, op_id="c2")
    assert again.modified == (1, 3) and again.messages[1] == res.messages[1]
    noop = await transact(engine, store_keywords, ACCOUNT, "inbox", [1], add=["work"],
                          unchanged_since=status.highestmodseq, op_id="c3")
    assert noop.modified == (1,)
    await twice(engine, store_keywords, ACCOUNT, "inbox", [1], replace=["$answered"])
    m1 = await transact(engine, get_message, ACCOUNT, "inbox", 1)
    assert m1 is not None and m1.keywords == ("$answered",)
    assert (await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")).unseen == 2
    email = await transact(engine, get_email, ACCOUNT, ids[0])
    assert email is not None and email.keywords == ("$answered",)
    with pytest.raises(BatchTooLarge):
        await transact(engine, store_keywords, ACCOUNT, "inbox", list(range(MAX_BATCH + 1)),
                       add=["x"])


async def test_conditional_store_keeps_its_modified_list_on_a_retry(engine: Engine) -> None:
    """A retry after an unknown commit result of a conditional store (the same op id)
    reports what the first run reported: the messages it stored do not then fail
    UNCHANGEDSINCE on their own new modseq, and it changes nothing more."""
    await setup(engine, 3)
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    await transact(engine, store_keywords, ACCOUNT, "inbox", [2], add=["$seen"])
    first = await twice(engine, store_keywords, ACCOUNT, "inbox", [1, 2, 3], add=["$flagged"],
                        unchanged_since=status.highestmodseq, op_id="op1.0")
    assert first.modified == (2,)
    again = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2, 3],
                           add=["$flagged"], unchanged_since=status.highestmodseq,
                           op_id="op1.0")
    assert again == first
    # another store (another op id) fails for every message the first one changed
    other = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2, 3],
                           add=["$flagged"], unchanged_since=status.highestmodseq,
                           op_id="op2.0")
    assert other.modified == (1, 2, 3)
    with pytest.raises(ValueError):
        await transact(engine, store_keywords, ACCOUNT, "inbox", [1], add=["x"],
                       unchanged_since=status.highestmodseq)


async def test_a_retried_store_still_knows_its_own_change(engine: Engine) -> None:
    """A store run again under its op id (the retry after an unknown commit result whose
    first run committed) finds its change done, writes nothing, and still names the first
    run's modseq in ``written``, so that IMAP STORE .SILENT announces nothing for it (RFC
    9051 section 6.4.6); a message another store changed in between is not its own."""
    await setup(engine, 3)
    first = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2],
                           add=["$deleted"], op_id="s1.0")
    (mine,) = first.written
    assert [(u, m) for u, m, _ in first.messages] == [(1, mine), (2, mine)]
    other = await transact(engine, store_keywords, ACCOUNT, "inbox", [2], add=["$seen"])
    theirs = other.messages[0][1]
    assert theirs > mine
    again = await twice(engine, store_keywords, ACCOUNT, "inbox", [1, 2], add=["$deleted"],
                        op_id="s1.0")
    assert again.written == (mine,)
    assert [(u, m) for u, m, _ in again.messages] == [(1, mine), (2, theirs)]
    # without an op id, or under another one, a store that changes nothing owns nothing
    for op_id in (None, "s2.0"):
        plain = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2],
                               add=["$deleted"], op_id=op_id)
        assert plain.written == () and plain.messages == again.messages
    # a store that changes a message owns the modseq it wrote at
    third = await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2], add=["$flagged"],
                           op_id="s3.0")
    assert len(third.written) == 1 and {m for _, m, _ in third.messages} == set(third.written)


async def test_keywords_are_per_email_across_mailboxes(engine: Engine) -> None:
    ids = await setup(engine, 1)
    await transact(engine, copy_messages, ACCOUNT, "inbox", [1], "archive")
    await twice(engine, set_email_keywords, ACCOUNT, ids[0], ["$seen"])
    for box in ("inbox", "archive"):
        assert (await transact(engine, mailboxes.get_status, ACCOUNT, box)).unseen == 0
        msgs = await transact(engine, list_messages, ACCOUNT, box)
        assert msgs[0].keywords == ("$seen",)


async def test_store_in_one_mailbox_keeps_the_others_deleted_flag(engine: Engine) -> None:
    """IMAP STORE (RFC 9051 section 6.4.6) in one mailbox: the keywords are the email's, in
    every mailbox; \\Deleted is each membership's own (the membership the STORE read is used
    as it was read, the other mailbox's is read for its own \\Deleted)."""
    ids = await setup(engine, 2)
    await transact(engine, copy_messages, ACCOUNT, "inbox", [1, 2], "archive")
    await twice(engine, store_keywords, ACCOUNT, "archive", [1], add=["$deleted"])
    res = await twice(engine, store_keywords, ACCOUNT, "inbox", [1, 2],
                      add=["$flagged", "$seen"])
    assert [(u, k) for u, _, k in res.messages] == [(1, ("$flagged", "$seen")),
                                                   (2, ("$flagged", "$seen"))]
    archive = {m.uid: m.keywords for m in await transact(engine, list_messages, ACCOUNT,
                                                         "archive")}
    assert archive == {1: ("$deleted", "$flagged", "$seen"), 2: ("$flagged", "$seen")}
    res = await twice(engine, store_keywords, ACCOUNT, "inbox", [2], replace=["$deleted"])
    assert [(u, k) for u, _, k in res.messages] == [(2, ("$deleted",))]
    inbox = {m.uid: m.keywords for m in await transact(engine, list_messages, ACCOUNT,
                                                       "inbox")}
    archive = {m.uid: m.keywords for m in await transact(engine, list_messages, ACCOUNT,
                                                         "archive")}
    assert inbox == {1: ("$flagged", "$seen"), 2: ("$deleted",)}
    assert archive == {1: ("$deleted", "$flagged", "$seen"), 2: ()}
    for box, unseen in (("inbox", 1), ("archive", 1)):
        assert (await transact(engine, mailboxes.get_status, ACCOUNT, box)).unseen == unseen
    email = await transact(engine, get_email, ACCOUNT, ids[1])
    assert email is not None and email.keywords == ()


async def test_highest_modseq_alone_is_the_status_figure(engine: Engine) -> None:
    """get_highest_modseq is get_status's HIGHESTMODSEQ (RFC 7162 section 3.1.2.1) with
    one counter read; a missing mailbox is MailboxNotFound, as for get_status."""
    await setup(engine, 2)
    for keyword in ("$seen", "work"):
        st = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
        assert await transact(engine, mailboxes.get_highest_modseq, ACCOUNT, "inbox") \
            == st.highestmodseq > 0
        await transact(engine, store_keywords, ACCOUNT, "inbox", [2], add=[keyword])
    assert await transact(engine, mailboxes.get_highest_modseq, ACCOUNT, "inbox") \
        > st.highestmodseq
    with pytest.raises(MailboxNotFound):
        await transact(engine, mailboxes.get_highest_modseq, ACCOUNT, "nosuch")


async def test_copy_and_move(engine: Engine) -> None:
    ids = await setup(engine, 3)
    pairs = await twice(engine, copy_messages, ACCOUNT, "inbox", [1, 2, 9], "archive")
    assert pairs == [(1, 1), (2, 2)]
    # copying again gives the UIDs it already has there
    assert await transact(engine, copy_messages, ACCOUNT, "inbox", [2], "archive") == [(2, 2)]
    email = await transact(engine, get_email, ACCOUNT, ids[0])
    assert email is not None and email.mailboxes == {"inbox": 1, "archive": 1}
    assert await refcount(engine, 0) == 1  # one email, one blob reference
    moved = await twice(engine, move_messages, ACCOUNT, "inbox", [2, 3], "trash", op_id="mv1")
    assert moved == [(2, 1), (3, 2)]  # also when a lost reply made the body run again
    assert await transact(engine, move_messages, ACCOUNT, "inbox", [2, 3], "trash",
                          op_id="mv1") == [(2, 1), (3, 2)]  # the marker's result
    assert await transact(engine, move_messages, ACCOUNT, "inbox", [2, 3], "trash",
                          op_id="mv2") == []
    assert [(m.uid, m.email_id) for m in await transact(engine, list_messages, ACCOUNT,
                                                        "trash")] == [(1, ids[1]), (2, ids[2])]
    assert [m.uid for m in await transact(engine, list_messages, ACCOUNT, "inbox")] == [1]
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", 0) == [2, 3]
    inbox = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    trash = await transact(engine, mailboxes.get_status, ACCOUNT, "trash")
    assert (inbox.messages, inbox.size, trash.messages, trash.size) == (1, 1000, 2, 2000)
    usage = await transact(engine, quota.get_usage, ACCOUNT)
    assert usage.messages == 3


async def test_expunge_deleted_and_destroy(engine: Engine) -> None:
    ids = await setup(engine, 4)
    await transact(engine, copy_messages, ACCOUNT, "inbox", [1], "archive")
    await transact(engine, store_keywords, ACCOUNT, "inbox", [1, 2, 3], add=["$deleted"])
    before = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    # UID EXPUNGE (RFC 4315): only \Deleted messages in the set
    res = await twice(engine, expunge_messages, ACCOUNT, "inbox", uids=[2, 4], op_id="x1")
    assert res.uids == (2,) and res.resume_after is None
    res = await twice(engine, expunge_messages, ACCOUNT, "inbox", op_id="x2")
    assert res.uids == (1, 3)
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", before.highestmodseq) == [
        1, 2, 3]
    assert await transact(engine, get_email, ACCOUNT, ids[1]) is None  # gone with its last box
    assert await refcount(engine, 1) == 0
    kept = await transact(engine, get_email, ACCOUNT, ids[0])
    assert kept is not None and kept.mailboxes == {"archive": 1}  # still in Archive
    assert await transact(engine, list_thread, ACCOUNT, f"T{ids[1]}") == []
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    assert (status.messages, status.unseen, status.size) == (1, 1, 1000)
    # removal regardless of flags (JMAP), and destroy
    res = await twice(engine, expunge_messages, ACCOUNT, "inbox", uids=[4], only_deleted=False,
                      op_id="x3")
    assert res.uids == (4,)
    assert await twice(engine, destroy_email, ACCOUNT, ids[0], op_id="d1") is True
    assert await transact(engine, destroy_email, ACCOUNT, ids[0], op_id=None) is False
    usage = await transact(engine, quota.get_usage, ACCOUNT)
    assert (usage.bytes, usage.messages) == (0, 0)


async def test_expunge_in_batches(engine: Engine) -> None:
    await setup(engine, 7)
    await transact(engine, store_keywords, ACCOUNT, "inbox", list(range(1, 8)), add=["$deleted"])
    calls, after = 0, 0
    while True:
        res = await transact(engine, expunge_messages, ACCOUNT, "inbox", limit=3,
                             after_uid=after, op_id=None)
        calls += 1
        if res.resume_after is None:
            break
        after = res.resume_after
    assert calls <= 3  # fewer when a lost reply ran a batch again (it then did the next)
    assert await transact(engine, list_vanished, ACCOUNT, "inbox", 0) == list(range(1, 8))
    assert await transact(engine, list_messages, ACCOUNT, "inbox") == []
    res = await transact(engine, expunge_messages, ACCOUNT, "inbox", uids=range(1, 2**32),
                         only_deleted=False, limit=2, op_id=None)
    assert res.uids == () and res.resume_after is None


async def test_set_email_mailboxes(engine: Engine) -> None:
    ids = await setup(engine, 1)
    await twice(engine, set_email_mailboxes, ACCOUNT, ids[0], ["archive", "trash"])
    email = await transact(engine, get_email, ACCOUNT, ids[0])
    assert email is not None and email.mailboxes == {"archive": 1, "trash": 1}
    assert (await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")).messages == 0


async def test_threads(engine: Engine) -> None:
    await setup(engine)
    a = new_email(1, subject="Plans", message_id="<a@x>")
    b = new_email(2, subject="Re: [list] Plans", message_id="<b@x>", references=("<a@x>",))
    c = new_email(3, subject="Something else", message_id="<c@x>", references=("<a@x>",))
    d = new_email(4, subject="Fwd: Plans (fwd)", message_id="<d@x>", references=("<zz@x>",))
    # a reply that arrives before its parent
    e0 = new_email(5, subject="Re: Later", message_id="<e1@x>", references=("<e0@x>",))
    e1 = new_email(6, subject="Later", message_id="<e0@x>")
    got = {}
    for n, m in enumerate((a, b, c, d, e0, e1)):
        got[n] = await transact(engine, append_email, ACCOUNT, "inbox", m, delivery_id=f"t{n}")
    assert got[1].thread_id == got[0].thread_id
    assert got[2].thread_id != got[0].thread_id  # subject changed
    assert got[3].thread_id != got[0].thread_id  # no link
    assert got[5].thread_id == got[4].thread_id
    assert await transact(engine, list_thread, ACCOUNT, got[0].thread_id) == [
        email_id_for("delivery-1"), email_id_for("delivery-2")]


async def test_changed_since_reads_records_in_batches(engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """list_changed_since and count_deleted read the membership records a batch at a time
    (every read of a batch issued at once, so a check after a STORE of 100,000 messages
    fits FoundationDB's 5-second limit); batches of 2 over 7 messages: each changed message
    once, by UID, none lost at a batch's edge."""
    from fdb_layers.mail import queries
    monkeypatch.setattr(queries, "_MEMBERSHIP_BATCH", 2)
    await setup(engine, 7)
    status = await transact(engine, mailboxes.get_status, ACCOUNT, "inbox")
    await transact(engine, store_keywords, ACCOUNT, "inbox", [6, 1, 3, 7, 5],
                   add=["$deleted"])
    changed = await transact(engine, list_changed_since, ACCOUNT, "inbox",
                             status.highestmodseq)
    assert [(m.uid, "$deleted" in m.keywords) for m in changed] == [
        (1, True), (3, True), (5, True), (6, True), (7, True)]
    assert await transact(engine, queries.count_deleted, ACCOUNT, "inbox") == (5, 5)
