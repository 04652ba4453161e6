"""The mail layer's fast tuple packer writes exactly fdb.tuple's bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fdb_layers.keys import pack as tuple_pack
from fdb_layers.keys import unpack
from fdb_layers.mail.layout import EmailRecord, MailboxRecord, MembershipRecord, account_keys, pack

scalars = (
    st.text()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.none()
    | st.binary()
)
elements = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.lists(
    inner, max_size=3).map(tuple), max_leaves=8)


@given(st.lists(elements, max_size=6).map(tuple))
def test_pack_matches_fdb_tuple(t: tuple[object, ...]) -> None:
    assert pack(t) == tuple_pack(t)
    assert unpack(pack(t)) == unpack(tuple_pack(t))


def test_pack_at_the_long_integer_boundary() -> None:
    """fdb.tuple writes 2**64 - 1 and its negative in the arbitrary-length form (found by
    hypothesis: the fast packer wrote them as 8-byte integers)."""
    for n in (2**64 - 2, 2**64 - 1, 2**64, -(2**64 - 2), -(2**64 - 1), -(2**64)):
        assert pack((n,)) == tuple_pack((n,)), n
        assert unpack(pack((n,))) == (n,)


def test_records_round_trip() -> None:
    m = MailboxRecord("p", "Été", "inbox", 7, True, False)
    assert MailboxRecord.decode(m.encode()) == m
    e = EmailRecord(-5, 10, "b" * 64, "T1", ("$seen", "x"), 2, 9)
    assert EmailRecord.decode(e.encode()) == e
    s = MembershipRecord("M1", 3, ())
    assert MembershipRecord.decode(s.encode()) == s


def test_account_keys_are_cached_and_ordered() -> None:
    k = account_keys("a")
    assert account_keys("a") is k
    assert k.uid.pack((1, 2)) < k.uid.pack((1, 10)) < k.uid.pack((2, 0))
    assert k.uid.unpack(k.uid.pack((1, 2))) == (1, 2)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.integers(0, 2**63 - 1),
                          st.lists(st.text(min_size=1, max_size=10), max_size=4)),
                min_size=1, max_size=30))
def test_membership_decode_is_exact_whatever_was_decoded_before(
        records: list[tuple[str, int, list[str]]]) -> None:
    """Decoded memberships are kept by their bytes: every decode gives back exactly the
    record encoded, also after others, also past the bound (the kept ones are dropped)."""
    from fdb_layers.mail import layout

    old = layout.MEMBERSHIPS_KEPT
    layout.MEMBERSHIPS_KEPT = 7
    try:
        for _ in range(2):
            for e, m, kw in records:
                rec = MembershipRecord(e, m, tuple(kw))
                assert MembershipRecord.decode(rec.encode()) == rec
                assert MembershipRecord.decode(bytearray(rec.encode())) == rec
        assert len(layout._MEMBERSHIPS) <= 7
    finally:
        layout.MEMBERSHIPS_KEPT = old
