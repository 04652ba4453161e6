"""Authentication-Results (RFC 8601): our field's syntax (parsed back with authres),
the authserv-id of a field (section 2.2), and the removal of fields that claim ours
(section 5) -- tables and hypothesis properties."""

from __future__ import annotations

from authres import AuthenticationResultsHeader
from hypothesis import given, settings, strategies as st

from server.mailauth.checks import ArcResult, DkimResult, DmarcResult, SpfResult, Verdict
from server.mailauth.dmarc import organizational_domain, parse_record
from server.mailauth.results import authserv_id_of, header, strip_ours

VERDICT = Verdict(SpfResult("pass", "sender.test", "helo.test", "a (nested) reason; x"),
                  (DkimResult("pass", "sender.test", "s1", "rsa-sha256"),
                   DkimResult("fail", "other.test", "s2", "ed25519-sha256", "bad")),
                  DmarcResult("pass", "sender.test", "reject"), ArcResult("none"))


def test_our_field_parses_back() -> None:
    field = header("mx.test", VERDICT)
    assert field.endswith(b"\r\n") and b"\r\n\t" in field
    unfolded = field.decode().replace("\r\n\t", " ").rstrip("\r\n")
    parsed = AuthenticationResultsHeader.parse(unfolded)
    assert parsed.authserv_id == "mx.test"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("spf", "pass"), ("dkim", "pass"), ("dkim", "fail"), ("dmarc", "pass"), ("arc", "none")]


def test_authserv_id_of() -> None:
    """Section 2.2: authserv-id [ CFWS authres-version ], comments anywhere."""
    assert authserv_id_of(b" mx.test; spf=pass") == "mx.test"
    assert authserv_id_of(b" (c) MX.Test (d) 1; none") == "mx.test"
    assert authserv_id_of(b"\r\n\tmx.test\r\n\t;none") == "mx.test"
    assert authserv_id_of(b" ") == ""
    assert authserv_id_of(b" (a (nested) comment) mx.test; x") == "mx.test"


def test_strip_keeps_others_and_the_body() -> None:
    message = (b"Received: x\r\nAuthentication-Results: mx.test; dkim=pass\r\n\tx=y\r\n"
               b"Subject: s\r\nauthentication-results: other.test; spf=pass\r\n\r\n"
               b"Authentication-Results: mx.test; in the body\r\n")
    assert strip_ours(message, ["mx.test"]) == (
        b"Received: x\r\nSubject: s\r\nauthentication-results: other.test; spf=pass\r\n\r\n"
        b"Authentication-Results: mx.test; in the body\r\n")
    assert strip_ours(b"Subject: x\r\n\r\nbody", ["mx.test"]) == b"Subject: x\r\n\r\nbody"


_name = st.sampled_from(["Subject", "From", "Received", "X-A", "Authentication-Results"])
_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
_id = st.sampled_from(["mx.test", "MX.TEST", "other.test", "(c) mx.test", "mx.test.evil"])


@st.composite
def _fields(draw: st.DrawFn) -> list[tuple[str, bytes, bool]]:
    """(name, whole field, is ours)."""
    out = []
    for _ in range(draw(st.integers(0, 8))):
        name = draw(_name)
        if name == "Authentication-Results":
            ident = draw(_id)
            value = f" {ident}; {draw(_text)}"
            ours = ident.replace("(c) ", "").lower() == "mx.test"
        else:
            value, ours = " " + draw(_text), False
        folds = draw(st.lists(_text, max_size=2))
        raw = (name + ":" + value + "".join("\r\n\t" + f for f in folds) + "\r\n").encode()
        out.append((name, raw, ours))
    return out


@settings(max_examples=300)
@given(_fields(), st.binary(max_size=200))
def test_strip_property(fields: list[tuple[str, bytes, bool]], body: bytes) -> None:
    """Exactly the fields with our authserv-id go; every other field keeps its bytes
    and order; the body is untouched."""
    message = b"".join(f for _, f, _ in fields) + b"\r\n" + body
    expected = b"".join(f for _, f, ours in fields if not ours) + b"\r\n" + body
    assert strip_ours(message, ["mx.test"]) == expected


@given(st.binary(max_size=300))
def test_strip_never_raises_and_never_grows(data: bytes) -> None:
    out = strip_ours(data, ["mx.test"])
    assert len(out) <= len(data)
    assert out.endswith(data[data.find(b"\r\n\r\n") + 2:] if b"\r\n\r\n" in data else b"")


def test_dmarc_record_parsing() -> None:
    """RFC 7489 section 6.3/6.6.3: v=DMARC1 first, tags name=value."""
    assert parse_record("v=DMARC1; p=reject; sp=none") == {"v": "DMARC1", "p": "reject",
                                                           "sp": "none"}
    assert parse_record("v=DMARC1;p=none;") == {"v": "DMARC1", "p": "none"}
    assert parse_record("p=reject; v=DMARC1") is None
    assert parse_record("v=spf1 -all") is None
    assert parse_record("v=DMARC1; p") is None


@given(st.text(max_size=100))
def test_dmarc_record_parser_never_raises(text: str) -> None:
    record = parse_record(text)
    assert record is None or record["v"] == "DMARC1"


def test_organizational_domains() -> None:
    """RFC 7489 section 3.2, with the default rule for unlisted suffixes."""
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("Sub.Org.Test.") == "org.test"
    assert organizational_domain("org.test") == "org.test"
