"""MTA-STS (RFC 8461) for outbound delivery against real parts: the tests' DNS server
on loopback answers MX, A and the ``_mta-sts`` TXT record of remote.test; an HTTPS
server on 127.0.0.1 with a certificate from a CA the test makes serves the policy
(``[outbound] mta_sts_port`` points at it: RFC 8461 says 443); aiosmtpd sinks are the
MX hosts, with certificates from that CA or self-signed ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from prometheus_client import REGISTRY

from fdb_layers.engine.run import transact
from fdb_layers.mtasts import get_policy
from fdb_layers.queue import DELAYED
from server.outbound.worker import DeliveryWorker
from server.outbound.mtasts import PolicyError, mx_matches, parse_policy, parse_record
from tests.server.outbound.conftest import Clock, Site, make_worker, submit
from tests.server.outbound.sinks import Sink
from tests.support.dns import Dns, a_records
from tests.support.https import HttpsServer, Response
from tests.support.testca import TestCA

MESSAGE = (b"From: alice@example.com\r\nTo: carol@remote.test\r\nSubject: hi\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nhello\r\n")
ENFORCE = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.remote.test\r\nmax_age: 86400\r\n"
TESTING = b"version: STSv1\r\nmode: testing\r\nmx: mx1.remote.test\r\nmax_age: 86400\r\n"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- parsing (no I/O) -------------------------------------------------------------------
def test_policy_fields() -> None:
    """RFC 8461 section 3.2: key/value lines, CRLF or LF, mx repeated, first of other
    duplicates wins, unknown fields ignored."""
    p = parse_policy("version: STSv1\nmode: testing\nmx: mail.example.com\n"
                     "mx:*.Example.NET\nmax_age:604800\nmode: enforce\nextension: x\n")
    assert (p.mode, p.mx, p.max_age) == ("testing", ("mail.example.com", "*.example.net"),
                                         604800)
    assert parse_policy(ENFORCE.decode()).mode == "enforce"
    assert parse_policy("version: STSv1\r\nmode: none\r\nmax_age: 0\r\n").mx == ()


@pytest.mark.parametrize("text", [
    "mode: enforce\nmx: a.test\nmax_age: 1\n",                      # no version
    "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
    "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmax_age: 1\n",                  # enforce without mx
    "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n",
    "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
    "version: STSv1\nmode: enforce\nmx: a.test\n",                   # no max_age
    "version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n",
    "version: STSv1\nmode enforce\nmx: a.test\nmax_age: 1\n",
])
def test_bad_policies_are_refused(text: str) -> None:
    """RFC 8461 section 3.2: a policy that breaks the syntax is not used."""
    with pytest.raises(PolicyError):
        parse_policy(text)


@given(st.text(max_size=300))
def test_policy_parser_only_raises_policy_error(text: str) -> None:
    try:
        p = parse_policy(text)
    except PolicyError:
        return
    assert p.mode in ("enforce", "testing", "none") and 0 <= p.max_age <= 31557600


def test_txt_record() -> None:
    """RFC 8461 section 3.1: v=STSv1 first, an id of 1 to 32 letters and digits; other
    TXT records ignored, two STSv1 records an error."""
    assert parse_record(["v=spf1 -all", "v=STSv1; id=20160831085700Z;"]) == "20160831085700Z"
    assert parse_record(["v=STSv1;id=abc; ext=1"]) == "abc"
    assert parse_record(["v=spf1 -all"]) is None
    for bad in (["v=STSv1; id=1", "v=STSv1; id=2"], ["v=STSv1;"], ["v=STSv1; id=a-b"],
                ["v=STSv1; id=" + "a" * 33]):
        with pytest.raises(PolicyError):
            parse_record(bad)


@given(st.lists(st.text(max_size=80), max_size=4))
def test_record_parser_only_raises_policy_error(texts: list[str]) -> None:
    try:
        policy_id = parse_record(texts)
    except PolicyError:
        return
    assert policy_id is None or (policy_id.isalnum() and len(policy_id) <= 32)


def test_mx_patterns() -> None:
    """RFC 8461 section 4.1: a wildcard stands for exactly one leftmost label."""
    assert mx_matches("mail.example.com", "MAIL.example.com.")
    assert mx_matches("*.example.com", "mx1.example.com")
    assert not mx_matches("*.example.com", "example.com")
    assert not mx_matches("*.example.com", "a.b.example.com")
    assert not mx_matches("mail.example.com", "mx.example.com")


# --- delivery ---------------------------------------------------------------------------
@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
async def policy_server(ca: TestCA) -> AsyncIterator[HttpsServer]:
    server = HttpsServer(ca.server_context("mta-sts.remote.test"))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def zone(dns_server: Dns, policy_id: str | None = "1") -> None:
    records = {("remote.test", "MX"): ["10 mx1.remote.test."],
               **a_records(["mx1.remote.test", "mta-sts.remote.test"])}
    if policy_id is not None:
        records[("_mta-sts.remote.test", "TXT")] = [f'"v=STSv1; id={policy_id};"']
    dns_server.set(records)


def worker_for(site: Site, dns_server: Dns, mx: Sink, ca: TestCA, policy: HttpsServer,
               clock: Clock | None = None) -> DeliveryWorker:
    return make_worker(site, dns_server, clock or Clock(), {"mx1.remote.test": mx.port},
                       mta_sts_port=policy.port, tls_ca_file=str(ca.ca_file))


async def test_enforce_delivers_over_verified_tls_and_caches_the_policy(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 sections 3.3, 4.2 and 5.1: the policy is fetched over HTTPS from
    mta-sts.<domain>, the MX host's certificate is valid for its name, the policy is
    cached (shared in the store) and not fetched again while the TXT id is unchanged."""
    fetched = sample("fdbmail_outbound_mta_sts_policy_total", result="fetched")
    zone(dns_server)
    mx.tls_context = ca.server_context("mx1.remote.test")
    policy_server.response = Response(body=ENFORCE)
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    assert await worker.run_once() == 1
    [got] = mx.received
    assert got.tls and got.recipients == ["carol@remote.test"]
    assert policy_server.requests == [("GET /.well-known/mta-sts.txt HTTP/1.1",
                                       "mta-sts.remote.test")]
    cached = await transact(site.engine, get_policy, "remote.test")
    assert cached is not None and cached.policy_id == "1" and cached.max_age == 86400
    assert sample("fdbmail_outbound_mta_sts_policy_total", result="fetched") == fetched + 1
    await submit(site, "alice@example.com", ["dan@remote.test"], MESSAGE)
    await worker.run_once()
    assert len(mx.received) == 2 and len(policy_server.requests) == 1


