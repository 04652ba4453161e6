"""Charsets: only character sets meant for message text are decoded, in linear time.

Linear time is asserted as a size ratio, never against a wall clock: an input 8 times
larger may take about 8 times the Python operations (trace events) and CPU time of the
smaller one.  Punycode and idna, which Python decodes by repeated string insertion (1.6 s
for 448 KB), take about 64 times; the ratio catches them whatever the machine's speed.
"""

from __future__ import annotations

import codecs
import sys
import time
from types import FrameType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.mime.charsets import TEXT_CODECS, decode_text, lookup_charset
from server.mime.model import Part
from server.mime.text import part_text

HOSTILE = ("punycode", "idna", "unicode_escape", "raw_unicode_escape", "base64", "zlib",
           "rot13", "hex", "uu", "quopri", "bz2", "undefined", "charmap", "mbcs")
LABELS = (
    "utf-8", "UTF8", "us-ascii", "iso-8859-1", "iso-8859-2", "iso-8859-15", "windows-1250",
    "windows-1252", "windows-1258", "koi8-r", "koi8-u", "gb2312", "gbk", "gb18030", "big5",
    "shift_jis", "euc-jp", "euc-kr", "iso-2022-jp", "iso-2022-kr", "utf-7", "utf-16",
    "utf-16le", "utf-32", "x-unknown", *HOSTILE,
)


def _operations(data: bytes, charset: str) -> int:
    """Trace events (calls, lines, returns) of Python code run by decode_text."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return tracer

    decode_text(b"", charset)  # the codec's first lookup (imports) is not the decode
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        decode_text(data, charset)
    finally:
        sys.settrace(old)
    return count


def _cpu_seconds(data: bytes, charset: str) -> float:
    """The least CPU time of three decodes (CPU time, so a busy machine matters less)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        decode_text(data, charset)
        best = min(best, time.process_time() - start)
    return best


_PIECE = st.binary(min_size=1, max_size=8) | st.sampled_from([b"a", b"9", b"-", b".", b"+A-"])


def _body(prefix: bytes, head: bytes, sep: bytes, tail: bytes, size: int) -> bytes:
    """``prefix + head... + sep + tail...`` of about ``size`` bytes: both halves grow,
    which is what makes punycode's insertion quadratic."""
    half = size // 2
    return prefix + head * (half // len(head)) + sep + tail * (half // len(tail))


@settings(max_examples=40, deadline=None)
@given(charset=st.sampled_from(LABELS), prefix=st.binary(max_size=4), head=_PIECE,
       sep=st.binary(max_size=2), tail=_PIECE)
@example(charset="punycode", prefix=b"", head=b"a", sep=b"-", tail=b"a")
@example(charset="idna", prefix=b"xn--", head=b"a", sep=b"-", tail=b"a")
@example(charset="utf-8", prefix=b"", head=b"\xe2\x82", sep=b"", tail=b"\xff")
def test_decoding_is_linear(charset: str, prefix: bytes, head: bytes, sep: bytes,
                            tail: bytes) -> None:
    """8 times the input takes at most about 8 times the work: counted in Python
    operations, and in CPU time by the ratio of the two sizes (quadratic is 64 times;
    below 5 ms, timer noise is not measured)."""
    small = _body(prefix, head, sep, tail, 56_000)
    large = _body(prefix, head, sep, tail, 448_000)
    ops_small, ops_large = _operations(small, charset), _operations(large, charset)
    assert ops_large <= 8 * ops_small + 50, (charset, ops_small, ops_large)
    t_small, t_large = _cpu_seconds(small, charset), _cpu_seconds(large, charset)
    assert t_large <= 24 * max(t_small, 0.005), (charset, t_small, t_large)


@pytest.mark.parametrize("charset", ["punycode", "idna"])
def test_quadratic_codecs_are_unknown_8bit(charset: str) -> None:
    data = b"a" * 1000 + b"-" + b"9" * 1000
    assert lookup_charset(charset) is None
    assert decode_text(data, charset) == data.decode("utf-8", "replace")
    # and cost no more Python work for a large body than for a small one
    assert _operations(data * 64, charset) <= _operations(data, charset) + 50


@pytest.mark.parametrize("label", HOSTILE)
def test_codecs_that_are_not_text_charsets_are_refused(label: str) -> None:
    assert lookup_charset(label) is None
    assert decode_text(b"caf\xc3\xa9 \xff", label) == "caf\u00e9 \ufffd"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"), ("UTF8", "utf-8"), ("us-ascii", "cp1252"), ("latin1", "cp1252"),
        ("iso-8859-2", "iso8859-2"), ("ISO_8859-5", "iso8859-5"), ("windows-1251", "cp1251"),
        ("koi8-r", "koi8-r"), ("koi8-u", "koi8-u"), ("gb2312", "gb18030"), ("gbk", "gb18030"),
        ("gb18030", "gb18030"), ("big5", "big5"), ("shift_jis", "cp932"), ("euc-jp", "euc_jp"),
        ("euc-kr", "cp949"), ("iso-2022-jp", "iso2022_jp"), ("utf-7", "utf-7"),
        ("utf-16", "utf-16"), ("UTF-32BE", "utf-32-be"), ("tis-620", "cp874"),
    ],
)
def test_text_charsets_are_decoded(label: str, codec: str) -> None:
    assert lookup_charset(label) == codec


def test_allow_list_names_are_codec_names() -> None:
    for name in TEXT_CODECS:
        assert codecs.lookup(name).name == name


def test_part_text_with_a_punycode_charset() -> None:
    part = Part(path="1", parent=-1, is_message=False, header_start=0, body_start=0,
                body_end=6, params=(("charset", "punycode"),), encoding="8bit")
    assert part_text(b"h\xc3\xa9llo", part) == "h\u00e9llo"
