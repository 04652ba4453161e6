"""A compact, versioned encoding of MessageSummary for the store.

Layout: b"MS" + one version octet + a zlib stream of JSON of positional arrays. Decoders accept
arrays longer than they know (fields appended by later minor versions are ignored) and shorter
ones (missing trailing fields take their defaults), so the format can grow without breaking
readers; a new major version changes the version octet, and older readers refuse it.
JSON is written with ASCII escapes, so surrogate-escaped header octets round-trip exactly.

Most summaries are a few hundred octets: their zlib stream is one *stored* (uncompressed)
block, written and read here without calling deflate or inflate.  Those release the GIL on
every call, and on a busy node each release costs a wait for a worker thread; the stream is
still standard zlib, so every reader decodes it.  Larger summaries are deflated (level 1).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

from server.mime.addresses import Address, AddressList, Group
from server.mime.model import FORMAT_VERSION, Envelope, MessageSummary, Part
from server.mime.params import Params
from server.mime.structure import MAX_DEPTH

__all__ = ["summary_to_bytes", "summary_from_bytes", "envelope_from_bytes", "head_from_bytes"]

_MAGIC = b"MS"
_MAX_INFLATED = 64 * 1024 * 1024
_MAX_NESTING = 2 * MAX_DEPTH + 2  # renderers recurse once per level
_STORED_MAX = 4096  # JSON up to this size is stored, not deflated (adler32 keeps the GIL)
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary (RFC 1950 section 2.2)


def _params(p: Params) -> list[str]:
    return [x for pair in p for x in pair]


def _addresses(items: AddressList) -> list[list[object]]:
    out: list[list[object]] = []
    for a in items:
        if isinstance(a, Group):
            out.append([a.raw_name, [[m.raw_name, m.mailbox, m.host] for m in a.members]])
        else:
            out.append([a.raw_name, a.mailbox, a.host])
    return out


def _envelope(e: Envelope | None) -> list[object] | None:
    if e is None:
        return None
    return [
        e.date,
        e.timestamp,
        e.subject,
        _addresses(e.from_),
        _addresses(e.sender),
        _addresses(e.reply_to),
        _addresses(e.to),
        _addresses(e.cc),
        _addresses(e.bcc),
        e.in_reply_to,
        e.message_id,
        e.references,
        int(e.truncated),
        list(e.repeated),
    ]


def _part(p: Part) -> list[object]:
    return [
        p.path,
        p.parent,
        int(p.is_message),
        p.header_start,
        p.body_start,
        p.body_end,
        p.type,
        p.subtype,
        _params(p.params),
        p.encoding,
        p.id,
        p.description,
        p.md5,
        p.disposition,
        _params(p.disposition_params),
        list(p.language),
        p.location,
        p.lines,
        p.decoded_size,
        _envelope(p.envelope),
    ]


def summary_to_bytes(s: MessageSummary) -> bytes:
    doc = [
        s.version,
        s.size,
        s.preview,
        int(s.has_attachment),
        list(s.text_body),
        list(s.html_body),
        list(s.attachments),
        int(s.truncated),
        [_part(p) for p in s.parts],
    ]
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    head = _MAGIC + bytes((FORMAT_VERSION,))
    if len(text) > _STORED_MAX:
        return head + zlib.compress(text, 1)
    return head + _stored(text)


def _stored(text: bytes) -> bytes:
    """A zlib stream of one final stored block (RFC 1950, RFC 1951 section 3.2.4)."""
    n = len(text)
    block = b"\x01" + n.to_bytes(2, "little") + (n ^ 0xFFFF).to_bytes(2, "little")
    return _ZLIB_HEADER + block + text + zlib.adler32(text).to_bytes(4, "big")


def _unstored(stream: bytes) -> bytes | None:
    """The data of a stream written by :func:`_stored`; None for any other stream."""
    if len(stream) < 11 or stream[:3] != _ZLIB_HEADER + b"\x01":
        return None
    n = int.from_bytes(stream[3:5], "little")
    if n > _STORED_MAX or n ^ 0xFFFF != int.from_bytes(stream[5:7], "little"):
        return None
    if len(stream) != 11 + n:
        return None
    text = stream[7 : 7 + n]
    if zlib.adler32(text) != int.from_bytes(stream[7 + n :], "big"):
        return None
    return text


# -- decoding: every accessor checks its type, so a damaged value is a ValueError ----------


def _at(a: Sequence[object], i: int, default: object = None) -> object:
    return a[i] if i < len(a) else default


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a string")
    return v


def _ostr(v: object) -> str | None:
    return None if v is None else _str(v)


def _int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError("expected an integer")
    return v


def _oint(v: object) -> int | None:
    return None if v is None else _int(v)


def _list(v: object) -> list[object]:
    if not isinstance(v, list):
        raise ValueError("expected an array")
    return v


def _ints(v: object) -> tuple[int, ...]:
    return tuple(_int(x) for x in _list(v))


def _unparams(v: object) -> Params:
    flat = [_str(x) for x in _list(v)]
    if len(flat) % 2:
        raise ValueError("odd parameter list")
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))


def _unaddress(v: object) -> Address:
    a = _list(v)
    return Address(_ostr(_at(a, 0)), _ostr(_at(a, 1)), _ostr(_at(a, 2)))


def _unaddresses(v: object) -> AddressList:
    out: list[Address | Group] = []
    for item in _list(v):
        a = _list(item)
        if len(a) == 2 and isinstance(a[1], list):
            out.append(Group(_str(a[0]), tuple(_unaddress(m) for m in a[1])))
        else:
            out.append(_unaddress(a))
    return tuple(out)


def _unenvelope(v: object) -> Envelope | None:
    if v is None:
        return None
    e = _list(v)
    return Envelope(
        date=_ostr(_at(e, 0)),
        timestamp=_oint(_at(e, 1)),
        subject=_ostr(_at(e, 2)),
        from_=_unaddresses(_at(e, 3, [])),
        sender=_unaddresses(_at(e, 4, [])),
        reply_to=_unaddresses(_at(e, 5, [])),
        to=_unaddresses(_at(e, 6, [])),
        cc=_unaddresses(_at(e, 7, [])),
        bcc=_unaddresses(_at(e, 8, [])),
        in_reply_to=_ostr(_at(e, 9)),
        message_id=_ostr(_at(e, 10)),
        references=_ostr(_at(e, 11)),
        truncated=bool(_int(_at(e, 12, 0))),
        repeated=tuple(_str(n) for n in _list(_at(e, 13, []))),
    )


def _unpart(v: object) -> Part:
    p = _list(v)
    return Part(
        path=_str(p[0]),
        parent=_int(p[1]),
        is_message=bool(_int(p[2])),
        header_start=_int(p[3]),
        body_start=_int(p[4]),
        body_end=_int(p[5]),
        type=_str(_at(p, 6, "text")),
        subtype=_str(_at(p, 7, "plain")),
        params=_unparams(_at(p, 8, [])),
        encoding=_str(_at(p, 9, "7bit")),
        id=_ostr(_at(p, 10)),
        description=_ostr(_at(p, 11)),
        md5=_ostr(_at(p, 12)),
        disposition=_ostr(_at(p, 13)),
        disposition_params=_unparams(_at(p, 14, [])),
        language=tuple(_str(x) for x in _list(_at(p, 15, []))),
        location=_ostr(_at(p, 16)),
        lines=_int(_at(p, 17, 0)),
        decoded_size=_int(_at(p, 18, 0)),
        envelope=_unenvelope(_at(p, 19)),
    )


def _document(data: bytes) -> list[object]:
    if len(data) < 3 or data[:2] != _MAGIC:
        raise ValueError("not a message summary")
    if data[2] > FORMAT_VERSION:
        raise ValueError(f"summary format {data[2]} is newer than {FORMAT_VERSION}")
    text = _unstored(data[3:])
    if text is None:
        inflater = zlib.decompressobj()
        text = inflater.decompress(data[3:], _MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise ValueError("summary too large")
    return _list(json.loads(text))


def envelope_from_bytes(data: bytes) -> Envelope:
    """The top-level message's envelope alone (what FETCH ENVELOPE needs), without decoding
    the parts: ``summary_from_bytes(data).envelope`` for a sound summary; ValueError if it
    is damaged or from a newer version."""
    try:
        root = _list(_list(_document(data)[8])[0])
        return _unenvelope(_at(root, 19)) or Envelope()
    except (zlib.error, UnicodeDecodeError, IndexError, TypeError, RecursionError) as exc:
        raise ValueError(f"damaged message summary: {exc}") from exc


def head_from_bytes(data: bytes) -> tuple[Envelope, str, bool]:
    """The top-level envelope, the preview and hasAttachment alone (what a JMAP list view
    shows), without decoding the parts: ``(s.envelope, s.preview, s.has_attachment)`` of
    ``s = summary_from_bytes(data)`` for a sound summary; ValueError if it is damaged or
    from a newer version."""
    try:
        doc = _document(data)
        root = _list(_list(doc[8])[0])
        return (_unenvelope(_at(root, 19)) or Envelope(), _str(doc[2]), bool(_int(doc[3])))
    except (zlib.error, UnicodeDecodeError, IndexError, TypeError, RecursionError) as exc:
        raise ValueError(f"damaged message summary: {exc}") from exc


def summary_from_bytes(data: bytes) -> MessageSummary:
    """Decode summary_to_bytes output; ValueError if it is damaged or from a newer version."""
    try:
        doc = _document(data)
        parts = tuple(_unpart(p) for p in _list(doc[8]))
        if not parts:
            raise ValueError("summary without parts")
        depth = [0] * len(parts)
        for i, p in enumerate(parts):
            if not -1 <= p.parent < i:
                raise ValueError("part parent out of order")
            depth[i] = depth[p.parent] + 1 if p.parent >= 0 else 0
            if depth[i] > _MAX_NESTING:
                raise ValueError("parts nested too deeply")
        for key in (4, 5, 6):
            if any(not 0 <= i < len(parts) for i in _ints(doc[key])):
                raise ValueError("part index out of range")
        return MessageSummary(
            size=_int(doc[1]),
            parts=parts,
            preview=_str(doc[2]),
            has_attachment=bool(_int(doc[3])),
            text_body=_ints(doc[4]),
            html_body=_ints(doc[5]),
            attachments=_ints(doc[6]),
            truncated=bool(_int(doc[7])),
            version=_int(doc[0]),
        )
    except (zlib.error, UnicodeDecodeError, IndexError, TypeError, RecursionError) as exc:
        raise ValueError(f"damaged message summary: {exc}") from exc
