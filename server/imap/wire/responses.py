"""Server responses as bytes (RFC 9051 §7 and the extensions' response sections).

Each response is a frozen dataclass with ``render(utf8=False) -> bytes`` (CRLF included);
``utf8`` is on once IMAP4rev2 or UTF8=ACCEPT is enabled: mailbox names go out in UTF-8 instead
of modified UTF-7 and quoted strings may carry UTF-8 (RFC 9051 §5.1, RFC 6855 §3).
FETCH data is in :mod:`.fetch_data`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

from server.imap.wire.mutf7 import encode_mailbox
from server.imap.wire.sequence import SequenceSet
from server.imap.wire.values import Atom, Value, render, render_astring

__all__ = [
    "Response", "Code", "CODES", "Tagged", "Untagged", "Continuation", "CapabilityData",
    "EnabledData", "ListData", "StatusData", "FlagsData", "ExistsData", "RecentData",
    "ExpungeData", "VanishedData", "ESearchData",
    "SearchData", "SortData", "ThreadNode", "ThreadData", "QuotaData", "QuotaRootData",
    "NamespaceData", "IdData", "MetadataData", "mailbox_name",
]

# Every response code fdbmail may send (RFC 9051 §7.1 and the extensions that define them).
CODES = frozenset(
    {
        # RFC 9051 §7.1
        "ALERT", "ALREADYEXISTS", "APPENDUID", "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED",
        "BADCHARSET", "CANNOT", "CAPABILITY", "CLIENTBUG", "CLOSED", "CONTACTADMIN",
        "COPYUID", "CORRUPTION", "EXPIRED", "EXPUNGEISSUED", "HASCHILDREN", "INUSE", "LIMIT",
        "NONEXISTENT", "NOPERM", "OVERQUOTA", "PARSE", "PERMANENTFLAGS", "PRIVACYREQUIRED",
        "READ-ONLY", "READ-WRITE", "SERVERBUG", "TRYCREATE", "UIDNEXT", "UIDNOTSTICKY",
        "UIDVALIDITY", "UNAVAILABLE", "UNKNOWN-CTE",
        "UNSEEN",  # RFC 3501 §7.1 (IMAP4rev1 sessions)
        "HIGHESTMODSEQ", "NOMODSEQ", "MODIFIED",  # RFC 7162 §3.1
        "TOOBIG",  # RFC 4469 / RFC 7888 §4
        "USEATTR",  # RFC 6154 §6
        "MAILBOXID",  # RFC 8474 §4
        "COMPRESSIONACTIVE",  # RFC 4978 §3
        "NOTSAVED",  # RFC 5182 §2.1
        "METADATA",  # RFC 5464 §4.2.1, §4.3
        "NOTIFICATIONOVERFLOW", "BADEVENT",  # RFC 5465 §5
        "ANNOTATE",  # reserved, never sent
    }
)


class Response(Protocol):
    def render(self, utf8: bool = False) -> bytes: ...


def mailbox_name(name: str, utf8: bool) -> bytes:
    """A mailbox name as an astring in the session's encoding."""
    return render_astring(encode_mailbox(name, utf8), utf8)


@dataclass(frozen=True, slots=True)
class Code:
    """resp-text-code: ``name`` then its arguments, already in wire form or as values.
    Sequence sets go in as :class:`SequenceSet`; lists such as PERMANENTFLAGS as tuples."""

    name: str
    args: tuple[Value | SequenceSet, ...] = ()

    def render(self, utf8: bool = False) -> bytes:
        out = [self.name.encode("ascii")]
        for arg in self.args:
            out.append(arg.render() if isinstance(arg, SequenceSet) else render(arg, utf8))
        return b"[" + b" ".join(out) + b"]"

    @staticmethod
    def appenduid(uidvalidity: int, uids: SequenceSet) -> Code:
        return Code("APPENDUID", (uidvalidity, uids))

    @staticmethod
    def copyuid(uidvalidity: int, source: SequenceSet, dest: SequenceSet) -> Code:
        return Code("COPYUID", (uidvalidity, source, dest))

    @staticmethod
    def permanentflags(flags: tuple[str, ...]) -> Code:
        return Code("PERMANENTFLAGS", (tuple(Atom(f) for f in flags),))

    @staticmethod
    def capability(caps: tuple[str, ...]) -> Code:
        return Code("CAPABILITY", tuple(Atom(c) for c in caps))

    @staticmethod
    def badcharset(charsets: tuple[str, ...]) -> Code:
        return Code("BADCHARSET", (tuple(charsets),) if charsets else ())

    @staticmethod
    def number(name: str, value: int) -> Code:
        """UIDNEXT, UIDVALIDITY, UNSEEN, HIGHESTMODSEQ."""
        return Code(name, (value,))

    @staticmethod
    def modified(messages: SequenceSet) -> Code:
        return Code("MODIFIED", (messages,))

    @staticmethod
    def mailboxid(object_id: str) -> Code:
        return Code("MAILBOXID", ((Atom(object_id),),))


