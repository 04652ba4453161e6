"""Annotations (RFC 5464): per account and mailbox id, all-or-nothing writes, the
per-account cap, kept by RENAME and dropped by DELETE (section 4.1).

Contract tests: each runs on every engine kind (FoundationDB too where a test
cluster is configured, and under fault injection), every write run twice."""

from __future__ import annotations

import asyncio

import pytest

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts, mailboxes
from fdb_layers.mail.errors import AnnotationTooLarge, MailboxNotFound, TooManyAnnotations
from fdb_layers.mail.metadata import (
    MAX_ANNOTATIONS,
    MAX_VALUE,
    SERVER,
    count_annotations,
    get_annotations,
    set_annotations,
    watch_annotations,
)

from .fixtures import ACCOUNT, twice

OTHER = "bob@example.org"


async def _get(engine: Engine, mailbox_id: str, entry: str, depth: int | None = 0,
               account: str = ACCOUNT) -> dict[str, bytes]:
    return dict(await transact(engine, get_annotations, account, mailbox_id, entry, depth))


async def test_set_get_remove(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, set_annotations, ACCOUNT, "inbox",
                [("/private/comment", b"mine"), ("/shared/comment", b"\x00binary\xff")])
    assert await _get(engine, "inbox", "/private/comment") == {"/private/comment": b"mine"}
    assert await _get(engine, "inbox", "/shared/comment") == \
        {"/shared/comment": b"\x00binary\xff"}
    assert await transact(engine, count_annotations, ACCOUNT) == 2
    await twice(engine, set_annotations, ACCOUNT, "inbox", [("/private/comment", None)])
    assert await _get(engine, "inbox", "/private/comment") == {}
    assert await transact(engine, count_annotations, ACCOUNT) == 1
    # removing what does not exist is no error and counts nothing (section 4.3)
    await twice(engine, set_annotations, ACCOUNT, "inbox", [("/private/none", None)])
    assert await transact(engine, count_annotations, ACCOUNT) == 1


async def test_depth(engine: Engine) -> None:
    """RFC 5464 section 4.2.2: DEPTH 0, 1 and infinity below the named entry."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, set_annotations, ACCOUNT, SERVER, [
        ("/private/filters/values", b"v"),
        ("/private/filters/values/small", b"s"),
        ("/private/filters/values/boss", b"b"),
        ("/private/filters/values/boss/deep", b"d"),
        ("/private/filtersx", b"not below"),
    ])
    assert set(await _get(engine, SERVER, "/private/filters/values")) == \
        {"/private/filters/values"}
    assert set(await _get(engine, SERVER, "/private/filters/values", 1)) == \
        {"/private/filters/values", "/private/filters/values/small",
         "/private/filters/values/boss"}
    assert set(await _get(engine, SERVER, "/private/filters", None)) == \
        {"/private/filters/values", "/private/filters/values/small",
         "/private/filters/values/boss", "/private/filters/values/boss/deep"}
    # the server's entries are not a mailbox's
    assert await _get(engine, "inbox", "/private", None) == {}


async def test_all_or_nothing_and_limits(engine: Engine) -> None:
    """RFC 5464 section 4.3: a refused SETMETADATA changes none of its entries."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    with pytest.raises(AnnotationTooLarge) as info:
        await transact(engine, set_annotations, ACCOUNT, "inbox",
                       [("/private/a", b"ok"), ("/private/b", b"x" * (MAX_VALUE + 1))])
    assert info.value.limit == MAX_VALUE
    assert await _get(engine, "inbox", "/private/a") == {}
    await twice(engine, set_annotations, ACCOUNT, "inbox", [("/private/max", b"x" * MAX_VALUE)])
    many = [(f"/shared/n{i}", b"v") for i in range(MAX_ANNOTATIONS - 1)]
    await twice(engine, set_annotations, ACCOUNT, SERVER, many)
    assert await transact(engine, count_annotations, ACCOUNT) == MAX_ANNOTATIONS
    with pytest.raises(TooManyAnnotations):
        await transact(engine, set_annotations, ACCOUNT, "inbox",
                       [("/private/max", None), ("/private/one", b"1"), ("/private/two", b"2")])
    assert await _get(engine, "inbox", "/private/max") != {}
    # replacing a value and removing one to add one stay under the cap
    await twice(engine, set_annotations, ACCOUNT, "inbox",
                [("/private/max", None), ("/private/one", b"1")])
    await twice(engine, set_annotations, ACCOUNT, SERVER, [("/shared/n0", b"new")])
    assert await transact(engine, count_annotations, ACCOUNT) == MAX_ANNOTATIONS


