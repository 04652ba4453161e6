"""The pure parts of the expunge and copy responses, without a node: ``expunged()``'s
numbering (RFC 9051 section 7.5.1), the UID sets of COPYUID / APPENDUID (RFC 4315 section
3) and how message sets resolve against the session's UID map (RFC 9051 section 9)."""

from __future__ import annotations

import re
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.mail import Engine
from server.blobs import BlobStore
from server.imap.session import Selected, Session, SessionContext
from server.imap.session.errors import ImapError
from server.imap.session.mutate import selected_uids, uid_list
from server.imap.session.selected import expunged
from server.imap.session.uidmap import UidMap
from server.imap.wire.sequence import STAR, SequenceSet
from server.sasl import Authenticator, Registry


def _session(known: list[int]) -> Session:
    ctx = SessionContext(engine=cast(Engine, None), blobs=cast(BlobStore, None),
                         authenticator=cast(Authenticator, None),
                         mechanisms=Registry(), hostname="test")
    s = Session(ctx, tls=True)
    s.selected = Selected("m", "INBOX", 1, False, UidMap(known))
    return s


uid_maps = st.lists(st.integers(1, 10_000), unique=True, max_size=60).map(sorted)


@given(uid_maps, st.data())
def test_expunge_responses_replayed_give_the_new_map(known: list[int], data: st.DataObject
                                                     ) -> None:
    gone = data.draw(st.lists(st.integers(1, 10_000), max_size=30))
    s = _session(known)
    expunged(s, gone)
    # a client applies each "* n EXPUNGE" as it comes: message n goes, later ones move down
    replay = list(known)
    for line in s.out:
        m = re.fullmatch(rb"\* (\d+) EXPUNGE\r\n", line)
        assert m, line
        n = int(m.group(1))
        assert 1 <= n <= len(replay)
        del replay[n - 1]
    assert s.selected is not None
    assert replay == s.selected.uids == [u for u in known if u not in set(gone)]


def test_expunge_of_2_4_5_out_of_6() -> None:
    s = _session([1, 2, 3, 4, 5, 6])
    expunged(s, [5, 2, 4])
    assert s.out == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]


@given(st.lists(st.integers(1, 2**32 - 1), unique=True, max_size=50))
def test_uid_list_keeps_order_and_members(uids: list[int]) -> None:
    expanded = []
    for a, b in uid_list(uids).ranges:
        assert isinstance(a, int) and isinstance(b, int) and a <= b
        expanded += range(a, b + 1)
    assert expanded == uids


def test_uid_list_renders_runs() -> None:
    assert uid_list([2, 3, 5, 9, 10, 11, 4]).render() == b"2:3,5,9:11,4"


@given(uid_maps, st.lists(st.tuples(st.integers(1, 10_001), st.integers(1, 10_001)),
                          min_size=1, max_size=5))
def test_uid_sets_name_only_existing_uids(known: list[int], ranges: list[tuple[int, int]]
                                          ) -> None:
    s = _session(known)
    got = selected_uids(s, SequenceSet(tuple(ranges)), uid=True)
    wanted = sorted({u for u in known for a, b in ranges if min(a, b) <= u <= max(a, b)})
    assert got == wanted


def test_sequence_numbers_must_exist() -> None:
    s = _session([4, 7, 9])
    assert selected_uids(s, SequenceSet(((2, STAR),)), uid=False) == [7, 9]
    assert selected_uids(s, SequenceSet(((STAR, STAR),)), uid=True) == [9]
    for bad in (SequenceSet(((4, 4),)), SequenceSet(((1, 5),))):
        with pytest.raises(ImapError) as e:
            selected_uids(s, bad, uid=False)
        assert e.value.status == "BAD"
    # $ is the saved result (RFC 5182 section 2.1), less what was expunged since
    assert selected_uids(s, SequenceSet(saved=True), uid=False) == []
    s.selected.saved = (4, 8, 9)   # type: ignore[union-attr]
    assert selected_uids(s, SequenceSet(saved=True), uid=True) == [4, 9]
    empty = _session([])
    assert selected_uids(empty, SequenceSet(((1, STAR),)), uid=True) == []
    with pytest.raises(ImapError):
        selected_uids(empty, SequenceSet(((1, STAR),)), uid=False)


def test_a_set_repeating_its_ranges_is_resolved_once() -> None:
    """Hostile input: ``1:*`` 5,000 times on 100,000 messages (a 30 KB line) resolves
    to each message once (the ranges are merged before the map is read)."""
    known = list(range(1, 200_001, 2))
    s = _session(known)
    many = SequenceSet(((1, STAR),) * 5000 + ((7, 3),))
    assert selected_uids(s, many, uid=False) == known
    assert selected_uids(s, many, uid=True) == known
