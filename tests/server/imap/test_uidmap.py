"""The session's UID map as runs (RFC 9051 section 2.3.1.2): it behaves exactly like the
sorted list of UIDs it stands for, under appends and removals in any order."""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given, strategies as st

from server.imap.session.uidmap import UidMap


def test_consecutive_uids_are_one_run() -> None:
    m = UidMap(range(1, 1_000_001))
    assert m.runs() == [(1, 1_000_000)]
    assert len(m) == 1_000_000 and m[0] == 1 and m[-1] == 1_000_000
    assert m.seq(500_000) == 500_000


def test_remove_splits_and_renumbers() -> None:
    m = UidMap([1, 2, 3, 4, 5, 9])
    m.remove(3)
    assert m.runs() == [(1, 2), (4, 5), (9, 9)]
    assert list(m) == [1, 2, 4, 5, 9]
    assert m.seq(9) == 5 and m.seq(3) == 0 and m[2] == 4
    assert m.count_below(6) == 4 and m.count_below(1) == 0


@given(st.sets(st.integers(1, 300)), st.lists(st.integers(1, 300)))
def test_behaves_like_the_sorted_list(uids: set[int], removals: list[int]) -> None:
    m = UidMap(sorted(uids))
    ref = sorted(uids)
    for u in removals:
        assert m.discard(u) == (u in ref)
        if u in ref:
            ref.remove(u)
    assert list(m) == ref and len(m) == len(ref) and m == ref
    for i, u in enumerate(ref):
        assert m[i] == u and m.index(u) == i and m.seq(u) == i + 1 and u in m
    for u in range(0, 302):
        assert m.count_below(u) == bisect_left(ref, u)
        assert bisect_left(m, u) == bisect_left(ref, u)
    assert m[1:4] == ref[1:4]
    assert UidMap.from_runs(m.runs()) == m


@given(st.sets(st.integers(1, 300)), st.integers(-5, 310), st.integers(-5, 310),
       st.sampled_from([None, 1, 2, 3, -1]))
def test_slices_are_the_sorted_lists(uids: set[int], start: int, stop: int,
                                     step: int | None) -> None:
    """A slice (what FETCH's batches read, run by run) is the sorted list's slice."""
    m, ref = UidMap(sorted(uids)), sorted(uids)
    assert m[start:stop:step] == ref[start:stop:step]
    assert m.between(start, stop) == ref[max(start, 0):max(stop, 0)]
