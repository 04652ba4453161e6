"""Sequence and UID sets resolved against the session's UID map (RFC 9051 section 9,
``sequence-set``; section 6.4.9 for UID sets), checked against the plain reading of the
RFC by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.imap.session.errors import ImapError
from server.imap.session.messages import _changed, batches, positions, resolve
from server.imap.session.state import Selected
from server.imap.session.uidmap import UidMap
from server.imap.wire.sequence import STAR, SeqNumber, SequenceSet

UIDS = st.lists(st.integers(1, 60), unique=True, max_size=25).map(sorted)
NUMBER = st.one_of(st.integers(1, 70), st.just(STAR))
SETS = st.lists(st.tuples(NUMBER, NUMBER), min_size=1, max_size=5).map(
    lambda r: SequenceSet(tuple(r)))


def _selected(uids: list[int]) -> Selected:
    return Selected("m", "INBOX", 1, False, uids)


def _plain(uids: list[int], ranges: tuple[tuple[SeqNumber, SeqNumber], ...], uid: bool
           ) -> list[tuple[int, int]] | None:
    """What the RFC says, the slow way; None where a sequence number is out of range."""
    largest = (uids[-1] if uids else 0) if uid else len(uids)
    chosen: set[int] = set()
    for a, b in ranges:
        x = largest if a == STAR else a
        y = largest if b == STAR else b
        lo, hi = min(x, y), max(x, y)
        if uid:
            chosen.update(n for n, u in enumerate(uids, 1) if lo <= u <= hi)
        else:
            if lo < 1 or hi > len(uids):
                return None
            chosen.update(range(lo, hi + 1))
    return [(n, uids[n - 1]) for n in sorted(chosen)]


@given(UIDS, SETS, st.booleans())
def test_positions_match_the_rfc(uids: list[int], messages: SequenceSet, uid: bool) -> None:
    expected = _plain(uids, messages.ranges, uid)
    sel = _selected(uids)
    if expected is None:
        with pytest.raises(ImapError) as e:
            positions(sel, messages, uid)
        assert e.value.status == "BAD"
        return
    assert resolve(sel, messages, uid) == expected
    spans = positions(sel, messages, uid)
    assert all(a.stop < b.start for a, b in zip(spans, spans[1:], strict=False))  # apart
    for size in (1, 2, 7):
        got = [pair for batch in batches(sel, spans, size) for pair in batch]
        assert got == expected
        assert all(len(b) <= size for b in batches(sel, spans, size))
    # CHANGEDSINCE: changed UIDs (some unknown to the map) narrowed to the set
    changed = sorted(set(uids[::2]) | {61, 99})
    assert _changed(sel, spans, changed) == [p for p in expected if p[1] in changed]


@given(UIDS, st.lists(st.integers(1, 70), unique=True, max_size=25))
def test_saved_result_names_the_saved_messages_still_there(uids: list[int], saved: list[int]
                                                           ) -> None:
    """RFC 5182 section 2.1: ``$`` is the result SEARCH RETURN (SAVE) kept, less what
    was expunged since, for FETCH and UID FETCH alike; an empty one names nothing."""
    sel = Selected("m", "INBOX", 1, False, UidMap(uids), saved=tuple(saved))
    for uid in (False, True):
        assert resolve(sel, SequenceSet(saved=True), uid) == [
            (n, u) for n, u in enumerate(uids, 1) if u in saved]
