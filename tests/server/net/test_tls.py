"""server/net/tls.py: the self-signed certificate for development, and [tls] reload."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

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


async def test_a_renewed_certificate_is_served_after_a_reload(tmp_path: Path) -> None:
    """[tls] reload: the files are read again into the same context when they change;
    a pair that does not load leaves the old certificate in place."""
    import os
    import socket

    def write_pair(name: str) -> None:
        cert_pem, key_pem = tls.self_signed_pem(name)
        (tmp_path / "key.pem").write_bytes(key_pem)
        (tmp_path / "cert.pem").write_bytes(cert_pem)

    def served_name(ctx: ssl.SSLContext) -> str:
        server_side, client_side = socket.socketpair()
        client_ctx = ssl.create_default_context()
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        with server_side, client_side:
            server = ctx.wrap_socket(server_side, server_side=True, do_handshake_on_connect=False)
            client = client_ctx.wrap_socket(client_side, do_handshake_on_connect=False)
            server.setblocking(False)
            client.setblocking(False)
            for _ in range(100):
                done = 0
                for end in (client, server):
                    try:
                        end.do_handshake()
                        done += 1
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                if done == 2:
                    break
            der = client.getpeercert(binary_form=True)
            assert der is not None
            cert = x509.load_der_x509_certificate(der)
            return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    write_pair("old.example.test")
    server_tls = tls.ServerTls(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"),
                               3600.0, tmp_path)
    try:
        ctx = await server_tls.context("unused.example.test")
        assert served_name(ctx) == "old.example.test"
        assert not server_tls.check()  # nothing changed
        write_pair("new.example.test")
        later = os.stat(tmp_path / "cert.pem").st_mtime_ns + 1_000_000_000
        for name in ("cert.pem", "key.pem"):
            os.utime(tmp_path / name, ns=(later, later))
        assert server_tls.check()
        assert served_name(await server_tls.context("unused")) == "new.example.test"
        assert served_name(ctx) == "new.example.test"  # the same context object
        (tmp_path / "cert.pem").write_text("not a certificate")
        os.utime(tmp_path / "cert.pem", ns=(later + 10**9, later + 10**9))
        assert not server_tls.check()
        assert served_name(ctx) == "new.example.test"
    finally:
        await server_tls.close()


def test_a_half_configured_pair_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        tls.ServerTls("/etc/cert.pem", "", 0.0, tmp_path)
