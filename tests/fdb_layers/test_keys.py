"""The tuple encoder and subspaces (fdb_layers/keys.py)."""

from __future__ import annotations


from hypothesis import given
from hypothesis import strategies as st

from fdb_layers import keys
from tests.fdb_layers.engine.helpers import S


# -- keys -----------------------------------------------------------------------

tuple_elements = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=8),
    st.binary(max_size=8),
)


@given(st.lists(st.tuples(tuple_elements, tuple_elements), min_size=2, max_size=10))
def test_tuple_keys_order_like_their_tuples_within_one_type(
    pairs: list[tuple[object, object]],
) -> None:
    first = pairs[0]
    typed = [p for p in pairs if type(p[0]) is type(first[0]) and type(p[1]) is type(first[1])]
    packed = sorted(typed, key=lambda t: keys.pack(t))
    assert [keys.unpack(keys.pack(t)) for t in packed] == sorted(typed)  # type: ignore[type-var]


def test_tuple_ints_sort_numerically() -> None:
    numbers = [-(2**40), -300, -1, 0, 1, 255, 256, 70000, 2**40]
    assert sorted(numbers, key=lambda n: keys.pack((n,))) == numbers


def test_subspace_range_holds_its_keys_and_nothing_else() -> None:
    sub = S["box"]
    begin, end = sub.range()
    assert begin <= sub.pack((1,)) < end
    assert begin <= sub.pack(("z", b"\xff" * 3)) < end
    assert not begin <= S["boy"].pack((1,)) < end
    assert sub.unpack(sub.pack((5, "x"))) == (5, "x")
