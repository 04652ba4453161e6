"""FETCH response data (RFC 9051 §7.5.2) and one typed builder per item, so the session says
``item_flags(...)`` rather than assembling wire names and lists. ENVELOPE and BODYSTRUCTURE
are rendered from the summary stored at delivery through :mod:`server.mime.imap_render`
(the same renderer every IMAP path uses), in the session's UTF-8 mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.imap.wire.fetch import FetchBinarySize, FetchBody
from server.imap.wire.values import Atom, Binary, Value, imap_datetime, render
from server.imap.wire.downgrade import downgrade_envelope
from server.mime.imap_render import render_bodystructure, render_envelope_of
from server.mime.model import Envelope, MessageSummary

__all__ = [
    "FetchData", "EnvelopeOf", "EnvelopeCell", "BodyStructureOf", "FetchValue", "FetchPair",
    "fetch_line", "render_item", "item_flags",
    "item_uid", "item_internaldate", "item_savedate", "item_size", "item_modseq",
    "item_emailid", "item_threadid", "item_preview", "item_envelope", "item_bodystructure",
    "item_body", "item_section", "item_binary_size", "body_octets",
]


@dataclass(frozen=True, slots=True)
class EnvelopeOf:
    """FETCH ENVELOPE of a stored summary (or of its envelope alone), rendered in the
    session's mode."""

    summary: MessageSummary | Envelope


@dataclass(slots=True, eq=False)
class EnvelopeCell:
    """FETCH ENVELOPE of a message whose envelope is kept in memory: a stored message never
    changes, so its item's wire form (``ENVELOPE (...)``), once rendered for a mode (UTF-8
    or not), is kept here and reused (issue 12: a FETCH 1:* (FLAGS ENVELOPE) renders each
    envelope once)."""

    envelope: Envelope
    wire: dict[bool, bytes] = field(default_factory=dict)

    def item(self, utf8: bool) -> bytes:
        """``ENVELOPE (...)`` in the session's mode."""
        shown = self.wire.get(utf8)
        if shown is None:
            env = self.envelope
            shown = self.wire[utf8] = b"ENVELOPE " + render_envelope_of(
                env if utf8 else downgrade_envelope(env), utf8)
        return shown


@dataclass(frozen=True, slots=True)
class BodyStructureOf:
    """FETCH BODYSTRUCTURE (``extensible``) or BODY of a stored summary."""

    summary: MessageSummary
    extensible: bool = True


FetchValue = Value | EnvelopeOf | EnvelopeCell | BodyStructureOf
FetchPair = tuple[bytes, FetchValue]


@dataclass(frozen=True, slots=True)
class FetchData:
    """``* n FETCH (name value ...)`` (RFC 9051 §7.5.2). Names are in wire form
    (``b"BODY[1.2]<0>"``, see :meth:`FetchBody.response_name`); values are
    :data:`~.values.Value` (bytes for a section, :class:`~.values.Binary` for BINARY[],
    ``(n,)`` for MODSEQ, ``(Atom(id),)`` for EMAILID) or a summary to render."""

    number: int
    items: tuple[FetchPair, ...] = field(default=())

    def render(self, utf8: bool = False) -> bytes:
        return fetch_line(self.number, [render_item(name, value, utf8)
                                        for name, value in self.items])


def fetch_line(number: int, items: list[bytes]) -> bytes:
    """``* n FETCH (...)`` of items already in wire form (:func:`render_item`)."""
    return b"* %d FETCH (%s)\r\n" % (number, b" ".join(items))


def render_item(name: bytes, value: FetchValue, utf8: bool) -> bytes:
    """One item of a FETCH response, ``name value``, in the session's mode."""
    if isinstance(value, EnvelopeCell):
        return value.item(utf8)
    if isinstance(value, EnvelopeOf):
        # RFC 6855 sections 7-8: no UTF-8 header text to a client that did not enable
        # it (encoded words, A-labels; see .downgrade)
        env = (value.summary if isinstance(value.summary, Envelope)
               else value.summary.envelope)
        shown = render_envelope_of(env if utf8 else downgrade_envelope(env), utf8)
    elif isinstance(value, BodyStructureOf):
        shown = render_bodystructure(value.summary, value.extensible, utf8,
                                     None if utf8 else downgrade_envelope)
    else:
        shown = render(value, utf8)
    return name + b" " + shown