def _text(text: str) -> bytes:
    """resp-text's text: no CR or LF, never empty (RFC 9051 §9 ``text = 1*TEXT-CHAR``)."""
    cleaned = text.replace("\r", " ").replace("\n", " ") or "done"
    return cleaned.encode("utf-8", "replace")


def _resp_text(code: Code | None, text: str, utf8: bool) -> bytes:
    return (code.render(utf8) + b" " if code is not None else b"") + _text(text)


@dataclass(frozen=True, slots=True)
class Tagged:
    """response-tagged = tag SP resp-cond-state CRLF; status OK / NO / BAD."""

    tag: str
    status: str
    text: str
    code: Code | None = None

    def render(self, utf8: bool = False) -> bytes:
        head = self.tag.encode("ascii") + b" " + self.status.encode("ascii") + b" "
        return head + _resp_text(self.code, self.text, utf8) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Untagged:
    """``* OK / NO / BAD / PREAUTH / BYE [code] text`` (RFC 9051 §7.1)."""

    status: str
    text: str
    code: Code | None = None

    def render(self, utf8: bool = False) -> bytes:
        head = b"* " + self.status.encode("ascii") + b" "
        return head + _resp_text(self.code, self.text, utf8) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Continuation:
    """continue-req = "+" SP (resp-text / base64) CRLF (RFC 9051 §7.5)."""

    text: str = "Ready"
    challenge: bytes | None = None

    def render(self, utf8: bool = False) -> bytes:
        if self.challenge is not None:
            return b"+ " + base64.b64encode(self.challenge) + b"\r\n"
        return b"+ " + _text(self.text) + b"\r\n"


def _atoms(words: tuple[str, ...]) -> bytes:
    return b" ".join(w.encode("ascii") for w in words)


@dataclass(frozen=True, slots=True)
class CapabilityData:
    capabilities: tuple[str, ...]

    def render(self, utf8: bool = False) -> bytes:
        return b"* CAPABILITY " + _atoms(self.capabilities) + b"\r\n"


@dataclass(frozen=True, slots=True)
class EnabledData:
    """``* ENABLED`` with what this ENABLE turned on (RFC 5161 §3.2); may be empty."""

    capabilities: tuple[str, ...]

    def render(self, utf8: bool = False) -> bytes:
        if not self.capabilities:
            return b"* ENABLED\r\n"
        return b"* ENABLED " + _atoms(self.capabilities) + b"\r\n"


