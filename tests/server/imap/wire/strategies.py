"""hypothesis strategies for parsed commands (what a client could send)."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from server.imap.wire import commands as c
from server.imap.wire.fetch import (
    SIMPLE, FetchAttr, FetchBinarySize, FetchBody, FetchItem, FetchPreview, Section,
)
from server.imap.wire.search import (
    DATE_KEYS, FLAG_KEYS, TEXT_KEYS, SearchAge, SearchAnd, SearchDate, SearchFlag,
    SearchHeader, SearchKey, SearchKeyword, SearchModSeq, SearchNot, SearchObjectId, SearchOr,
    SearchSet, SearchSize, SearchText,
)
from server.imap.wire.sequence import STAR, SeqNumber, SequenceSet

ATOM_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$_-.!#&'+,/:;<=>?@^`|~"
)
tags = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_",
               min_size=1, max_size=8)
atoms = st.text(alphabet=ATOM_ALPHABET, min_size=1, max_size=12).filter(
    lambda s: s.upper() != "NIL"
)
# text an astring may carry: anything but NUL and lone surrogates ("{" would confuse the
# LITERAL+ rewriting of the test serializer)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00{"),
    max_size=20,
)
# mailbox names are Net-Unicode, in NFC (RFC 9051 section 5.1): the parser normalizes a
# UTF-8 one, so only normalized names survive a round trip unchanged
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="{"),
    max_size=16,
).map(lambda s: unicodedata.normalize("NFC", s)).filter(
    lambda s: s.upper() != "INBOX") | st.just("INBOX")
numbers = st.integers(1, 4_294_967_295)
modseqs = st.integers(1, 2**63 - 1)
keywords = atoms.filter(lambda s: not s.startswith("\\"))
system_flags = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"])
flags = system_flags | keywords
flag_lists = st.lists(flags, max_size=4).map(tuple)
seq_numbers: st.SearchStrategy[SeqNumber] = st.integers(1, 10**6) | st.just(STAR)
sequence_sets = st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=4).map(
    lambda r: SequenceSet(tuple(r))
)
uid_sets_or_saved = sequence_sets | st.just(SequenceSet(saved=True))
datetimes = st.builds(
    lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes)), microsecond=0),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
dates = st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2100, 1, 1).date())

leaf_keys: st.SearchStrategy[SearchKey] = st.one_of(
    st.sampled_from(sorted(FLAG_KEYS)).map(SearchFlag),
    st.builds(SearchText, st.sampled_from(sorted(TEXT_KEYS)), texts),
    st.builds(SearchHeader, texts, texts),
    st.builds(SearchKeyword, flags, st.booleans()),
    st.builds(SearchDate, st.sampled_from(sorted(DATE_KEYS)), dates),
    st.builds(SearchSize, st.booleans(), st.integers(0, 2**63 - 1)),
    st.builds(SearchAge, st.booleans(), numbers),
    st.builds(SearchSet, uid_sets_or_saved, st.booleans()),
    st.builds(
        SearchModSeq, st.integers(0, 2**63 - 1),
        st.none() | st.tuples(st.sampled_from(["/flags/\\Seen", "/flags/$Junk"]),
                              st.sampled_from(["PRIV", "SHARED", "ALL"])),
    ),
    st.builds(SearchObjectId, st.sampled_from(["EMAILID", "THREADID"]),
              st.text(alphabet="abcXYZ019_-", min_size=1, max_size=20)),
)
search_keys: st.SearchStrategy[SearchKey] = st.recursive(
    leaf_keys,
    lambda inner: st.one_of(
        st.builds(SearchNot, inner),
        st.builds(SearchOr, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda k: SearchAnd(tuple(k))),
    ),
    max_leaves=8,
)
parts = st.lists(st.integers(1, 50), max_size=3).map(tuple)
header_names = st.lists(atoms, min_size=1, max_size=3).map(tuple)


@st.composite
def sections(draw: st.DrawFn) -> Section:
    part = draw(parts)
    texts_ = ["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"] + (["MIME"] if part else [])
    text = draw(st.none() | st.sampled_from(texts_))
    fields = draw(header_names) if text is not None and text.startswith("HEADER.FIELDS") else ()
    return Section(part, text, fields)


partials = st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1))
fetch_items: st.SearchStrategy[FetchItem] = st.one_of(
    st.sampled_from(sorted(SIMPLE)).map(FetchAttr),
    st.builds(FetchBody, sections(), st.booleans(), st.just(False), partials),
    st.builds(lambda p, peek, part: FetchBody(Section(p), peek, True, part), parts,
              st.booleans(), partials),
    st.builds(FetchBinarySize, parts),
    st.builds(FetchPreview, st.booleans()),
)
fetch_lists = st.lists(fetch_items, min_size=1, max_size=4).map(tuple)
status_items = st.lists(
    st.sampled_from(["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
                     "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID"]),
    min_size=1, max_size=4,
).map(tuple)
search_returns = st.none() | st.lists(
    st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE"]), max_size=3
).map(tuple)
charsets = st.sampled_from(["UTF-8", "US-ASCII"])
messages = st.builds(
    c.AppendMessage, st.binary(max_size=30), flag_lists, st.none() | datetimes,
    st.booleans(), st.booleans(),
).map(lambda m: m if not m.utf8 else c.AppendMessage(m.data, m.flags, m.date, True, False))
messages = messages.filter(lambda m: m.utf8 or m.binary or b"\x00" not in m.data)


@st.composite
def _fetch(draw: st.DrawFn) -> c.Fetch:
    uid = draw(st.booleans())
    changed = draw(st.none() | modseqs)
    vanished = uid and changed is not None and draw(st.booleans())
    return c.Fetch(draw(tags), draw(uid_sets_or_saved), draw(fetch_lists), uid, changed, vanished)


@st.composite
def _list(draw: st.DrawFn) -> c.ListCmd:
    selection = draw(st.lists(st.sampled_from(["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH",
                                               "SPECIAL-USE"]), max_size=2).map(tuple))
    returns = draw(st.lists(st.sampled_from(["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"]),
                            max_size=2))
    status = draw(st.none() | status_items)
    if status is not None:
        returns.append("STATUS")
    patterns = draw(st.lists(names, min_size=1, max_size=3).map(tuple))
    extended = bool(selection or returns or len(patterns) > 1 or draw(st.booleans()))
    return c.ListCmd(draw(tags), draw(names), patterns, selection, tuple(returns), status,
                     extended)


@st.composite
def _select(draw: st.DrawFn) -> c.Select:
    q = draw(st.none() | st.builds(
        c.QResync, numbers, modseqs, st.none() | sequence_sets,
        st.none() | st.tuples(sequence_sets, sequence_sets),
    ))
    return c.Select(draw(tags), draw(names), draw(st.booleans()), draw(st.booleans()), q)


@st.composite
def _notify_group(draw: st.DrawFn) -> c.NotifyEventGroup:
    filter_ = draw(st.sampled_from(["SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL",
                                    "SUBSCRIBED", "SUBTREE", "MAILBOXES"]))
    mailboxes = ()
    if filter_ in ("SUBTREE", "MAILBOXES"):
        mailboxes = tuple(draw(st.lists(names, min_size=1, max_size=3)))
    events = tuple(draw(st.lists(st.sampled_from(
        ["MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "MAILBOXNAME", "SUBSCRIPTIONCHANGE"]),
        min_size=1, max_size=3, unique=True)))
    if draw(st.booleans()):
        events = ("NONE",)
    fetch = draw(fetch_lists) if "MESSAGENEW" in events and draw(st.booleans()) else ()
    return c.NotifyEventGroup(filter_, mailboxes, events, fetch)


commands: st.SearchStrategy[c.Command] = st.one_of(
    st.builds(c.Capability, tags), st.builds(c.Noop, tags), st.builds(c.Logout, tags),
    st.builds(c.StartTLS, tags), st.builds(c.Idle, tags), st.builds(c.Namespace, tags),
    st.builds(c.Check, tags), st.builds(c.Close, tags), st.builds(c.Unselect, tags),
    st.builds(c.Unauthenticate, tags),
    st.builds(c.Authenticate, tags, atoms.map(str.upper),
              st.none() | st.sampled_from(["=", "AGZyZWQAc2VjcmV0", "dGVzdA=="])),
    st.builds(c.Login, tags, texts, texts),
    st.builds(c.Enable, tags, st.lists(atoms.map(str.upper), min_size=1, max_size=3).map(tuple)),
    _select(),
    st.builds(c.Create, tags, names, st.lists(st.sampled_from(
        ["\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive"]), max_size=2).map(tuple)),
    st.builds(c.Delete, tags, names), st.builds(c.Rename, tags, names, names),
    st.builds(c.Subscribe, tags, names), st.builds(c.Unsubscribe, tags, names),
    _list(), st.builds(c.Lsub, tags, names, names),
    st.builds(c.Status, tags, names, status_items),
    st.builds(c.Append, tags, names, st.lists(messages, min_size=1, max_size=3).map(tuple)),
    st.builds(c.Replace, tags, numbers, names, messages, st.booleans()),
    st.builds(c.Expunge, tags, st.none() | uid_sets_or_saved),
    st.builds(c.Search, tags, search_keys, st.none() | charsets, search_returns,
              st.booleans()),
    _fetch(),
    st.builds(c.Store, tags, uid_sets_or_saved, st.sampled_from(["", "+", "-"]), flag_lists,
              st.booleans(), st.booleans(), st.none() | st.integers(0, 2**63 - 1)),
    st.builds(c.Copy, tags, uid_sets_or_saved, names, st.booleans()),
    st.builds(c.Move, tags, uid_sets_or_saved, names, st.booleans()),
    st.builds(c.Sort, tags, st.lists(st.tuples(st.booleans(), st.sampled_from(
        ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM"])),
        min_size=1, max_size=3).map(tuple), charsets, search_keys, search_returns,
        st.booleans()),
    st.builds(c.Thread, tags, st.sampled_from(["REFERENCES", "ORDEREDSUBJECT"]), charsets,
              search_keys, st.booleans()),
    st.builds(c.Id, tags, st.none() | st.lists(st.tuples(texts, st.none() | texts),
                                               max_size=3).map(tuple)),
    st.builds(c.Compress, tags, st.just("DEFLATE")),
    st.builds(c.GetQuota, tags, texts), st.builds(c.GetQuotaRoot, tags, names),
    st.builds(c.SetQuota, tags, texts, st.lists(st.tuples(st.sampled_from(
        ["STORAGE", "MESSAGE", "MAILBOX"]), st.integers(0, 2**63 - 1)), max_size=2).map(tuple)),
    st.builds(c.GetMetadata, tags, names, st.lists(texts.filter(bool), min_size=1,
              max_size=2).map(tuple), st.none() | st.integers(0, 2**32 - 1),
              st.sampled_from(["0", "1", "infinity"])),
    st.builds(c.SetMetadata, tags, names, st.lists(st.tuples(
        texts.filter(bool), st.none() | st.binary(max_size=10)), min_size=1, max_size=2
    ).map(tuple)),
    st.builds(c.Notify, tags, st.none() | st.lists(_notify_group(), min_size=1,
                                                   max_size=3).map(tuple), st.booleans())
    .map(lambda n: n if n.groups is not None else c.Notify(n.tag, None)),
)
