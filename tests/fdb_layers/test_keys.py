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


_ELEMENTS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.text() | st.binary()
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=12)


@given(st.lists(_ELEMENTS, max_size=6))
def test_unpack_gives_what_the_binding_gives(items: list[object]) -> None:
    """The fast decoder agrees with fdb.tuple.unpack on every tuple (NULs in strings and
    bytes, None inside nested tuples, big and negative integers, floats included)."""
    import fdb.tuple

    packed = keys.pack(tuple(items))
    assert keys.unpack(packed) == fdb.tuple.unpack(packed)
    assert keys.unpack(packed) == tuple(items)


@given(st.lists(_ELEMENTS | st.floats() | st.integers(-(2**70), 2**70)
                | st.uuids() | st.lists(st.floats(), max_size=3).map(tuple), max_size=6))
def test_pack_gives_what_the_binding_gives(items: list[object]) -> None:
    """The fast encoder's bytes are the binding's on every tuple: NULs in strings and bytes,
    None at the top and inside nested tuples, integers at and past 64 bits, negative zero,
    infinities and NaN, and elements it leaves to the binding (UUIDs)."""
    import fdb.tuple

    assert keys.pack(tuple(items)) == fdb.tuple.pack(tuple(items))
    assert keys.pack(items) == fdb.tuple.pack(tuple(items))


def test_pack_edges_are_the_binding_s() -> None:
    import fdb.tuple

    for t in [(), (None,), ((None,),), (True, False), (2**64 - 2,), (2**64 - 1,),
              (-(2**64) + 2,), (-(2**64) + 1,), (-(2**64),), (-1, 1, 255, 256, -255, -256),
              (0.0, -0.0, float("inf")),
              ("a\x00b", b"\x00\x00"), ((1, ("x", None)), b""), ("\u00e9\U0001f600",)]:
        assert keys.pack(t) == fdb.tuple.pack(t), t


def test_unpack_of_truncated_input_is_an_error_as_in_the_binding() -> None:
    import fdb.tuple
    import pytest

    for raw in (b"\x02abc", b"\x05\x02a\x00", b"\x16\x01"):
        try:
            expected: object = fdb.tuple.unpack(raw)
        except Exception as e:
            expected = type(e)
        if isinstance(expected, type):
            with pytest.raises(Exception):  # noqa: B017
                keys.unpack(raw)
        else:
            assert keys.unpack(raw) == expected


@given(st.lists(_ELEMENTS, max_size=6), st.integers(0, 7))
def test_unpack_prefix_is_the_head_of_unpack(items: list[object], count: int) -> None:
    packed = keys.pack(tuple(items))
    assert keys.unpack_prefix(packed, count) == keys.unpack(packed)[:count]
