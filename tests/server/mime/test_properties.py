"""Hypothesis properties: generated MIME trees parse back exactly; mutated and arbitrary input
never raises, stays within bounds, renders valid IMAP grammar, serialises and round-trips, and
parses the same way twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.mime import MessageSummary, parse_message, structure
from server.mime.imap_render import render_bodystructure, render_envelope
from server.mime.serialize import envelope_from_bytes, head_from_bytes

from .imap_syntax import check_body, check_envelope, read

SETTINGS = settings(
    max_examples=int(os.environ.get("FDBMAIL_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- generated well-formed trees -----------------------------------------------------------

Node = tuple  # ("leaf", type, body) | ("multi", subtype, [nodes]) | ("msg", node)

_leaf = st.tuples(
    st.just("leaf"),
    st.sampled_from(["text/plain", "text/html", "application/octet-stream", "image/png"]),
    st.text(alphabet="ab yz\n<>.:", max_size=40),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.tuples(
            st.just("multi"),
            st.sampled_from(["mixed", "alternative", "related", "digest-not"]),
            st.lists(kids, min_size=1, max_size=4),
        ),
        st.tuples(st.just("msg"), kids),
    ),
    max_leaves=10,
)


@dataclass
class _Built:
    bodies: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, bytes] = field(default_factory=dict)
    counter: int = 0


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def _content(node: Node, path: str, is_message: bool, out: _Built) -> tuple[bytes, bytes]:
    """(content header lines, body) of node, recording expected bodies by IMAP path."""
    kind = node[0]
    if kind == "leaf":
        body = _crlf(node[2])
        out.bodies[path if not is_message else (f"{path}.1" if path else "1")] = body
        return b"Content-Type: " + node[1].encode() + b"\r\n", body
    if kind == "msg":
        own = path if not is_message else (f"{path}.1" if path else "1")
        header, body = _content(node[1], own, True, out)
        top = b"Subject: nested " + own.encode() + b"\r\n" + header + b"\r\n"
        out.headers[own] = top
        return b"Content-Type: message/rfc822\r\n", top + body
    out.counter += 1
    boundary = b"=_b%d" % out.counter
    chunks = [b"preamble\r\n"]
    for i, child in enumerate(node[2], start=1):
        child_path = f"{path}.{i}" if path else str(i)
        header, body = _content(child, child_path, False, out)
        chunks.append(b"--" + boundary + b"\r\n" + header + b"\r\n" + body + b"\r\n")
    chunks.append(b"--" + boundary + b"--\r\nepilogue")
    header = b'Content-Type: multipart/%s; boundary="%s"\r\n' % (node[1].encode(), boundary)
    return header, b"".join(chunks)


def _message(node: Node) -> tuple[bytes, _Built]:
    out = _Built()
    header, body = _content(node, "", True, out)
    return b"From: a@b.example\r\nSubject: top\r\n" + header + b"\r\n" + body, out


def _check(raw: bytes) -> MessageSummary:
    s = parse_message(raw, fallback=False)
    assert s.size == len(raw)
    for i, p in enumerate(s.parts):
        assert 0 <= p.header_start <= p.body_start <= p.body_end <= len(raw)
        if p.parent >= 0:
            assert p.parent < i
            parent = s.parts[p.parent]
            assert parent.body_start <= p.header_start and p.body_end <= parent.body_end
    check_body(read(render_bodystructure(s, True)), True)
    check_body(read(render_bodystructure(s, False)), False)
    check_envelope(read(render_envelope(s)))
    data = s.to_bytes()
    assert MessageSummary.from_bytes(data) == s
    assert parse_message(raw, fallback=False) == s  # deterministic
    return s


@contextmanager
def _regex_mode() -> Iterator[None]:
    """Make the scanner use its delimiter regex from the first line on."""
    old = structure.WASTE_LIMIT
    structure.WASTE_LIMIT = -1
    try:
        yield
    finally:
        structure.WASTE_LIMIT = old


@SETTINGS
@given(_tree)
def test_generated_trees_parse_back_exactly(node: Node) -> None:
    _check_tree(node)


@SETTINGS
@given(_tree)
def test_generated_trees_parse_back_exactly_in_regex_mode(node: Node) -> None:
    raw, _ = _message(node)
    plain = parse_message(raw, fallback=False)
    with _regex_mode():
        _check_tree(node)
        assert parse_message(raw, fallback=False) == plain


def _check_tree(node: Node) -> None:
    raw, built = _message(node)
    s = _check(raw)
    for path, body in built.bodies.items():
        rng = s.section(path)
        assert rng is not None, path
        assert raw[rng[0] : rng[1]] == body, path
    for path, header in built.headers.items():
        rng = s.section(f"{path}.HEADER")
        assert rng is not None
        assert raw[rng[0] : rng[1]] == header


# -- mutations ------------------------------------------------------------------------------

_edit = st.tuples(
    st.floats(min_value=0, max_value=1),
    st.sampled_from(["delete", "insert", "duplicate", "truncate", "lf", "flip"]),
    st.binary(max_size=12),
)


def _mutate(raw: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    for where, kind, payload in edits:
        pos = int(where * len(raw))
        if kind == "delete":
            raw = raw[:pos] + raw[pos + 1 + len(payload) :]
        elif kind == "insert":
            raw = raw[:pos] + payload + raw[pos:]
        elif kind == "duplicate":
            raw = raw[:pos] + raw[pos : pos + 40] + raw[pos:]
        elif kind == "truncate":
            raw = raw[:pos]
        elif kind == "lf":
            raw = raw.replace(b"\r\n", b"\n")
        elif kind == "flip" and pos < len(raw):
            raw = raw[:pos] + bytes((raw[pos] ^ 0x80,)) + raw[pos + 1 :]
    return raw


@SETTINGS
@given(_tree, st.lists(_edit, max_size=6))
def test_mutated_messages_never_raise(node: Node, edits: list[tuple[float, str, bytes]]) -> None:
    raw, _ = _message(node)
    raw = _mutate(raw, edits)
    plain = _check(raw)
    with _regex_mode():
        assert _check(raw) == plain  # both ways of finding delimiters agree


# -- arbitrary input --------------------------------------------------------------------------

_LINES = [
    b"Content-Type: multipart/mixed; boundary=x",
    b'Content-Type: multipart/alternative; boundary="y"',
    b"Content-Type: message/rfc822",
    b"Content-Type: text/html; charset=utf-8",
    b"Content-Type: text/plain; charset*=utf-8''%E2%82%AC",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Disposition: attachment; filename*0*=x''a; filename*1=b",
    b"Subject: =?utf-8?B?w6k=?= =?utf-8?q?x?=",
    b"From: A <a@b>, g: c@d;",
    b"Date: Mon, 2 Mar 2026 18:30:00 +0100",
    b"--x",
    b"--x--",
    b"--y",
    b"--y--",
    b"",
    b" folded",
    b"w6nDqQ==",
    b"=C3=A9=",
    b"<p>x &amp; y</p>",
    b"\xff\xfe\x00",
]


@SETTINGS
@given(st.lists(st.sampled_from(_LINES), max_size=40), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_line_soup_never_raises(lines: list[bytes], eol: bytes) -> None:
    plain = _check(eol.join(lines))
    with _regex_mode():
        assert _check(eol.join(lines)) == plain


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check(raw)


@SETTINGS
@given(st.binary(max_size=400))
def test_damaged_summaries_raise_only_value_error(noise: bytes) -> None:
    good = parse_message(b"Subject: x\r\n\r\nbody").to_bytes()
    for data in (noise, good[:3] + noise, good[: len(noise) % len(good)], b"MS\x01" + noise):
        try:
            MessageSummary.from_bytes(data)
        except ValueError:
            pass
        try:
            envelope_from_bytes(data)
        except ValueError:
            pass
        try:
            head_from_bytes(data)
        except ValueError:
            pass
