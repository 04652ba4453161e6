"""DKIM signing at submission (RFC 6376 section 5; Ed25519: RFC 8463): a message
submitted over SMTP is signed with its From: domain's keys before it is queued; the
delivery worker sends it to a remote MX (an aiosmtpd sink found through a DNS server on
loopback) and the copy that arrives verifies with dkimpy and with OpenDKIM's
opendkim-testmsg against the TXT records that ``txt_record`` tells to publish."""

from __future__ import annotations

from pathlib import Path

import dkim
import dns.resolver
import pytest
from prometheus_client import REGISTRY

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from server.mailauth.dkim_keys import DkimKey, KeyCache, generate, store_key
from server.mailauth.sign import Signer
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, Records, a_records, txt
from tests.support.opendkim import available, opendkim_verify

ENGINE_KINDS = ("sqlite", "foundationdb")

# a line starting with "." (dot-stuffed on the wire), 8-bit text, a long line
MESSAGE = ("From: Alice <alice@example.test>\r\nTo: carol@remote.test\r\n"
           "Subject: signed\r\nDate: Sun, 06 Dec 2026 01:00:00 +0000\r\n"
           "Message-ID: <s1@example.test>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
           "\r\nhello\r\n.a line with a leading dot\r\n..two dots\r\nGrüße\r\n"
           + "x" * 900 + "\r\n").encode()


def zone(dns_server: Dns, keys: list[DkimKey]) -> Records:
    records: Records = {("remote.test", "MX"): ["10 mx1.remote.test."],
                        **a_records(["mx1.remote.test"])}
    for k in keys:
        records[(f"{k.selector}._domainkey.{k.domain}", "TXT")] = [txt(k.record())]
    dns_server.set(records)
    return records


def dnsfunc(dns_server: Dns):  # type: ignore[no-untyped-def]
    """dkimpy's lookup, against the test's DNS server."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(next(iter(answer)).strings)
    return lookup


def signed_count(result: str) -> float:
    return REGISTRY.get_sample_value("fdbmail_mailauth_dkim_sign_total",
                                     {"result": result}) or 0.0


async def deliver(site: Site, dns_server: Dns, mx: Sink, sender: str,
                  message: bytes) -> bytes:
    worker = make_worker(site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    reply = await submit(site, sender, ["carol@remote.test"], message)
    assert reply.startswith("250"), reply
    assert await worker.run_once() == 1
    [got] = mx.received
    return got.content


async def test_signed_with_rsa_and_ed25519_verified_by_dkimpy(
        signing_site: Site, dns_server: Dns, mx: Sink) -> None:
    """RFC 8463 section 1: a domain signs with both algorithms; each verifies."""
    keys = [generate("example.test", "rsa", selector="r1"),
            generate("example.test", "ed25519", selector="e1")]
    for k in keys:
        await transact(signing_site.engine, store_key, k)
    zone(dns_server, keys)
    before = signed_count("signed")
    got = await deliver(signing_site, dns_server, mx, "alice@example.test", MESSAGE)
    assert got.endswith(MESSAGE)            # the body as submitted, dot-stuffing undone
    assert got.count(b"DKIM-Signature:") == 2
    verifier = dkim.DKIM(got)
    for idx in range(2):
        assert verifier.verify(idx=idx, dnsfunc=dnsfunc(dns_server)), idx
        assert verifier.signature_fields[b"d"] == b"example.test"
    assert verifier.signature_fields[b"c"] == b"relaxed/relaxed"
    assert signed_count("signed") == before + 1
    # a changed body no longer verifies: the test can fail
    tampered = got.replace(b"hello", b"hellO")
    with pytest.raises(dkim.ValidationError, match="body hash mismatch"):
        dkim.DKIM(tampered).verify(idx=0, dnsfunc=dnsfunc(dns_server))


@pytest.mark.skipif(available() is not None, reason=str(available()))
@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_signature_verified_by_opendkim(signing_site: Site, dns_server: Dns, mx: Sink,
                                              tmp_path: Path, algorithm: str) -> None:
    key = generate("example.test", algorithm, selector="od")
    await transact(signing_site.engine, store_key, key)
    records = zone(dns_server, [key])
    got = await deliver(signing_site, dns_server, mx, "alice@example.test", MESSAGE)
    assert opendkim_verify(got, records, tmp_path / "opendkim") == (0, "")
    status, output = opendkim_verify(got.replace("Grüße".encode(), b"Gruesse"), records,
                                     tmp_path / "opendkim2")
    assert status != 0 and "Bad signature" in output


async def test_a_domain_without_keys_is_sent_unsigned(signing_site: Site, dns_server: Dns,
                                                      mx: Sink) -> None:
    zone(dns_server, [])
    before = signed_count("no_key")
    message = MESSAGE.replace(b"alice@example.test", b"alice@nokeys.test")
    got = await deliver(signing_site, dns_server, mx, "alice@nokeys.test", message)
    assert b"DKIM-Signature" not in got and got.endswith(message)
    assert signed_count("no_key") == before + 1


async def test_a_repeated_submission_is_queued_once_though_signed_anew(
        signing_site: Site, dns_server: Dns, mx: Sink) -> None:
    """The queue id is the delivery id of the message as submitted, not as signed (a
    signature's t= differs per attempt): a client's retry after a lost 250 queues
    nothing twice and one signed copy is sent."""
    key = generate("example.test", "ed25519", selector="e1")
    await transact(signing_site.engine, store_key, key)
    zone(dns_server, [key])
    for _ in range(2):
        assert (await submit(signing_site, "alice@example.test", ["carol@remote.test"],
                             MESSAGE)).startswith("250")
    assert len(await signing_site.queued()) == 1
    worker = make_worker(signing_site, dns_server, Clock(), {"mx1.remote.test": mx.port})
    assert await worker.run_once() == 1
    [got] = mx.received
    assert got.content.count(b"DKIM-Signature:") == 1
    assert dkim.DKIM(got.content).verify(idx=0, dnsfunc=dnsfunc(dns_server))


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_no_key_at_all_skips_the_author_parse_for_the_cache_ttl(
        engine: Engine) -> None:
    """With no DKIM key in the store the From: field is not even parsed (a message
    without one counts as no_key, not no_domain); a key added later is used once the
    key cache's ttl has passed, never later (the bound every node already had)."""
    ticks = Ticks()
    signer = Signer(KeyCache(engine, ttl=60.0), clock=ticks)
    no_key, no_domain = signed_count("no_key"), signed_count("no_domain")
    fromless = MESSAGE.replace(b"From: Alice <alice@example.test>\r\n", b"")
    assert await signer.sign(fromless) == fromless
    assert await signer.sign(MESSAGE) == MESSAGE
    assert (signed_count("no_key"), signed_count("no_domain")) == (no_key + 2, no_domain)

    key = generate("example.test", "ed25519", selector="e1")
    await transact(engine, store_key, key)
    ticks.now += 59.0                       # within the ttl: still "no keys"
    assert await signer.sign(MESSAGE) == MESSAGE
    ticks.now += 2.0                        # past it: the new key signs
    signed = await signer.sign(MESSAGE)
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(MESSAGE)
    # keys exist now: the From: field is parsed again
    assert await signer.sign(fromless) == fromless
    assert signed_count("no_domain") == no_domain + 1
