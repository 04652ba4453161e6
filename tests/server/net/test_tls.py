"""server/net/tls.py: the self-signed certificate for development."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from server.net import tls


def test_self_signed_created_once_and_usable(tmp_path: Path) -> None:
    cert, key = tls.ensure_self_signed(tmp_path / "tls", "mail.example.com")
    first = cert.read_bytes()
    assert (key.stat().st_mode & 0o777) == 0o600
    assert tls.ensure_self_signed(tmp_path / "tls", "other")[0].read_bytes() == first
    parsed = x509.load_pem_x509_certificate(first)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"mail.example.com", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    ctx = tls.load_or_create("", "", tmp_path, "mail.example.com")
    assert isinstance(ctx, ssl.SSLContext) and ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_cert_without_key_is_an_error(tmp_path: Path) -> None:
    try:
        tls.load_or_create("/x.pem", "", tmp_path, "h")
    except ValueError as e:
        assert "both" in str(e)
    else:
        raise AssertionError("no error")