async def test_accounts_are_apart(engine: Engine) -> None:
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, accounts.ensure_account, OTHER)
    await twice(engine, set_annotations, ACCOUNT, SERVER, [("/shared/comment", b"alice's")])
    await twice(engine, set_annotations, ACCOUNT, "inbox", [("/shared/comment", b"inbox")])
    assert await _get(engine, SERVER, "/shared", None, OTHER) == {}
    assert await _get(engine, "inbox", "/shared", None, OTHER) == {}
    assert await transact(engine, count_annotations, OTHER) == 0


async def test_rename_keeps_delete_drops(engine: Engine) -> None:
    """RFC 5464 section 4.1: annotations follow a renamed mailbox and go with a deleted
    one (a \\Noselect one kept for its children too)."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "a/b", mailbox_id="b")
    a = await transact(engine, mailboxes.find_mailbox, ACCOUNT, "a")
    await twice(engine, set_annotations, ACCOUNT, "b", [("/private/comment", b"b")])
    await twice(engine, set_annotations, ACCOUNT, a.id, [("/private/comment", b"a")])
    await transact(engine, mailboxes.rename_mailbox_path, ACCOUNT, "a", "c",
                   new_mailbox_id="n1", source_id=a.id)
    assert await transact(engine, mailboxes.find_mailbox, ACCOUNT, "c/b") is not None
    assert await _get(engine, "b", "/private/comment") == {"/private/comment": b"b"}
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, a.id, keep_if_children=True,
                op_id="d1")
    assert await _get(engine, a.id, "/private/comment") == {}
    await twice(engine, mailboxes.delete_mailbox, ACCOUNT, "b")
    assert await _get(engine, "b", "/private/comment") == {}
    assert await transact(engine, count_annotations, ACCOUNT) == 0
    with pytest.raises(MailboxNotFound):
        await transact(engine, set_annotations, ACCOUNT, "b", [("/private/comment", b"x")])


async def test_rename_of_inbox_copies(engine: Engine) -> None:
    """RFC 5464 section 4.1: renaming INBOX copies its annotations to the new mailbox
    and INBOX keeps them; past the account's cap the RENAME is refused."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await twice(engine, set_annotations, ACCOUNT, "inbox",
                [("/private/comment", b"in"), ("/shared/vendor/x/y", b"v")])
    await twice(engine, mailboxes.rename_mailbox_path, ACCOUNT, "INBOX", "Old",
                new_mailbox_id="old", source_id="inbox")
    assert await _get(engine, "old", "/private", None) == {"/private/comment": b"in"}
    assert await _get(engine, "inbox", "/shared", None) == {"/shared/vendor/x/y": b"v"}
    assert await transact(engine, count_annotations, ACCOUNT) == 4
    many = [(f"/shared/n{i}", b"v") for i in range(MAX_ANNOTATIONS - 5)]
    await twice(engine, set_annotations, ACCOUNT, SERVER, many)
    with pytest.raises(TooManyAnnotations):
        await transact(engine, mailboxes.rename_mailbox_path, ACCOUNT, "INBOX", "Older",
                       new_mailbox_id="older", source_id="inbox")


async def test_changes_fire_the_watch(engine: Engine) -> None:
    """IMAP NOTIFY (RFC 5465 sections 5.6, 5.7) waits on this watch: a set and a removal
    fire it, and so does deleting a mailbox with annotations."""
    await transact(engine, accounts.ensure_account, ACCOUNT)
    await transact(engine, mailboxes.create_mailbox_path, ACCOUNT, "w", mailbox_id="w")
    writes = [
        (set_annotations, (ACCOUNT, SERVER, [("/shared/comment", b"x")]), {}),
        (set_annotations, (ACCOUNT, "w", [("/private/comment", b"y")]), {}),
        (set_annotations, (ACCOUNT, SERVER, [("/shared/comment", None)]), {}),
        (mailboxes.delete_mailbox, (ACCOUNT, "w"), {}),
    ]
    for fn, args, kwargs in writes:
        watch = await watch_annotations(engine, ACCOUNT)
        await transact(engine, fn, *args, **kwargs)
        await asyncio.wait_for(watch.wait(), 30)   # a bound for a failure, not a timing
