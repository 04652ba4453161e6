"""The base64 and ``*`` of SMTP's and IMAP's SASL responses."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from server.sasl import Aborted, Malformed, decode_initial, decode_response, encode_challenge


def test_responses() -> None:
    assert decode_response(b"dGlt") == b"tim"
    assert decode_response(b"") == b""
    assert decode_response(b"*") == Aborted()
    assert isinstance(decode_response(b"dGlt!"), Malformed)        # not base64
    assert isinstance(decode_response(b"dGl"), Malformed)          # missing padding
    assert isinstance(decode_response("dGlt\u00e9".encode()), Malformed)


def test_initial_equals_is_empty() -> None:     # RFC 4954 section 4
    assert decode_initial(b"=") == b""
    assert decode_initial(b"AHRpbQB0YW5zdGFhZg==") == b"\0tim\0tanstaaf"


@given(st.binary(max_size=200))
def test_round_trip(data: bytes) -> None:
    assert decode_response(encode_challenge(data)) == data


@given(st.binary(max_size=200))
def test_garbage_decodes_or_is_malformed(line: bytes) -> None:
    result = decode_response(line)
    assert isinstance(result, bytes | Aborted | Malformed)
    if isinstance(result, bytes):
        assert base64.b64encode(result) == line.strip(b" \t")
