"""DANE for SMTP (RFC 7672) against real parts: unbound with its validator serves a
zone the test signs with dnspython (the zone's key is unbound's trust anchor), so
answers carry the AD bit; aiosmtpd sinks on 127.0.0.1 are the MX hosts, their
certificates made by a test CA; TLSA records name them."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY

from fdb_layers.queue import DELAYED
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Records
from tests.support.dnssec import SignedZoneServer
from tests.support.https import HttpsServer, Response
from tests.support.testca import TestCA

MESSAGE = (b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nhello\r\n")

Zone = Callable[..., SignedZoneServer]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def spki_sha256(cert_file: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def ca_sha512(ca: TestCA) -> str:
    return hashlib.sha512(ca.cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
async def signed_zone(tmp_path: Path) -> AsyncIterator[Zone]:
    binary = shutil.which("unbound") or "/usr/sbin/unbound"
    servers: list[SignedZoneServer] = []

    def make(tlsa: list[str], *, trusted: bool = True, extra: Records | None = None,
             tamper: tuple[str, str, str] | None = None) -> SignedZoneServer:
        folder = tmp_path / f"dnssec{len(servers)}"
        folder.mkdir()
        server = SignedZoneServer("remote.test", {
            ("remote.test", "MX"): ["10 mx1.remote.test."],
            ("mx1.remote.test", "A"): ["127.0.0.1"],
            ("_25._tcp.mx1.remote.test", "TLSA"): tlsa, **(extra or {})}, folder, binary,
            trusted=trusted, tamper=tamper)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for s in servers:
            s.close()


async def deliver(site: Site, zone: SignedZoneServer, mx: Sink,
                  **outbound: str | int) -> None:
    await zone.start()
    worker = make_worker(site, zone, Clock(), {"mx1.remote.test": mx.port}, **outbound)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    assert await worker.run_once() == 1


async def test_dane_ee_spki_authenticates_any_name(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """RFC 7672 section 3.1.1: DANE-EE(3) SPKI(1) SHA-256(1) matches the leaf's key;
    names, dates and the issuer do not matter."""
    verified = sample("fdbmail_outbound_dane_total", result="verified")
    cert, key = ca.issue("unrelated.example")       # a CA the client does not know
    mx.tls_context.load_cert_chain(cert, key)
    await deliver(site, signed_zone([f"3 1 1 {spki_sha256(cert)}"]), mx)
    [got] = mx.received
    assert got.tls and got.recipients == ["carol@remote.test"]
    assert sample("fdbmail_outbound_dane_total", result="verified") == verified + 1


async def test_dane_mismatch_defers(site: Site, signed_zone: Zone, mx: Sink,
                                    ca: TestCA) -> None:
    """RFC 7672 section 2.2 and 3.1: a host no TLSA record authenticates gets no mail;
    a temporary failure (retried), not a bounce."""
    mismatch = sample("fdbmail_outbound_dane_total", result="mismatch")
    other, _ = ca.issue("mx1.remote.test")
    await deliver(site, signed_zone([f"3 1 1 {spki_sha256(other)}"]), mx)
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.7.5")
    assert sample("fdbmail_outbound_dane_total", result="mismatch") == mismatch + 1


async def test_dane_ta_verifies_the_chain_for_the_mx_name(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """RFC 7672 sections 3.1.2 and 3.2.2: DANE-TA(2) Cert(0) SHA-512(2): the CA in the
    chain the server sends is the trust anchor, the leaf is valid for the MX host."""
    mx.tls_context = ca.server_context("mx1.remote.test", chain=True)
    await deliver(site, signed_zone([f"2 0 2 {ca_sha512(ca)}"]), mx)
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]


async def test_dane_ta_refuses_a_certificate_for_another_name(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """RFC 7672 section 3.2.2: with DANE-TA the certificate must name the MX host."""
    mx.tls_context = ca.server_context("other.remote.test", chain=True)
    await deliver(site, signed_zone([f"2 0 2 {ca_sha512(ca)}"]), mx)
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.recipients[0].reply.startswith("451 4.7.5")


async def test_dane_requires_starttls(site: Site, signed_zone: Zone, mx: Sink,
                                      ca: TestCA) -> None:
    """RFC 7672 section 2.2: with usable TLSA records TLS is mandatory."""
    cert, _ = ca.issue("mx1.remote.test")
    mx.tls_context = None       # type: ignore[assignment]
    await deliver(site, signed_zone([f"3 1 1 {spki_sha256(cert)}"]), mx)
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.recipients[0].reply.startswith("451 4.7.5")


async def test_unvalidated_tlsa_records_are_ignored(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """RFC 7672 section 2.2: only DNSSEC-validated (secure) TLSA records count; in an
    insecure zone a TLSA record that would not match changes nothing."""
    other, _ = ca.issue("mx1.remote.test")
    await deliver(site, signed_zone([f"3 1 1 {spki_sha256(other)}"], trusted=False), mx)
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]


async def test_dane_takes_precedence_over_mta_sts(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """RFC 8461 section 2: where DANE TLSA records are published, DANE applies and the
    MTA-STS policy (here one naming no MX host of the domain) is not consulted."""
    cert, key = ca.issue("mx1.remote.test")
    mx.tls_context.load_cert_chain(cert, key)
    policy = HttpsServer(ca.server_context("mta-sts.remote.test"))
    policy.response = Response(body=b"version: STSv1\nmode: enforce\nmx: *.other.test\n"
                                    b"max_age: 86400\n")
    await policy.start()
    try:
        zone = signed_zone([f"3 1 1 {spki_sha256(cert)}"], extra={
            ("_mta-sts.remote.test", "TXT"): ['"v=STSv1; id=1;"'],
            ("mta-sts.remote.test", "A"): ["127.0.0.1"]})
        await deliver(site, zone, mx, mta_sts_port=policy.port,
                      tls_ca_file=str(ca.ca_file))
    finally:
        await policy.close()
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    assert policy.requests == []


async def test_mta_sts_applies_without_dane(
        site: Site, signed_zone: Zone, mx: Sink, ca: TestCA) -> None:
    """The same policy in a zone whose TLSA records are not trusted: MTA-STS applies
    and the delivery is deferred (the check above can fail)."""
    cert, key = ca.issue("mx1.remote.test")
    mx.tls_context.load_cert_chain(cert, key)
    policy = HttpsServer(ca.server_context("mta-sts.remote.test"))
    policy.response = Response(body=b"version: STSv1\nmode: enforce\nmx: *.other.test\n"
                                    b"max_age: 86400\n")
    await policy.start()
    try:
        zone = signed_zone([f"3 1 1 {spki_sha256(cert)}"], trusted=False, extra={
            ("_mta-sts.remote.test", "TXT"): ['"v=STSv1; id=1;"'],
            ("mta-sts.remote.test", "A"): ["127.0.0.1"]})
        await deliver(site, zone, mx, mta_sts_port=policy.port,
                      tls_ca_file=str(ca.ca_file))
    finally:
        await policy.close()
    assert mx.received == [] and len(policy.requests) == 1
    [queued] = await site.queued()
    assert queued.recipients[0].reply.startswith("451 4.7.5")


async def test_bogus_tlsa_defers(site: Site, signed_zone: Zone, mx: Sink,
                                 ca: TestCA) -> None:
    """RFC 7672 section 2.2: a TLSA look-up that fails (here: records changed after
    signing, so the validator answers SERVFAIL) means no delivery to that host now,
    and none without TLS either."""
    failed = sample("fdbmail_outbound_dane_total", result="lookup_failed")
    cert, key = ca.issue("mx1.remote.test")
    mx.tls_context.load_cert_chain(cert, key)
    record = f"3 1 1 {spki_sha256(cert)}"
    await deliver(site, signed_zone([record], tamper=(
        "_25._tcp.mx1.remote.test", "TLSA", "3 1 1 " + "00" * 32)), mx)
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.7.5")
    assert sample("fdbmail_outbound_dane_total", result="lookup_failed") == failed + 1
