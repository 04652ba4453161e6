"""A state machine drives the mailbox layer with random operations and checks it
against a small in-memory model, on sqlite and on sqlite under fault injection.

Checked after every step: UIDs strictly increase and are never reused within a
UIDVALIDITY; counters (messages, unseen, size, quota usage) equal a recount;
the account modseq never goes back and moves on every change; replaying the
change log (JMAP /changes, in small pages) gives the current emails (those JMAP
sees) and mailboxes; JMAP's view leaves out messages with \\Deleted.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fdb_layers.mail import accounts, changes, cleanup, mailboxes, quota
from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from fdb_layers.mail.errors import (
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
)
from fdb_layers.mail.queries import (
    count_deleted,
    get_visible_changes,
    get_visible_email,
    get_visible_emails,
    list_messages,
    query_mailbox,
)
from fdb_layers.mail.messages import (
    append_email,
    copy_messages,
    expunge_messages,
    move_messages,
    set_email_mailboxes,
    store_keywords,
)

from tests.support.engines import FDB_SKIP_REASON

from .fixtures import ACCOUNT, new_email, open_engine

T = TypeVar("T")
KEYWORDS = ("$seen", "$deleted", "$flagged", "work")
NAMES = ("a", "b", "c")


@dataclass
class Box:
    name: str
    parent: str
    uidvalidity: int
    next_uid: int = 1
    uids: dict[int, str] = field(default_factory=dict)  # uid -> email id


@dataclass
class Em:
    size: int
    keywords: set[str]  # the email's, shared by its memberships ($deleted apart)
    boxes: dict[str, int] = field(default_factory=dict)  # mailbox id -> uid
    deleted: set[str] = field(default_factory=set)  # mailbox ids where it has $deleted

    def keywords_in(self, box_id: str) -> set[str]:
        return self.keywords | ({"$deleted"} if box_id in self.deleted else set())


class MailModel(RuleBasedStateMachine):
    faults = False
    engine_kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp()
        kind = self.engine_kind + ("+faults" if self.faults else "")
        # a third of the commits are applied and reported unknown: every rule's retry runs
        self.engine: Engine = self.run(open_engine(kind, f"{self.dir}/s.sqlite3", seed=3,
                                                   not_committed=0.05, unknown=0.3))
        self.tx(accounts.ensure_account, ACCOUNT)
        self.boxes: dict[str, Box] = {}
        for m in self.tx(mailboxes.list_mailboxes, ACCOUNT):
            self.boxes[m.id] = Box(m.name, m.parent_id or "", m.uidvalidity)
        self.emails: dict[str, Em] = {}
        self.deliveries = 0
        self.created = 0
        self.ops = 0
        self.modseq = self.tx(changes.get_modseq, ACCOUNT)
        self.changed = False
        self.replicas: dict[str, tuple[str, set[str]]] = {
            changes.EMAIL: ("0", set()),
            changes.MAILBOX: ("0", set()),
        }

    def run(self, aw: Awaitable[T]) -> T:
        return self.loop.run_until_complete(aw)

    def tx(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.run(transact(self.engine, fn, *args, **kwargs))

    def teardown(self) -> None:
        self.run(self.engine.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def pick(self, i: int, *, selectable: bool = True) -> str:
        ids = sorted(b for b, box in self.boxes.items() if box.uidvalidity or not selectable)
        return ids[i % len(ids)]

    def op(self) -> str:
        self.ops += 1
        return f"op{self.ops}"

    def children(self, box_id: str) -> list[str]:
        return [b for b, box in self.boxes.items() if box.parent == box_id]

    def drop_membership(self, box_id: str, uid: int) -> None:
        email_id = self.boxes[box_id].uids.pop(uid)
        em = self.emails[email_id]
        del em.boxes[box_id]
        em.deleted.discard(box_id)
        if not em.boxes:
            del self.emails[email_id]

    # --- rules ---------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), parent=st.integers(0, 20), top=st.booleans())
    def create(self, name: str, parent: int, top: bool) -> None:
        parent_id = "" if top else self.pick(parent)
        self.created += 1
        new_id = f"x{self.created}"
        if any(b.parent == parent_id and b.name == name for b in self.boxes.values()):
            with pytest.raises(MailboxExists):
                self.tx(mailboxes.create_mailbox, ACCOUNT, name, mailbox_id=new_id,
                        parent_id=parent_id or None)
            return
        made = self.tx(mailboxes.create_mailbox, ACCOUNT, name, mailbox_id=new_id,
                       parent_id=parent_id or None)
        assert all(made.uidvalidity > b.uidvalidity for b in self.boxes.values())
        self.boxes[new_id] = Box(name, parent_id, made.uidvalidity)
        self.changed = True

    @rule(box=st.integers(0, 20), name=st.sampled_from(NAMES), parent=st.integers(0, 20),
          top=st.booleans())
    def rename(self, box: int, name: str, parent: int, top: bool) -> None:
        box_id = self.pick(box)
        parent_id = "" if top else self.pick(parent)
        b = self.boxes[box_id]
        if (b.parent, b.name) == (parent_id, name):
            return
        ancestors, p = set(), parent_id
        while p:
            ancestors.add(p)
            p = self.boxes[p].parent
        expected: type[Exception] | None = None
        if b.name == "INBOX" and not b.parent:
            expected = InvalidMailboxName
        elif box_id in ancestors:
            expected = InvalidMailboxName
        elif any(x.parent == parent_id and x.name == name for x in self.boxes.values()):
            expected = MailboxExists
        if expected is not None:
            with pytest.raises(expected):
                self.tx(mailboxes.rename_mailbox, ACCOUNT, box_id, name=name,
                        parent_id=parent_id or None)
            return
        self.tx(mailboxes.rename_mailbox, ACCOUNT, box_id, name=name, parent_id=parent_id or None)
        b.name, b.parent = name, parent_id
        self.changed = True

    @rule(box=st.integers(0, 20))
    def delete(self, box: int) -> None:
        box_id = self.pick(box, selectable=False)
        if box_id == "inbox":
            with pytest.raises(MailboxNotDeletable):
                self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id)
            return
        if self.children(box_id):
            with pytest.raises(MailboxHasChildren):
                self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id)
            return
        self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id)
        self.run(cleanup.run_cleanup(self.engine, account_id=ACCOUNT, batch=2))
        for uid in list(self.boxes[box_id].uids):
            self.drop_membership(box_id, uid)
        del self.boxes[box_id]
        self.changed = True

    @rule(box=st.integers(0, 20))
    def imap_delete(self, box: int) -> None:
        """IMAP DELETE (RFC 9051 section 6.3.5): with children, emptied and kept as
        \\Noselect; a \\Noselect mailbox with children is refused."""
        box_id = self.pick(box, selectable=False)
        b = self.boxes[box_id]
        op_id = self.op()
        if box_id == "inbox":
            with pytest.raises(MailboxNotDeletable):
                self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id, keep_if_children=True,
                        op_id=op_id)
            return
        if self.children(box_id) and not b.uidvalidity:
            with pytest.raises(MailboxHasChildren):
                self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id, keep_if_children=True,
                        op_id=op_id)
            return
        self.tx(mailboxes.delete_mailbox, ACCOUNT, box_id, keep_if_children=True, op_id=op_id)
        self.run(cleanup.run_cleanup(self.engine, account_id=ACCOUNT, batch=2))
        for uid in list(b.uids):
            self.drop_membership(box_id, uid)
        if self.children(box_id):
            b.uidvalidity = 0
        else:
            del self.boxes[box_id]
        self.changed = True

    @rule(box=st.integers(0, 20), keywords=st.sets(st.sampled_from(KEYWORDS)))
    def append(self, box: int, keywords: set[str]) -> None:
        box_id = self.pick(box)
        self.deliveries += 1
        n = self.deliveries
        got = self.tx(append_email, ACCOUNT, box_id, new_email(n, size=100 + n,
                      keywords=tuple(keywords)), delivery_id=f"m{n}")
        b = self.boxes[box_id]
        assert got.uid == b.next_uid and got.uidvalidity == b.uidvalidity
        b.uids[got.uid] = got.email_id
        b.next_uid += 1
        self.emails[got.email_id] = Em(100 + n, set(keywords) - {"$deleted"}, {box_id: got.uid},
                                       {box_id} if "$deleted" in keywords else set())
        self.changed = True

    def _copy(self, src: int, dst: int, picks: list[int], move: bool) -> None:
        s, d = self.pick(src), self.pick(dst)
        sb, db = self.boxes[s], self.boxes[d]
        uids = sorted({list(sb.uids)[i % len(sb.uids)] for i in picks}) if sb.uids else []
        expected = []
        next_uid = db.next_uid
        for uid in uids:
            there = self.emails[sb.uids[uid]].boxes.get(d)
            if there is None:
                there, next_uid = next_uid, next_uid + 1
            expected.append((uid, there))
        if move:  # what it moved (COPYUID), also when the first attempt's reply was lost
            got = self.tx(move_messages, ACCOUNT, s, uids, d, op_id=self.op())
        else:
            got = self.tx(copy_messages, ACCOUNT, s, uids, d)
        assert got == expected
        if s == d:
            return
        for uid in uids:
            email_id = sb.uids[uid]
            em = self.emails[email_id]
            if d not in em.boxes:
                if s in em.deleted:   # a copy has the flags of its original, \\Deleted too
                    em.deleted.add(d)
                em.boxes[d] = db.next_uid
                db.uids[db.next_uid] = email_id
                db.next_uid += 1
                self.changed = True
            if move:
                self.drop_membership(s, uid)
                self.changed = True

    @rule(src=st.integers(0, 20), dst=st.integers(0, 20),
          picks=st.lists(st.integers(0, 50), max_size=4))
    def copy(self, src: int, dst: int, picks: list[int]) -> None:
        self._copy(src, dst, picks, move=False)

    @rule(src=st.integers(0, 20), dst=st.integers(0, 20),
          picks=st.lists(st.integers(0, 50), max_size=4))
    def move(self, src: int, dst: int, picks: list[int]) -> None:
        self._copy(src, dst, picks, move=True)

    @rule(email=st.integers(0, 50), names=st.lists(st.integers(0, 20), min_size=1,
                                                      max_size=3))
    def set_mailboxes(self, email: int, names: list[int]) -> None:
        """JMAP mailboxIds: a membership with $deleted (hidden from JMAP, RFC 8621 section
        4.1.1) stays when not named and is shown again when named."""
        if not self.emails:
            return
        email_id = sorted(self.emails)[email % len(self.emails)]
        em = self.emails[email_id]
        wanted = sorted({self.pick(t) for t in names})
        self.tx(set_email_mailboxes, ACCOUNT, email_id, wanted)
        for box_id in wanted:
            if box_id not in em.boxes:
                b = self.boxes[box_id]
                em.boxes[box_id] = b.next_uid
                b.uids[b.next_uid] = email_id
                b.next_uid += 1
                self.changed = True
            elif box_id in em.deleted:
                em.deleted.discard(box_id)
                self.changed = True
        for box_id, uid in list(em.boxes.items()):
            if box_id not in wanted and box_id not in em.deleted:
                self.drop_membership(box_id, uid)
                self.changed = True

    @rule(box=st.integers(0, 20), picks=st.lists(st.integers(0, 50), max_size=4),
          add=st.sets(st.sampled_from(KEYWORDS)), remove=st.sets(st.sampled_from(KEYWORDS)))
    def store(self, box: int, picks: list[int], add: set[str], remove: set[str]) -> None:
        box_id = self.pick(box)
        b = self.boxes[box_id]
        uids = sorted({list(b.uids)[i % len(b.uids)] for i in picks}) if b.uids else []
        self.tx(store_keywords, ACCOUNT, box_id, uids, add=add, remove=remove)
        for uid in uids:
            em = self.emails[b.uids[uid]]
            new = (em.keywords_in(box_id) | add) - remove
            if new != em.keywords_in(box_id):
                self.changed = True
            # $deleted is this mailbox's message's own; the rest is the email's
            em.keywords = new - {"$deleted"}
            if "$deleted" in new:
                em.deleted.add(box_id)
            else:
                em.deleted.discard(box_id)

    @rule(box=st.integers(0, 20))
    def expunge(self, box: int) -> None:
        box_id = self.pick(box)
        b = self.boxes[box_id]
        after, op_id = 0, self.op()
        expunged: list[int] = []
        while True:
            res = self.tx(expunge_messages, ACCOUNT, box_id, after_uid=after, limit=2,
                          op_id=op_id)
            expunged += res.uids
            if res.resume_after is None:
                break
            after = res.resume_after
        # the UIDs it expunged, also when a batch's reply was lost and it ran again
        assert expunged == sorted(
            u for u, e in b.uids.items() if box_id in self.emails[e].deleted)
        for uid in [u for u, e in b.uids.items() if box_id in self.emails[e].deleted]:
            self.drop_membership(box_id, uid)
            self.changed = True

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def modseq_moves_forward(self) -> None:
        now = self.tx(changes.get_modseq, ACCOUNT)
        assert now >= self.modseq
        if self.changed:
            assert now > self.modseq
        self.modseq, self.changed = now, False

    @invariant()
    def mailboxes_and_counters_match(self) -> None:
        listed = {m.id: m for m in self.tx(mailboxes.list_mailboxes, ACCOUNT)}
        assert listed.keys() == self.boxes.keys()
        for box_id, b in self.boxes.items():
            m = listed[box_id]
            assert (m.name, m.parent_id or "", m.uidvalidity) == (b.name, b.parent, b.uidvalidity)
            if not b.uidvalidity:  # \Noselect
                continue
            msgs = self.tx(list_messages, ACCOUNT, box_id)
            assert {x.uid: x.email_id for x in msgs} == b.uids
            for x in msgs:
                assert set(x.keywords) == self.emails[x.email_id].keywords_in(box_id)
            status = self.tx(mailboxes.get_status, ACCOUNT, box_id)
            ems = [self.emails[e] for e in b.uids.values()]
            assert status.messages == len(ems)
            assert status.unseen == sum(1 for e in ems if "$seen" not in e.keywords)
            assert status.size == sum(e.size for e in ems)
            assert status.uidnext == b.next_uid
            assert all(u < b.next_uid for u in b.uids)
        usage = self.tx(quota.get_usage, ACCOUNT)
        assert usage.messages == len(self.emails)
        assert usage.bytes == sum(e.size for e in self.emails.values())

    @invariant()
    def jmap_view_leaves_deleted_out(self) -> None:
        """RFC 8621 section 4.1.1: a message with IMAP's \\Deleted is not visible through
        JMAP, nor counted: the email's mailboxes leave out those where it has $deleted, an
        email with it everywhere is not there at all, a mailbox's query and counts skip
        it (layer reads read-only: one transaction for them all)."""
        async def view(tr: Any, account: str) -> tuple[dict[str, Any], dict[str, Any]]:
            emails = {e: await get_visible_email(tr, account, e) for e in self.emails}
            at_once = await get_visible_emails(tr, account, [*self.emails, "nosuch"])
            assert at_once == [*emails.values(), None]  # the batch reads as each alone
            boxes = {b: (await count_deleted(tr, account, b),
                         await query_mailbox(tr, account, b, limit=1000),
                         await query_mailbox(tr, account, b, limit=2, position=1))
                     for b, box in self.boxes.items() if box.uidvalidity}
            return emails, boxes
        emails, boxes = self.tx(view, ACCOUNT)
        for email_id, em in self.emails.items():
            got = emails[email_id]
            shown = {b: u for b, u in em.boxes.items() if b not in em.deleted}
            if not shown:
                assert got is None
                continue
            assert got is not None and got.mailboxes == shown
            assert set(got.keywords) == em.keywords - {"$deleted"}
        for box_id, (counted, listed, page) in boxes.items():
            uids = self.boxes[box_id].uids
            hidden = [e for e in uids.values() if box_id in self.emails[e].deleted]
            assert counted == (len(hidden), sum(
                1 for e in hidden if "$seen" not in self.emails[e].keywords))
            newest = sorted(((-self.emails[e].size, -u, e) for u, e in uids.items()
                             if box_id not in self.emails[e].deleted))
            assert [e for e, _ in listed] == [e for *_, e in newest]
            assert page == listed[1:3]

    @invariant()
    def change_log_replays_to_current(self) -> None:
        """JMAP's Email/changes (RFC 8621 section 4.1.1: without the emails that have
        $deleted everywhere) replays to the emails JMAP sees."""
        shown = {e for e, em in self.emails.items() if set(em.boxes) - em.deleted}
        for kind, current in ((changes.EMAIL, shown), (changes.MAILBOX, set(self.boxes))):
            state, replica = self.replicas[kind]
            while True:
                c = self.tx(get_visible_changes, ACCOUNT, kind, state, max_changes=3)
                assert len(c.created) + len(c.updated) + len(c.destroyed) <= 3
                replica |= set(c.created)
                replica -= set(c.destroyed)
                assert set(c.updated) <= replica
                state = c.new_state
                if not c.has_more_changes:
                    break
            assert replica == current
            self.replicas[kind] = (state, replica)


class MailModelFaults(MailModel):
    faults = True


class MailModelFdb(MailModel):
    engine_kind = "foundationdb"


class MailModelFdbFaults(MailModel):
    engine_kind = "foundationdb"
    faults = True


def _settings(max_examples: int = 20) -> settings:
    return settings(
        max_examples=max_examples,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


TestMailModel = MailModel.TestCase
TestMailModel.settings = _settings()
TestMailModelFaults = MailModelFaults.TestCase
TestMailModelFaults.settings = _settings()
# On the single-process test cluster each step is a few network round trips:
# fewer examples there (8 of 25 steps each, against 20 on sqlite).
_needs_fdb = pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")
TestMailModelFdb = _needs_fdb(MailModelFdb.TestCase)
TestMailModelFdb.settings = _settings(8)
TestMailModelFdbFaults = _needs_fdb(MailModelFdbFaults.TestCase)
TestMailModelFdbFaults.settings = _settings(8)
