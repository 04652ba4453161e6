"""ENVELOPE for clients without UTF8=ACCEPT (RFC 6855 sections 7-8, RFC 6857 section 3)."""

from __future__ import annotations

from email.header import decode_header, make_header

from hypothesis import given
from hypothesis import strategies as st

from server.imap.wire.downgrade import downgrade_envelope, encoded_words, needs_downgrade
from server.mime.addresses import Address, Group
from server.mime.imap_render import render_envelope_of
from server.mime.model import Envelope
from server.mime.summary import parse_message


def _decoded(words: str) -> str:
    return str(make_header(decode_header(words)))


@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip() == t and "\r" not in t))
def test_encoded_words_decode_back_and_stay_short(text: str) -> None:
    """RFC 2047 section 2: an encoded word is at most 75 characters; decoding gives the text."""
    words = encoded_words(text)
    assert words.isascii()
    assert all(len(w) <= 75 for w in words.split(" "))
    assert _decoded(words) == text


def test_ascii_envelope_is_unchanged() -> None:
    env = parse_message(b"From: A <a@b.example>\r\nSubject: hi\r\n\r\n").envelope
    assert not needs_downgrade(env)
    assert downgrade_envelope(env) is env


def test_utf8_subject_names_domains_and_local_parts() -> None:
    """Subject and display names become encoded words; a domain its A-label; an address
    whose local part is not ASCII an empty group named by the encoded address."""
    raw = ("From: Jörg <jörg@bücher.example>\r\nTo: Zoë <zoe@bücher.example>\r\n"
           "Subject: Grüße\r\n\r\nbody\r\n").encode()
    env = downgrade_envelope(parse_message(raw).envelope)
    assert env.subject is not None and _decoded(env.subject) == "Grüße"
    [sender] = env.from_
    assert isinstance(sender, Group) and sender.members == ()
    assert _decoded(sender.raw_name) == "Jörg <jörg@bücher.example>"
    [to] = env.to
    assert isinstance(to, Address) and to.host == "xn--bcher-kva.example"
    assert to.raw_name is not None and _decoded(to.raw_name) == "Zoë"
    wire = render_envelope_of(env)
    assert wire.isascii()


def test_undecodable_legacy_octets_are_left_as_received() -> None:
    """Old 8-bit mail that is not UTF-8 is not guessed at: it goes out as before."""
    env = Envelope(subject="caf\udce9")
    assert not needs_downgrade(env)
    assert downgrade_envelope(env).subject == "caf\udce9"


def test_fetch_data_downgrades_envelopes_also_inside_bodystructure() -> None:
    """An encapsulated message/rfc822's envelope in BODYSTRUCTURE follows the same rule
    (RFC 6855 section 8: all header information on the wire)."""
    from server.imap.wire.fetch_data import FetchData, item_bodystructure, item_envelope

    inner = "From: Zoë <z@bücher.example>\r\nSubject: Grüße\r\n\r\nx\r\n".encode()
    raw = (b"From: a@b.example\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: message/rfc822\r\n\r\n" + inner)
    summary = parse_message(raw)
    data = FetchData(1, (item_envelope(summary), item_bodystructure(summary)))
    assert data.render(utf8=False).isascii()
    assert "Grüße".encode() in data.render(utf8=True)