@dataclass(frozen=True, slots=True)
class ListData:
    """mailbox-list with mbox-list-extended (RFC 9051 §7.3.1, RFC 5258 §4 CHILDINFO,
    RFC 9051 OLDNAME); ``lsub`` for the IMAP4rev1 LSUB form."""

    attributes: tuple[str, ...]
    delimiter: str | None
    mailbox: str
    childinfo: tuple[str, ...] = ()
    oldname: str | None = None
    lsub: bool = False

    def render(self, utf8: bool = False) -> bytes:
        delim = b"NIL" if self.delimiter is None else render(self.delimiter)
        out = b"* %s (%s) %s %s" % (
            b"LSUB" if self.lsub else b"LIST", _atoms(self.attributes), delim,
            mailbox_name(self.mailbox, utf8),
        )
        ext = []
        if self.childinfo:
            ext.append(b'"CHILDINFO" (' + b" ".join(render(c) for c in self.childinfo) + b")")
        if self.oldname is not None:
            ext.append(b'"OLDNAME" (' + mailbox_name(self.oldname, utf8) + b")")
        if ext:
            out += b" (" + b" ".join(ext) + b")"
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class StatusData:
    """``* STATUS mailbox (item value ...)``; MAILBOXID's value is an object id (RFC 8474)."""

    mailbox: str
    items: tuple[tuple[str, int | str], ...]

    def render(self, utf8: bool = False) -> bytes:
        parts = []
        for name, value in self.items:
            shown = b"(" + value.encode("ascii") + b")" if isinstance(value, str) else b"%d" % value
            parts.append(name.encode("ascii") + b" " + shown)
        return b"* STATUS %s (%s)\r\n" % (mailbox_name(self.mailbox, utf8), b" ".join(parts))


@dataclass(frozen=True, slots=True)
class FlagsData:
    flags: tuple[str, ...]

    def render(self, utf8: bool = False) -> bytes:
        return b"* FLAGS (" + _atoms(self.flags) + b")\r\n"


@dataclass(frozen=True, slots=True)
class ExistsData:
    count: int

    def render(self, utf8: bool = False) -> bytes:
        return b"* %d EXISTS\r\n" % self.count


@dataclass(frozen=True, slots=True)
class RecentData:
    """IMAP4rev1 only (RFC 3501 §7.3.2)."""

    count: int

    def render(self, utf8: bool = False) -> bytes:
        return b"* %d RECENT\r\n" % self.count


@dataclass(frozen=True, slots=True)
class ExpungeData:
    number: int

    def render(self, utf8: bool = False) -> bytes:
        return b"* %d EXPUNGE\r\n" % self.number


@dataclass(frozen=True, slots=True)
class VanishedData:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10)."""

    uids: SequenceSet
    earlier: bool = False

    def render(self, utf8: bool = False) -> bytes:
        return b"* VANISHED %s%s\r\n" % (b"(EARLIER) " if self.earlier else b"", self.uids.render())


@dataclass(frozen=True, slots=True)
class ESearchData:
    """``* ESEARCH [(TAG "t")] [UID] [MIN n] [MAX n] [ALL set] [COUNT n] [MODSEQ n]``
    (RFC 4731 §3.1, RFC 7162 §3.1.5)."""

    tag: str | None = None
    uid: bool = False
    min: int | None = None
    max: int | None = None
    all: SequenceSet | None = None
    count: int | None = None
    modseq: int | None = None

    def render(self, utf8: bool = False) -> bytes:
        out = b"* ESEARCH"
        if self.tag is not None:
            out += b' (TAG "' + self.tag.encode("ascii") + b'")'
        if self.uid:
            out += b" UID"
        for name, number in ((b"MIN", self.min), (b"MAX", self.max)):
            if number is not None:
                out += b" %s %d" % (name, number)
        if self.all is not None and self.all.ranges:
            out += b" ALL " + self.all.render()
        for name, number in ((b"COUNT", self.count), (b"MODSEQ", self.modseq)):
            if number is not None:
                out += b" %s %d" % (name, number)
        return out + b"\r\n"


@dataclass(frozen=True, slots=True)
class SearchData:
    """``* SEARCH n ... [(MODSEQ m)]`` (RFC 3501 §7.2.5, RFC 7162 §3.1.5)."""

    numbers: tuple[int, ...]
    modseq: int | None = None
    name: str = "SEARCH"

    def render(self, utf8: bool = False) -> bytes:
        out = b"* " + self.name.encode("ascii")
        if self.numbers:
            out += b" " + b" ".join(b"%d" % n for n in self.numbers)
            if self.modseq is not None:
                out += b" (MODSEQ %d)" % self.modseq
        return out + b"\r\n"


def SortData(numbers: tuple[int, ...], modseq: int | None = None) -> SearchData:
    """``* SORT n ...`` (RFC 5256 §4), MODSEQ as for SEARCH (RFC 7162 §3.1.5)."""
    return SearchData(numbers, modseq, "SORT")


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """A message (``number``) or a dummy parent (None) and the messages that follow it."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