async def test_enforce_defers_when_the_certificate_is_not_trusted(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 section 5.1: in enforce mode a host whose certificate does not verify
    gets no mail; the delivery is deferred (a temporary failure), never sent in clear."""
    failures = sample("fdbmail_outbound_mta_sts_failures_total", mode="enforce",
                      reason="tls")
    zone(dns_server)        # the sink keeps its self-signed certificate
    policy_server.response = Response(body=ENFORCE)
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.7.5")
    assert sample("fdbmail_outbound_mta_sts_failures_total", mode="enforce",
                  reason="tls") == failures + 1


async def test_enforce_defers_without_starttls(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 section 4.2: TLS is required; a host that offers no STARTTLS gets no
    mail."""
    zone(dns_server)
    mx.tls_context = None     # type: ignore[assignment]
    policy_server.response = Response(body=ENFORCE)
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.recipients[0].reply.startswith("451 4.7.5")


async def test_enforce_skips_mx_hosts_not_in_the_policy(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 section 4.1: only MX hosts that match the policy's mx patterns."""
    failures = sample("fdbmail_outbound_mta_sts_failures_total", mode="enforce",
                      reason="mx_mismatch")
    zone(dns_server)
    mx.tls_context = ca.server_context("mx1.remote.test")
    policy_server.response = Response(body=ENFORCE.replace(b"mx1.remote", b"*.other"))
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert mx.received == []
    [queued] = await site.queued()
    assert queued.state == DELAYED and queued.recipients[0].reply.startswith("451 4.7.5")
    assert sample("fdbmail_outbound_mta_sts_failures_total", mode="enforce",
                  reason="mx_mismatch") == failures + 1


async def test_testing_mode_reports_and_delivers(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 section 5: in testing mode a failed check is reported and the mail is
    delivered anyway."""
    failures = sample("fdbmail_outbound_mta_sts_failures_total", mode="testing",
                      reason="tls")
    zone(dns_server)        # self-signed certificate at the MX host
    policy_server.response = Response(body=TESTING)
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert [r.recipients for r in mx.received] == [["carol@remote.test"]]
    assert sample("fdbmail_outbound_mta_sts_failures_total", mode="testing",
                  reason="tls") == failures + 1


@pytest.mark.parametrize("response", [
    Response(301, ENFORCE, {"Location": "https://elsewhere.test/", "Content-Type":
                            "text/plain"}),
    Response(404, ENFORCE),
    Response(200, ENFORCE, {"Content-Type": "text/html"}),
    Response(200, ENFORCE + b"x" * 70_000),
    Response(200, b"version: STSv1\nmode: enforce\n"),
], ids=["redirect", "404", "html", "too-big", "bad-syntax"])
async def test_unusable_policies_are_not_applied(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA, policy_server: HttpsServer,
        response: Response) -> None:
    """RFC 8461 section 3.3: no redirects, 200 and text/plain only, a bounded size, the
    section 3.2 syntax; with no usable policy (and none cached) mail goes as without
    MTA-STS (here to a self-signed host)."""
    failed = sample("fdbmail_outbound_mta_sts_policy_total", result="failed")
    zone(dns_server)
    policy_server.response = response
    worker = worker_for(site, dns_server, mx, ca, policy_server)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert len(mx.received) == 1
    assert await transact(site.engine, get_policy, "remote.test") is None
    assert sample("fdbmail_outbound_mta_sts_policy_total", result="failed") == failed + 1


async def test_policy_host_certificate_must_verify(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA, tmp_path: Path) -> None:
    """RFC 8461 section 3.3: the policy host's certificate must be valid for
    mta-sts.<domain>; a policy from another CA is not used."""
    other = TestCA(tmp_path / "other")
    server = HttpsServer(other.server_context("mta-sts.remote.test"))
    server.response = Response(body=ENFORCE)
    await server.start()
    try:
        zone(dns_server)
        worker = worker_for(site, dns_server, mx, ca, server)
        await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
        await worker.run_once()
    finally:
        await server.close()
    assert len(mx.received) == 1        # no policy: delivered to the self-signed host
    assert await transact(site.engine, get_policy, "remote.test") is None


async def test_cached_policy_survives_the_policy_host_and_expires(
        site: Site, dns_server: Dns, mx: Sink, ca: TestCA,
        policy_server: HttpsServer) -> None:
    """RFC 8461 section 5.1: a cached policy stands when the TXT record goes or the
    host fails, until max_age; a new TXT id fetches it again."""
    zone(dns_server)
    mx.tls_context = ca.server_context("mx1.remote.test")
    policy_server.response = Response(body=ENFORCE)
    clock = Clock()
    worker = worker_for(site, dns_server, mx, ca, policy_server, clock)
    await submit(site, "alice@example.com", ["carol@remote.test"], MESSAGE)
    await worker.run_once()
    assert len(mx.received) == 1
    # the record disappears and the host serves garbage: the cached enforce policy holds
    zone(dns_server, policy_id=None)
    policy_server.response = Response(404)
    mx.tls_context = Sink(site.data / "other").tls_context      # self-signed now
    await submit(site, "alice@example.com", ["dan@remote.test"], MESSAGE)
    await worker.run_once()
    assert len(mx.received) == 1
    [queued] = await site.queued()
    assert queued.recipients[0].reply.startswith("451 4.7.5")
    # a new id: fetched again (now testing mode): delivered
    zone(dns_server, policy_id="2")
    policy_server.response = Response(body=TESTING)
    clock.offset = 61.0
    assert await worker.run_once() == 1
    assert len(mx.received) == 2 and len(policy_server.requests) == 2
    # past max_age with no record: no policy any more
    zone(dns_server, policy_id=None)
    policy_server.response = Response(404)
    clock.offset = 86400 + 120.0
    await submit(site, "alice@example.com", ["erin@remote.test"], MESSAGE)
    await worker.run_once()
    assert len(mx.received) == 3
