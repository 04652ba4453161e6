"""Checks on mail from outside (the MX listener, no AUTH): SPF (RFC 7208), DKIM
(RFC 6376), DMARC (RFC 7489), ARC (RFC 8617), recorded in an Authentication-Results
header (RFC 8601) prepended before the message is stored.  A real DNS server on
loopback answers the senders' TXT records; smtplib is the sending MTA."""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import pytest
from prometheus_client import REGISTRY, generate_latest

from server.config import load_config
from server.delivery import DeliveryRequest, DeliveryResult
from server.mailauth.dkim_keys import DkimKey, generate
from server.mailauth.sign import sign_with
from server.smtp import SmtpService, start_smtp
from tests.server.outbound.conftest import free_closed_port
from tests.server.smtp.conftest import FakeDelivery, FakeDirectory
from tests.support.dns import Dns, Records, txt
from tests.support.metrics import assert_promtool_accepts

KEY = generate("sender.test", "rsa", selector="s1")
RELAY_KEY = generate("relay.test", "rsa", selector="arc")

RECORDS: Records = {
    ("sender.test", "TXT"): [txt("v=spf1 ip4:127.0.0.1 -all")],
    ("s1._domainkey.sender.test", "TXT"): [txt(KEY.record())],
    ("_dmarc.sender.test", "TXT"): [txt("v=DMARC1; p=reject")],
    ("arc._domainkey.relay.test", "TXT"): [txt(RELAY_KEY.record())],
    # strict.test sends from elsewhere only, and asks for rejection
    ("strict.test", "TXT"): [txt("v=spf1 ip4:192.0.2.1 -all")],
    ("_dmarc.strict.test", "TXT"): [txt("v=DMARC1; p=reject; adkim=s; aspf=s")],
    ("quar.test", "TXT"): [txt("v=spf1 -all")],
    ("_dmarc.quar.test", "TXT"): [txt("v=DMARC1; p=quarantine")],
    # sub.org.test has no record of its own: its organizational domain's applies
    ("sub.org.test", "TXT"): [txt("v=spf1 -all")],
    ("_dmarc.org.test", "TXT"): [txt("v=DMARC1; p=none; sp=reject")],
    ("loop.test", "TXT"): [txt("v=spf1 include:loop.test -all")],
}


def message(author: str, body: str = "hello", extra: str = "") -> bytes:
    return (f"{extra}From: <{author}>\r\nTo: <bob@example.com>\r\nSubject: test\r\n"
            f"Date: Sun, 06 Dec 2026 01:00:00 +0000\r\nMessage-ID: <m@x.test>\r\n\r\n"
            f"{body}\r\n").encode()


@dataclass
class RecordingDelivery(FakeDelivery):
    roles: list[str] = field(default_factory=list)

    async def deliver(self, request: DeliveryRequest) -> list[DeliveryResult]:
        self.roles.append(request.role)
        return await super().deliver(request)


@dataclass
class Mx:
    service: SmtpService
    delivery: RecordingDelivery

    def send(self, mail_from: str, content: bytes, helo: str = "client.test",
             login: tuple[str, str] | None = None) -> tuple[int, str]:
        port = self.service.ports["submission" if login else "mx"]
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo(helo)
            if login:
                s.login(*login)
            s.mail(mail_from)
            code, text = s.rcpt("bob@example.com")
            assert code == 250, text
            code, text = s.data(content)
            return code, text.decode()

    def stored(self) -> list[bytes]:
        return self.delivery.stored.get("bob", [])


StartMx = Callable[..., Awaitable[Mx]]


@pytest.fixture
async def dns_server(tmp_path: Path) -> AsyncIterator[Dns]:
    from tests.support.dns import dns_server as make

    (tmp_path / "dns").mkdir()
    server = make(RECORDS, tmp_path / "dns")
    await server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def start_mx(tmp_path: Path, dns_server: Dns) -> AsyncIterator[StartMx]:
    services: list[SmtpService] = []

    async def start(resolver: str = "", **mailauth: Any) -> Mx:
        directory = FakeDirectory()
        directory.add("alice", "alice@example.com")
        directory.add("bob", "bob@example.com")
        delivery = RecordingDelivery()
        config = load_config(None, env={}).with_overrides({
            "server": {"data_dir": str(tmp_path / "data")},
            "smtp": {"mx_listen": "127.0.0.1:0", "submission_listen": "127.0.0.1:0",
                     "submissions_listen": "", "hostname": "mx.test",
                     "mx_starttls": False, "auth_require_tls": False},
            "outbound": {"resolver": resolver or f"127.0.0.1:{dns_server.port}"},
            "mailauth": {"trusted_networks": [], **mailauth}})
        service = await start_smtp(config, directory, delivery)
        services.append(service)
        return Mx(service, delivery)

    yield start
    for s in services:
        await s.close()


async def send(mx: Mx, mail_from: str, content: bytes, **kw: Any) -> tuple[int, str]:
    return await asyncio.to_thread(mx.send, mail_from, content, **kw)