def item_flags(flags: tuple[str, ...]) -> FetchPair:
    return (b"FLAGS", tuple(Atom(f) for f in flags))


def item_uid(uid: int) -> FetchPair:
    return (b"UID", uid)


def item_internaldate(when: datetime) -> FetchPair:
    return (b"INTERNALDATE", imap_datetime(when))


def item_savedate(when: datetime | None) -> FetchPair:
    """RFC 8514 §4: NIL when the mailbox keeps no save date."""
    return (b"SAVEDATE", None if when is None else imap_datetime(when))


def item_size(size: int) -> FetchPair:
    return (b"RFC822.SIZE", size)


def item_modseq(modseq: int) -> FetchPair:
    """RFC 7162 §3.1.4.1: ``MODSEQ (n)``."""
    return (b"MODSEQ", (modseq,))


def item_emailid(email_id: str) -> FetchPair:
    """RFC 8474 §5: ``EMAILID (id)``."""
    return (b"EMAILID", (Atom(email_id),))


def item_threadid(thread_id: str | None) -> FetchPair:
    """RFC 8474 §5: ``THREADID (id)`` or NIL."""
    return (b"THREADID", None if thread_id is None else (Atom(thread_id),))


def item_preview(text: str | None) -> FetchPair:
    """RFC 8970 §3: an nstring (NIL when LAZY and not yet computed)."""
    return (b"PREVIEW", text)


def item_envelope(summary: MessageSummary | Envelope) -> FetchPair:
    return (b"ENVELOPE", EnvelopeOf(summary))


def item_bodystructure(summary: MessageSummary) -> FetchPair:
    return (b"BODYSTRUCTURE", BodyStructureOf(summary, extensible=True))


def item_body(summary: MessageSummary) -> FetchPair:
    """FETCH BODY: the non-extensible form of BODYSTRUCTURE."""
    return (b"BODY", BodyStructureOf(summary, extensible=False))


def body_octets(data: bytes | None) -> bytes | None:
    """The octets of a BODY[...] (or RFC822...) answer, which is an nstring (RFC 9051 §9:
    ``"BODY" section ["<" number ">"] SP nstring``) and so can hold no NUL: a literal is
    ``*CHAR8`` (%x01-ff), and §4.3.1 allows "unencoded binary strings" only "in a
    <literal8> in response to a BINARY.PEEK[...] or BINARY[...] FETCH data item".  A
    stored message with NUL octets (a binary APPEND, RFC 3516 §4.4) therefore has each
    NUL sent as 0x80: the size, RFC822.SIZE and partial offsets stay true, and the
    client that wants the octets as stored asks for BINARY[]."""
    if data is not None and b"\x00" in data:
        return data.replace(b"\x00", b"\x80")
    return data


def item_section(request: FetchBody, data: bytes | None) -> FetchPair:
    """BODY[...]<n> as a string or NIL (no NUL: :func:`body_octets`).  BINARY[...] is
    literal8 only when the decoded octets hold NUL; otherwise a string (RFC 3516 §4.2: "the
    server SHOULD return the data in a <string> instead of a <literal8>", so the client
    learns there is no NUL without a scan)."""
    if not request.binary:
        return (request.response_name(), body_octets(data))
    if data is not None and b"\x00" in data:
        return (request.response_name(), Binary(data))
    return (request.response_name(), data)


def item_binary_size(request: FetchBinarySize, size: int) -> FetchPair:
    return (b"BINARY.SIZE[" + b".".join(b"%d" % n for n in request.part) + b"]", size)
