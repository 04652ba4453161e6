"""Where a recipient's mail goes, and what the delivery pipeline's per-account results
mean for each address: the one decision shared by SMTP (RCPT, DATA and LMTP), the
outbound worker (queued mail for a local domain: a DSN to a local sender) and
:mod:`.submit` (JMAP EmailSubmission, vacation replies).

* :func:`route` sends an address to the local accounts it resolves to, to the outbound
  queue (not a local domain), or nowhere (a local domain without that user);
  :func:`route_recipients` does it for an envelope;
* :func:`local_request` is the pipeline's request for local addresses: each account
  once (an account reached by two addresses, e.g. a group and its member, gets the
  message once; :func:`accounts`), the message with Return-Path first;
* :func:`verdict` (:func:`verdicts`) folds the pipeline's results back per address.
  What each caller answers from a verdict (an SMTP reply, a queue state, a JMAP
  delivery status) is its own; the folding is not.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from server.delivery.request import (
    DeliveryRequest,
    DeliveryResult,
    Recipient,
    Refused,
    Source,
    Stored,
)
from server.directory.base import Directory, Principal


class Kind(enum.Enum):
    LOCAL = "local"         # delivered through the pipeline to ``principals``
    REMOTE = "remote"       # queued for the outbound worker
    UNKNOWN = "unknown"     # a local domain has no such recipient


@dataclass(frozen=True, slots=True)
class Route:
    kind: Kind
    principals: list[Principal] = field(default_factory=list)


async def route(directory: Directory, address: str) -> Route:
    """Where mail for ``address`` goes (raises what the directory raises when it is
    down: the caller decides what a failed lookup means to it)."""
    if not await directory.is_local_domain(address.rpartition("@")[2]):
        return Route(Kind.REMOTE)
    principals = await directory.resolve_recipient(address)
    return Route(Kind.LOCAL, principals) if principals else Route(Kind.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Routes:
    local: dict[str, list[Principal]] = field(default_factory=dict)  # address -> accounts
    remote: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # a local domain has no such recipient


async def route_recipients(directory: Directory, addresses: Sequence[str]) -> Routes:
    """:func:`route` for each address, once per address."""
    local: dict[str, list[Principal]] = {}
    remote: list[str] = []
    unknown: list[str] = []
    for address in dict.fromkeys(addresses):
        where = await route(directory, address)
        if where.kind is Kind.LOCAL:
            local[address] = where.principals
        elif where.kind is Kind.REMOTE:
            remote.append(address)
        else:
            unknown.append(address)
    return Routes(local, tuple(remote), tuple(unknown))


def accounts(principals: Iterable[Sequence[Principal]]) -> tuple[Recipient, ...]:
    """The pipeline's recipients for these addresses' accounts: each account once, in
    first-seen order, with its quota (a negative quota, none, is 0)."""
    seen: dict[str, Principal] = {}
    for group in principals:
        for p in group:
            seen.setdefault(p.id, p)
    return tuple(Recipient(a, max(0, p.quota)) for a, p in seen.items())


def local_request(reverse_path: str, header: bytes, content: bytes,
                  principals: Iterable[Sequence[Principal]], idempotency_id: str, *,
                  source: Source = Source.SMTP, role: str = "inbox") -> DeliveryRequest:
    """The delivery of ``header + content`` to local accounts.  Final delivery adds
    ``Return-Path`` with the reverse-path, ``<>`` for a null one (RFC 5321 section
    4.4), before ``header`` (the caller's trace fields); the outbound queue gets no
    Return-Path (the next hop's final delivery adds it)."""
    return DeliveryRequest(source, f"Return-Path: <{reverse_path}>\r\n".encode() + header
                           + content, accounts(principals), idempotency_id, role=role)


class Outcome(enum.Enum):
    ACCEPTED = "accepted"       # some account stored it, or Sieve discarded it
    TEMPORARY = "temporary"     # an account failed for now, or has no result
    REFUSED = "refused"         # every account refused it permanently


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    refused: tuple[Refused, ...] = ()   # this address's refusals, temporary ones first
    stored: bool = False                # an account stored it (not only discarded)

    @property
    def partial(self) -> bool:
        """Accepted, but some account refused it permanently."""
        return self.outcome is Outcome.ACCEPTED and bool(self.refused)


def verdict(principals: Sequence[Principal],
            by_account: Mapping[str, DeliveryResult]) -> Verdict:
    """One address's verdict from the pipeline's results (by account id) for its
    accounts."""
    mine = [by_account.get(p.id) for p in principals]
    refused = [r for r in mine if isinstance(r, Refused)]
    temporary = [r for r in refused if r.temporary]
    ordered = tuple(temporary + [r for r in refused if not r.temporary])
    if temporary or None in mine:
        outcome = Outcome.TEMPORARY
    elif refused and len(refused) == len(mine):
        outcome = Outcome.REFUSED
    else:
        outcome = Outcome.ACCEPTED
    return Verdict(outcome, ordered, any(isinstance(r, Stored) for r in mine))


def verdicts(local: Mapping[str, Sequence[Principal]],
             results: Iterable[DeliveryResult]) -> dict[str, Verdict]:
    """:func:`verdict` for each local address."""
    by_account = {r.account_id: r for r in results}
    return {address: verdict(principals, by_account) for address, principals in local.items()}