def _thread(root: ThreadNode) -> bytes:
    """thread-members [SP thread-nested] (RFC 5256 §5), without recursion: reply trees can be
    deeper than Python's stack."""
    out = bytearray()
    stack: list[ThreadNode | bytes] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out += item
            continue
        node = item
        numbers: list[bytes] = []
        while True:  # a chain of single replies is one run of numbers
            if node.number is not None:
                numbers.append(b"%d" % node.number)
            if len(node.children) != 1:
                break
            node = node.children[0]
        out += b" ".join(numbers)
        if numbers and node.children:
            out += b" "
        for child in reversed(node.children):
            stack += (b")", child, b"(")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class ThreadData:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` (RFC 5256 §4)."""

    threads: tuple[ThreadNode, ...]

    def render(self, utf8: bool = False) -> bytes:
        body = b"".join(b"(" + _thread(t) + b")" for t in self.threads)
        return b"* THREAD" + (b" " + body if body else b"") + b"\r\n"


@dataclass(frozen=True, slots=True)
class QuotaData:
    """``* QUOTA root (resource usage limit ...)`` (RFC 9208 §5.1)."""

    root: str
    resources: tuple[tuple[str, int, int], ...]

    def render(self, utf8: bool = False) -> bytes:
        items = b" ".join(b"%s %d %d" % (n.encode("ascii"), u, lim) for n, u, lim in self.resources)
        return b"* QUOTA %s (%s)\r\n" % (render_astring(self.root.encode("utf-8"), utf8), items)


@dataclass(frozen=True, slots=True)
class QuotaRootData:
    """``* QUOTAROOT mailbox root ...`` (RFC 9208 §5.2)."""

    mailbox: str
    roots: tuple[str, ...]

    def render(self, utf8: bool = False) -> bytes:
        out = b"* QUOTAROOT " + mailbox_name(self.mailbox, utf8)
        for root in self.roots:
            out += b" " + render_astring(root.encode("utf-8"), utf8)
        return out + b"\r\n"


Namespaces = tuple[tuple[str, str | None], ...] | None


def _namespace(spaces: Namespaces, utf8: bool) -> bytes:
    if not spaces:
        return b"NIL"
    return b"(" + b"".join(
        b"(" + render(encode_mailbox(prefix, utf8), utf8) + b" " + render(delim) + b")"
        for prefix, delim in spaces
    ) + b")"


@dataclass(frozen=True, slots=True)
class NamespaceData:
    """``* NAMESPACE personal other shared``, each a list of (prefix, delimiter) or NIL
    (RFC 9051 §7.3.3, RFC 2342)."""

    personal: Namespaces
    other: Namespaces = None
    shared: Namespaces = None

    def render(self, utf8: bool = False) -> bytes:
        return b"* NAMESPACE %s %s %s\r\n" % (
            _namespace(self.personal, utf8), _namespace(self.other, utf8),
            _namespace(self.shared, utf8),
        )


@dataclass(frozen=True, slots=True)
class IdData:
    """``* ID ("name" "fdbmail" ...)`` or ``* ID NIL`` (RFC 2971 §3.2)."""

    params: tuple[tuple[str, str | None], ...] | None

    def render(self, utf8: bool = False) -> bytes:
        if not self.params:
            return b"* ID NIL\r\n"
        flat: list[Value] = []
        for name, value in self.params:
            flat += [name, value]
        return b"* ID " + render(tuple(flat), utf8) + b"\r\n"


@dataclass(frozen=True, slots=True)
class MetadataData:
    """``* METADATA mailbox (entry value ...)`` (RFC 5464 §4.4.1); "" is the server."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]

    def render(self, utf8: bool = False) -> bytes:
        items = b" ".join(
            render_astring(n.encode("utf-8"), utf8) + b" " + render(v, utf8)
            for n, v in self.entries
        )
        return b"* METADATA %s (%s)\r\n" % (mailbox_name(self.mailbox, utf8), items)