def results_of(stored: bytes) -> list[str]:
    """Every Authentication-Results field, unfolded."""
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    return [f.replace("\r\n\t", " ").replace("\r\n ", " ") for f in
            re.findall(r"^Authentication-Results:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head,
                       re.M | re.I)]


def checks(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def signed(content: bytes, key: DkimKey = KEY) -> bytes:
    return sign_with(content, [key])


async def test_authenticated_mail_passes_every_check(start_mx: StartMx) -> None:
    """RFC 8601 section 2.7: spf, dkim and dmarc pass; no ARC set: arc=none."""
    mx = await start_mx()
    before = checks("fdbmail_mailauth_checks_total", method="dmarc", result="pass")
    content = signed(message("ann@sender.test"))
    assert (await send(mx, "ann@sender.test", content))[0] == 250
    [stored] = mx.stored()
    assert stored.endswith(content)
    [ours] = results_of(stored)
    assert ours.startswith("Authentication-Results: mx.test;")
    assert "spf=pass" in ours and "smtp.mailfrom=sender.test" in ours
    assert "dkim=pass" in ours and "header.d=sender.test" in ours and "header.s=s1" in ours
    assert "dmarc=pass" in ours and "header.from=sender.test" in ours
    assert "arc=none" in ours
    # trace fields first, then our results, then the message as it came
    assert stored.index(b"Received:") < stored.index(b"Authentication-Results:")
    assert mx.delivery.roles == ["inbox"]
    assert checks("fdbmail_mailauth_checks_total", method="dmarc",
                  result="pass") == before + 1
    assert_promtool_accepts(generate_latest().decode())


async def test_forged_results_with_our_authserv_id_are_removed(start_mx: StartMx) -> None:
    """RFC 8601 section 5: fields claiming our authserv-id are removed, others kept."""
    mx = await start_mx()
    forged = ("Authentication-Results: MX.test; dkim=pass header.d=bank.test;\r\n"
              "\tdmarc=pass header.from=bank.test\r\n"
              "Authentication-Results: (sneaky) mx.test (comment) 1; spf=pass\r\n"
              "Authentication-Results: relay.elsewhere; spf=pass\r\n")
    content = message("ann@sender.test", extra=forged)
    assert (await send(mx, "ann@sender.test", content))[0] == 250
    [stored] = mx.stored()
    fields = results_of(stored)
    assert len(fields) == 2
    assert fields[1] == "Authentication-Results: relay.elsewhere; spf=pass"
    assert "bank.test" not in stored.decode() and "sneaky" not in stored.decode()
    assert "dkim=none" in fields[0] and "dmarc=pass" in fields[0]   # SPF aligned
    assert stored.endswith(message("ann@sender.test",
                                   extra="Authentication-Results: relay.elsewhere; "
                                         "spf=pass\r\n"))


async def test_dmarc_reject_is_honoured(start_mx: StartMx) -> None:
    """RFC 7489 section 6.6.2/10.3: no aligned pass and p=reject: refused, 550 5.7.1."""
    mx = await start_mx()
    before = checks("fdbmail_mailauth_actions_total", action="reject")
    # signed by sender.test (not aligned with strict.test), SPF fails
    code, text = await send(mx, "ceo@strict.test", signed(message("ceo@strict.test")))
    assert (code, text[:5]) == (550, "5.7.1")
    assert mx.stored() == []
    assert checks("fdbmail_mailauth_actions_total", action="reject") == before + 1


async def test_dmarc_policy_report_only_records(start_mx: StartMx) -> None:
    mx = await start_mx(dmarc_policy="report")
    assert (await send(mx, "ceo@strict.test", message("ceo@strict.test")))[0] == 250
    [stored] = mx.stored()
    [ours] = results_of(stored)
    assert "spf=fail" in ours and "dmarc=fail" in ours and "policy.dmarc=reject" in ours
    assert mx.delivery.roles == ["inbox"]


async def test_dmarc_quarantine_files_in_junk(start_mx: StartMx) -> None:
    """RFC 7489 section 6.3 p=quarantine: accepted, delivered to the Junk mailbox."""
    mx = await start_mx()
    assert (await send(mx, "x@quar.test", message("x@quar.test")))[0] == 250
    assert mx.delivery.roles == ["junk"]
    [ours] = results_of(mx.stored()[0])
    assert "dmarc=fail" in ours and "policy.dmarc=quarantine" in ours


async def test_organizational_domain_policy_applies_to_subdomains(start_mx: StartMx) -> None:
    """RFC 7489 section 6.6.3: no record at the From domain: the organizational
    domain's, whose sp= covers subdomains."""
    mx = await start_mx()
    code, _ = await send(mx, "a@sub.org.test", message("a@sub.org.test"))
    assert code == 550 and mx.stored() == []


async def test_dns_failure_gives_temperror_and_the_message_is_kept(
        start_mx: StartMx) -> None:
    """RFC 7208 section 2.6.6 and RFC 7489 section 6.6.2: a DNS failure is temperror;
    the message is accepted, never lost."""
    mx = await start_mx(resolver=f"127.0.0.1:{free_closed_port()}", dns_timeout=0.5)
    content = signed(message("ann@sender.test"))
    assert (await send(mx, "ann@sender.test", content))[0] == 250
    [stored] = mx.stored()
    [ours] = results_of(stored)
    assert "spf=temperror" in ours and "dkim=temperror" in ours and "dmarc=temperror" in ours
    assert stored.endswith(content)


async def test_spf_lookup_limit_gives_permerror(start_mx: StartMx) -> None:
    """RFC 7208 section 4.6.4: more than 10 lookups (here an include loop) is a
    permerror, not an endless evaluation."""
    mx = await start_mx()
    assert (await send(mx, "a@loop.test", message("a@loop.test")))[0] == 250
    [ours] = results_of(mx.stored()[0])
    assert "spf=permerror" in ours


async def test_spf_checks_helo_for_the_null_reverse_path(start_mx: StartMx) -> None:
    """RFC 7208 section 2.4: with MAIL FROM:<> the HELO identity is checked."""
    mx = await start_mx()
    assert (await send(mx, "", message("ann@sender.test"), helo="sender.test"))[0] == 250
    [ours] = results_of(mx.stored()[0])
    assert "spf=pass" in ours and "smtp.helo=sender.test" in ours


async def test_arc_chain_is_verified(start_mx: StartMx) -> None:
    """RFC 8617 section 5.2: a valid ARC set sealed by a forwarder: arc=pass; a
    changed message after the seal: arc=fail.  (The forwarder's SPF fails DMARC for
    sender.test; here DMARC only reports, so both copies are stored.)"""
    mx = await start_mx(dmarc_policy="report")
    content = message("ann@sender.test",
                      extra="Authentication-Results: relay.test; spf=pass "
                            "smtp.mailfrom=sender.test\r\n")
    seal = b"".join(dkim.arc_sign(content, b"arc", b"relay.test", RELAY_KEY.private,
                                  b"relay.test"))
    assert (await send(mx, "fwd@relay.test", seal + content))[0] == 250
    assert (await send(mx, "fwd@relay.test", seal + content.replace(b"hello", b"bye")))[0] \
        == 250
    first, second = (results_of(s)[0] for s in mx.stored())
    assert "arc=pass" in first and "arc=fail" in second


async def test_submission_is_not_checked(start_mx: StartMx) -> None:
    """Checks are for mail from outside: an authenticated submission gets none."""
    mx = await start_mx()
    content = message("alice@example.com")
    assert (await send(mx, "alice@example.com", content, login=("alice", "secret")))[0] == 250
    [stored] = mx.stored()
    assert results_of(stored) == []


async def test_checks_off(start_mx: StartMx) -> None:
    mx = await start_mx(check_inbound=False)
    content = message("ceo@strict.test", extra="Authentication-Results: mx.test; x=y\r\n")
    assert (await send(mx, "ceo@strict.test", content))[0] == 250
    assert mx.stored()[0].endswith(content)


async def test_trusted_networks_are_not_checked(start_mx: StartMx) -> None:
    """Mail from a trusted relay (loopback by default) is not checked, but a forged
    Authentication-Results with our authserv-id is removed all the same."""
    mx = await start_mx(trusted_networks=["127.0.0.0/8"])
    content = message("ceo@strict.test")
    forged = b"Authentication-Results: mx.test; dmarc=pass\r\n" + content
    assert (await send(mx, "ceo@strict.test", forged))[0] == 250
    [stored] = mx.stored()
    assert results_of(stored) == [] and stored.endswith(b"\r\n" + content)


def test_a_bad_trusted_network_is_a_config_error() -> None:
    from server.config import ConfigError
    from server.mailauth.settings import MailauthSettings
    from server.mailauth.verify import Checker

    with pytest.raises(ConfigError, match="trusted_networks"):
        Checker(MailauthSettings(trusted_networks=["not-a-network"]), "", "mx.test")


async def test_an_ipv4_mapped_peer_matches_ip4_mechanisms(dns_server: Dns) -> None:
    """RFC 7208 section 5.6: a dual-stack listener's ::ffff:a.b.c.d peer is checked
    as a.b.c.d; the checker is trusted for neither form of loopback here."""
    from server.mailauth.settings import MailauthSettings
    from server.mailauth.verify import Checker

    checker = Checker(MailauthSettings(trusted_networks=["10.0.0.0/8"]),
                      f"127.0.0.1:{dns_server.port}", "mx.test")
    checked = await checker.check(signed(message("ann@sender.test")), "::ffff:127.0.0.1",
                                  "client.test", "ann@sender.test")
    assert checked.verdict is not None
    assert (checked.verdict.spf.result, checked.verdict.dmarc.result) == ("pass", "pass")
    assert [d.result for d in checked.verdict.dkim] == ["pass"]
