"""The one routing decision (server.delivery.routing) SMTP, the outbound worker and
EmailSubmission share: local accounts, the outbound queue, or nowhere; and the per-address
verdict folded from the pipeline's per-account results."""

from __future__ import annotations

import pytest

from fdb_layers.mail import QuotaExceeded
from server.delivery import (
    DeliveryResult,
    Discarded,
    Recipient,
    Refused,
    Source,
    Stored,
    TemporaryFailure,
    Unavailable,
)
from server.delivery.routing import (
    Kind,
    Outcome,
    Route,
    Routes,
    accounts,
    local_request,
    route,
    route_recipients,
    verdict,
    verdicts,
)
from server.directory.base import Principal

ALICE = Principal("a1", "alice", "individual", ("alice@example.com",), quota=1000)
BOB = Principal("b1", "bob", "individual", ("bob@example.com",), quota=-1)
TEAM = Principal("t1", "team", "group", ("team@example.com",))


class Directory:
    """Two local domains; team@ is a group of alice and bob; lookups counted."""

    def __init__(self) -> None:
        self.fail = False
        self.lookups: list[str] = []

    async def is_local_domain(self, domain: str) -> bool:
        if self.fail:
            raise RuntimeError("directory down")
        return domain.lower() in {"example.com", "example.net"}

    async def resolve_recipient(self, address: str) -> list[Principal]:
        self.lookups.append(address)
        return {"alice@example.com": [ALICE], "bob@example.com": [BOB],
                "team@example.com": [ALICE, BOB]}.get(address.lower(), [])

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        return None

    async def get_principal(self, name: str) -> Principal | None:
        return None

    async def list_domains(self) -> list[str]:
        return ["example.com", "example.net"]

    async def close(self) -> None:
        return None


async def test_route_local_remote_unknown() -> None:
    d = Directory()
    assert await route(d, "Alice@Example.COM") == Route(Kind.LOCAL, [ALICE])
    assert (await route(d, "carol@elsewhere.org")).kind is Kind.REMOTE
    nobody = await route(d, "nobody@example.net")
    assert nobody.kind is Kind.UNKNOWN and nobody.principals == []
    # a remote address is never looked up as a user (no relay to the directory)
    assert "carol@elsewhere.org" not in d.lookups


async def test_route_raises_when_the_directory_is_down() -> None:
    d = Directory()
    d.fail = True
    with pytest.raises(RuntimeError):
        await route(d, "alice@example.com")


async def test_route_recipients_mixed_envelope() -> None:
    d = Directory()
    routes = await route_recipients(d, [
        "alice@example.com", "carol@elsewhere.org", "nobody@example.com",
        "team@example.com", "alice@example.com", "dave@other.example"])
    assert routes == Routes(
        {"alice@example.com": [ALICE], "team@example.com": [ALICE, BOB]},
        ("carol@elsewhere.org", "dave@other.example"), ("nobody@example.com",))
    assert d.lookups.count("alice@example.com") == 1     # a repeated address, once


async def test_route_recipients_all_local_or_all_remote() -> None:
    d = Directory()
    assert await route_recipients(d, ["bob@example.com"]) == \
        Routes({"bob@example.com": [BOB]})
    assert await route_recipients(d, ["x@a.example", "y@b.example"]) == \
        Routes({}, ("x@a.example", "y@b.example"))


def test_accounts_once_each_with_quota() -> None:
    # team@ and alice@ reach alice's account: the pipeline gets it once
    assert accounts([[ALICE, BOB], [ALICE], [TEAM]]) == (
        Recipient("a1", 1000), Recipient("b1", 0), Recipient("t1", 0))


def _stored(account: str) -> Stored:
    return Stored(account, "e", "t", "b", ())


def test_verdicts_per_address() -> None:
    full = Refused("b1", QuotaExceeded(10, 10, 5))
    results: list[DeliveryResult] = [_stored("a1"), full]
    v = verdicts({"alice@example.com": [ALICE], "bob@example.com": [BOB],
                  "team@example.com": [ALICE, BOB]}, results)
    assert v["alice@example.com"].outcome is Outcome.ACCEPTED
    assert v["alice@example.com"].stored and not v["alice@example.com"].partial
    assert v["bob@example.com"].outcome is Outcome.REFUSED
    assert v["bob@example.com"].refused == (full,)
    # a group stored for one member, refused for another: accepted, partial
    assert v["team@example.com"].outcome is Outcome.ACCEPTED
    assert v["team@example.com"].partial


def test_verdict_temporary_first_and_missing_results() -> None:
    full = Refused("a1", QuotaExceeded(10, 10, 5))
    down = Refused("b1", TemporaryFailure(Unavailable.STORE))
    v = verdict([ALICE, BOB], {"a1": full, "b1": down})
    assert v.outcome is Outcome.TEMPORARY and v.refused == (down, full)
    # no result for an account: not durable for it, so temporary
    missing = verdict([ALICE, BOB], {"a1": _stored("a1")})
    assert missing.outcome is Outcome.TEMPORARY and missing.refused == ()


def test_verdict_discarded_is_accepted_not_stored() -> None:
    v = verdict([ALICE], {"a1": Discarded("a1")})
    assert v.outcome is Outcome.ACCEPTED and not v.stored


def test_local_request_adds_return_path_first() -> None:
    """RFC 5321 section 4.4: final delivery adds Return-Path, <> for a null sender,
    before the caller's trace fields; each account once."""
    request = local_request("zoe@other.test", b"Received: x\r\n", b"body\r\n",
                            [[ALICE], [ALICE, BOB]], "id-1", source=Source.LMTP, role="junk")
    assert request.body == b"Return-Path: <zoe@other.test>\r\nReceived: x\r\nbody\r\n"
    assert request.recipients == (Recipient("a1", 1000), Recipient("b1", 0))
    assert (request.source, request.idempotency_id, request.role) == \
        (Source.LMTP, "id-1", "junk")
    null = local_request("", b"", b"b", [[BOB]], "id-2").body
    assert isinstance(null, bytes) and null.startswith(b"Return-Path: <>\r\n")
