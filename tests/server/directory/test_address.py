"""Address parsing and lookup stages: examples, then hypothesis properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.directory.address import (
    Address,
    canonical_domain,
    domain_forms,
    lookup_stages,
    parse_address,
    strip_subaddress,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("alice@example.com", "alice@example.com"),
    ("Alice@Example.COM", "alice@example.com"),
    ("<bob@example.com>", "bob@example.com"),
    ("  bob@example.com. ", "bob@example.com"),
    ("user@BÜCHER.example", "user@bücher.example"),
    ("user@xn--bcher-kva.example", "user@bücher.example"),
    ("Pelé@example.com", "pelé@example.com"),                  # RFC 6531 UTF-8 local part
    ("用户@例子.广告", "用户@例子.广告"),
    ('"odd@local"@example.com', '"odd@local"@example.com'),   # last @ splits
    ("postmaster@[192.0.2.1]", "postmaster@[192.0.2.1]"),
    ("under_score@_dmarc.example.com", "under_score@_dmarc.example.com"),
])
def test_parse_address(text: str, expected: str) -> None:
    parsed = parse_address(text)
    assert parsed is not None
    assert str(parsed) == expected


@pytest.mark.parametrize("text", [
    "", "plain", "@example.com", "user@", "user@@", "a\x00b@example.com", "a\r\nb@example.com",
    "x" * 65 + "@example.com", "user@" + "a" * 300, "user@exa mple.com", "user@ex\x7fample.com",
    "bad\ud800@example.com", "user@bad\udfff.example",
])
def test_parse_address_refuses(text: str) -> None:
    assert parse_address(text) is None


def test_local_part_case_kept_when_configured() -> None:
    assert parse_address("Alice@EXAMPLE.com", fold_local=False) == Address("Alice", "example.com")


def test_domain_forms() -> None:
    assert domain_forms("example.com") == ("example.com",)
    assert domain_forms("bücher.example") == ("bücher.example", "xn--bcher-kva.example")
    assert canonical_domain("XN--BCHER-KVA.EXAMPLE") == "bücher.example"


def test_lookup_stages() -> None:
    assert lookup_stages(Address("user+tag", "example.com")) == [
        ("user+tag@example.com",), ("user@example.com",), ("@example.com",)]
    assert lookup_stages(Address("user", "example.com")) == [
        ("user@example.com",), ("@example.com",)]
    assert lookup_stages(Address("user+tag", "example.com"), separator="") == [
        ("user+tag@example.com",), ("@example.com",)]
    assert lookup_stages(Address("u-x", "bücher.example"), "-") == [
        ("u-x@bücher.example", "u-x@xn--bcher-kva.example"),
        ("u@bücher.example", "u@xn--bcher-kva.example"),
        ("@bücher.example", "@xn--bcher-kva.example")]


def test_strip_subaddress() -> None:
    assert strip_subaddress("user+a+b", "+") == "user"      # RFC 5233: detail after the first
    assert strip_subaddress("+tag", "+") is None             # no user part
    assert strip_subaddress("user", "+") is None


# -- properties -----------------------------------------------------------------------------

_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
_domains = st.lists(_label, min_size=1, max_size=4).map(".".join)
_local_chars = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                             blacklist_characters="@")
_locals = st.text(_local_chars, min_size=1, max_size=20).filter(
    lambda s: s == s.strip() and len(s.encode()) <= 64)


@given(st.text(st.characters(codec=None, blacklist_categories=())))
def test_parse_never_raises(text: str) -> None:
    result = parse_address(text)
    assert result is None or isinstance(result, Address)


@given(_locals, _domains)
def test_parse_is_idempotent_and_case_insensitive(local: str, domain: str) -> None:
    parsed = parse_address(f"{local}@{domain}")
    assert parsed is not None
    assert parse_address(str(parsed)) == parsed
    assert parse_address(f"{local}@{domain.upper()}") == parsed
    assert parse_address(f"{local.upper()}@{domain}") == parse_address(
        f"{local.upper().lower()}@{domain}")


@given(_locals, _domains, _label)
def test_stages_try_exact_then_user_then_catch_all(local: str, domain: str, tag: str) -> None:
    parsed = parse_address(f"{local}+{tag}@{domain}")
    if len(f"{local}+{tag}".lstrip().encode()) > 64:  # the tag made the local part too long
        assert parsed is None                # (RFC 5321 4.5.3.1.1; found by hypothesis)
        return
    assert parsed is not None
    stages = lookup_stages(parsed)
    assert stages[0] == (str(parsed),)
    assert stages[-1] == (f"@{parsed.domain}",)
    if len(stages) == 3:
        assert stages[1][0].split("@")[0] == parsed.local.split("+")[0]
        assert "+" not in stages[1][0].split("@")[0]
