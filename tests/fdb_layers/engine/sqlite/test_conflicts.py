"""Conflict arithmetic against a brute-force model over a small key space."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.engine.sqlite.conflicts import ConflictSet, RangeSet

KEYS = [bytes([a]) for a in range(8)] + [bytes([a, b]) for a in range(8) for b in range(3)]
key = st.sampled_from(KEYS)
item = st.one_of(
    st.tuples(st.just("key"), key, key),
    st.tuples(st.just("range"), key, key),
)


def build(items: list[tuple[str, bytes, bytes]]) -> tuple[ConflictSet, RangeSet, set[bytes]]:
    cs, rs, covered = ConflictSet(), RangeSet(), set()
    for kind, a, b in items:
        if kind == "key":
            cs.add_key(a)
            rs.add_key(a)
            covered.add(a)
        else:
            lo, hi = sorted((a, b))
            cs.add(lo, hi)
            rs.add(lo, hi)
            covered.update(k for k in KEYS if lo <= k < hi)
    return cs, rs, covered


@given(st.lists(item, max_size=6), st.lists(item, max_size=6))
def test_conflict_set_agrees_with_merged_range_set(a: list, b: list) -> None:  # type: ignore[type-arg]
    """ConflictSet (points + unmerged ranges) and RangeSet (merged, sorted
    intervals) are two independent implementations of the same sets."""
    ca, ra, ka = build(a)
    cb, rb, kb = build(b)
    assert ca.intersects(cb) == ra.intersects_set(rb) == cb.intersects(ca)
    if ka & kb:  # a shared listed key always means a conflict
        assert ca.intersects(cb)
    for k in KEYS:
        assert ca.contains(k) == ra.contains(k)
        assert (k in ka) <= ca.contains(k)


@given(st.lists(item, max_size=6), key, key)
def test_range_set_gaps_and_remove_agree_with_the_model(
        items: list, a: bytes, b: bytes) -> None:  # type: ignore[type-arg]
    _, rs, covered = build(items)
    lo, hi = sorted((a, b))
    gaps = rs.gaps(lo, hi)
    assert all(x < y for x, y in gaps)
    assert all(g[1] < h[0] for g, h in zip(gaps, gaps[1:], strict=False))
    for k in KEYS:  # the gaps are exactly the uncovered keys of [lo, hi)
        assert any(x <= k < y for x, y in gaps) == (lo <= k < hi and not rs.contains(k))
    rs.remove(lo, hi)
    for k in KEYS:
        assert rs.contains(k) == (k in covered and not lo <= k < hi)
