"""The SEARCH evaluator without a server: hypothesis properties of the three-valued scan
(a value decided on cheap data never changes once more is read; NOT, OR and AND are the set
operations RFC 9051 §6.4.4 describes) and the resolution of sequence sets, UID sets and
``$`` (RFC 9051 §9, RFC 5182 §2.1) that FETCH, STORE and COPY share."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from fdb_layers.mail import Email, Message
from server.imap.session.search import (
    BODY, FLAGS, Candidate, _Context, _match, _prepare, resolve_saved, resolve_set,
)
from server.imap.session.state import Selected
from server.imap.wire.search import (
    SearchAnd, SearchDate, SearchFlag, SearchHeader, SearchKey, SearchKeyword, SearchNot,
    SearchOr, SearchSet, SearchSize, SearchText,
)
from server.imap.wire.sequence import SequenceSet
from server.mime import parse_message
from tests.server.imap.test_search import MESSAGES, _at

SEL = Selected("box", "INBOX", 1, False, [3, 5, 8, 9])


def _candidates() -> list[Candidate]:
    out = []
    for n, ((raw, when, keywords), uid) in enumerate(zip(MESSAGES, SEL.uids, strict=True), 1):
        summary = parse_message(raw)
        email = Email(f"e{n}", "blob", len(raw), _at(when), f"t{n}", keywords, {}, n)
        out.append(Candidate(n, Message(uid, f"e{n}", n, keywords), email, summary,
                             raw[: summary.header_end], raw))
    return out


CANDIDATES = _candidates()

LEAVES = st.sampled_from([
    SearchFlag("SEEN"), SearchFlag("UNSEEN"), SearchFlag("DELETED"), SearchFlag("ALL"),
    SearchKeyword("project"), SearchSize(True, 1000), SearchSize(False, 300),
    SearchDate("SINCE", date(2024, 1, 2)), SearchDate("SENTON", date(2024, 1, 1)),
    SearchText("SUBJECT", "menu"), SearchText("FROM", "bob"), SearchText("BODY", "lait"),
    SearchText("TEXT", "report"), SearchHeader("X-Priority", ""),
    SearchSet(SequenceSet(((2, "*"),))), SearchSet(SequenceSet(((5, 8),)), uid=True),
    SearchSet(SequenceSet(saved=True)),
])
KEYS = st.recursive(LEAVES, lambda inner: st.one_of(
    st.builds(SearchNot, inner),
    st.builds(SearchOr, inner, inner),
    st.builds(lambda ks: SearchAnd(tuple(ks)), st.lists(inner, min_size=1, max_size=3)),
), max_leaves=8)


def _context(key: SearchKey) -> _Context:
    sel = Selected("box", "INBOX", 1, False, list(SEL.uids), saved=(5, 9))
    ctx = _Context(sel, _at("2024-06-01 00:00:00"), frozenset(resolve_saved(sel)))
    _prepare(key, ctx)
    return ctx


@settings(max_examples=300, deadline=None)
@given(KEYS)
def test_a_value_decided_early_never_changes(key: SearchKey) -> None:
    ctx = _context(key)
    for cand in CANDIDATES:
        final = _match(key, cand, ctx, BODY)
        assert final is not None
        for level in range(FLAGS, BODY):
            early = _match(key, cand, ctx, level)
            assert early is None or early == final, (level, key)


@settings(max_examples=200, deadline=None)
@given(KEYS, KEYS)
def test_not_or_and_are_set_operations(a: SearchKey, b: SearchKey) -> None:
    ctx = _context(SearchAnd((a, b)))
    for cand in CANDIDATES:
        va, vb = _match(a, cand, ctx, BODY), _match(b, cand, ctx, BODY)
        assert _match(SearchNot(a), cand, ctx, BODY) is (not va)
        assert _match(SearchOr(a, b), cand, ctx, BODY) is (bool(va) or bool(vb))
        assert _match(SearchAnd((a, b)), cand, ctx, BODY) is (bool(va) and bool(vb))


def test_resolve_set() -> None:
    """RFC 9051 §9: ``*`` is the last message, ``n:m`` either way round; numbers past the
    end name nothing; UID ranges include the last UID when ``n`` is above it."""
    def seq(ranges: tuple[tuple[int | str, int | str], ...]) -> SequenceSet:
        return SequenceSet(ranges)  # type: ignore[arg-type]

    assert resolve_set(SEL, seq(((1, "*"),)), uid=False) == [3, 5, 8, 9]
    assert resolve_set(SEL, seq(((3, 2), (7, 9))), uid=False) == [5, 8]
    assert resolve_set(SEL, seq((("*", "*"),)), uid=False) == [9]
    assert resolve_set(SEL, seq(((4, 8),)), uid=True) == [5, 8]
    assert resolve_set(SEL, seq(((20, "*"),)), uid=True) == [9]
    assert resolve_set(Selected("b", "B", 1, False), seq(((1, "*"),)), uid=True) == []


def test_resolve_saved_drops_expunged_messages() -> None:
    """RFC 5182 §2.1: the saved result loses messages as they are expunged."""
    sel = Selected("box", "INBOX", 1, False, [3, 5, 8, 9], saved=(3, 8, 9))
    sel.uids.remove(8)
    assert resolve_saved(sel) == [3, 9]
    assert resolve_set(sel, SequenceSet(saved=True), uid=False) == [3, 9]
