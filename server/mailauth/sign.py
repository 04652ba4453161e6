"""DKIM signing of submitted mail (RFC 6376 section 5; Ed25519: RFC 8463).

Where: at submission, before the message is queued (:class:`server.outbound.outbox.
Outbox`), not by the delivery workers.  The signed bytes are what the queue keeps and
every attempt sends, so a message is signed once whatever the number of retries and
hops, with the keys valid when the user sent it, and the worker needs no key.  That is
safe because the worker never changes the bytes: dot-stuffing is undone by the
receiver (RFC 5321 section 4.5.2), and 8-bit content to a host without 8BITMIME is
bounced rather than downgraded (RFC 6152 section 3, :mod:`server.outbound.client`),
so no transfer-encoding change breaks the body hash (RFC 6376 section 5.3).

Signatures: ``relaxed/relaxed`` canonicalization (survives header re-folding by
relays), d= the From: domain so DMARC aligns (RFC 7489 section 3.1.1), dkimpy's header
list (From oversigned), no l= (RFC 6376 section 8.2).  A domain with an RSA and an
Ed25519 key gets both signatures.

A store without any key (no ``fdbmail dkim generate`` yet) is remembered for the key
cache's ``ttl``, as each domain's keys are: the From: field is not parsed then, and a
new key is used within the same ``ttl`` as before (nodes see settings only by
re-reading them)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import dkim
from prometheus_client import Counter

from fdb_layers.engine.run import transact
from server.mailauth.dkim_keys import ED25519, DkimKey, KeyCache, list_keys
from server.mailauth.message import NoAuthorDomain, author_domain

log = logging.getLogger(__name__)

SIGNED = Counter(
    "fdbmail_mailauth_dkim_sign_total",
    "Messages submitted for remote recipients, by DKIM signing result (signed, no_key: "
    "none for the From: domain or none at all, no_domain, error).",
    ("result",),
)


def sign_with(message: bytes, keys: list[DkimKey]) -> bytes:
    """``message`` with one DKIM-Signature per key prepended (raises DKIMException)."""
    fields = b""
    for key in keys:
        algorithm = b"ed25519-sha256" if key.algorithm == ED25519 else b"rsa-sha256"
        fields += dkim.sign(message, key.selector.encode(), key.domain.encode(), key.private,
                            canonicalize=(b"relaxed", b"relaxed"),
                            signature_algorithm=algorithm, linesep=b"\r\n")
    return fields + message


class Signer:
    """Signs a submission with its From: domain's keys (the outbox's ``signer``)."""

    def __init__(self, keys: KeyCache,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self.clock = clock
        self._any: tuple[float, bool] = (0.0, False)   # (until, whether any key exists)

    async def _any_key(self) -> bool:
        """Whether the store holds a DKIM key at all, re-read after ``keys.ttl``."""
        now = self.clock()
        until, found = self._any
        if now < until:
            return found
        found = bool(await transact(self.keys.engine, list_keys))
        self._any = (now + self.keys.ttl, found)
        return found

    async def sign(self, message: bytes) -> bytes:
        """The message to queue: signed when its From: domain has keys; else (and if
        signing fails: logged, counted) unchanged, never refused for it."""
        try:
            if not await self._any_key():
                SIGNED.labels("no_key").inc()
                return message
        except Exception:
            log.exception("DKIM keys unreadable: the message goes out unsigned")
            SIGNED.labels("error").inc()
            return message
        try:
            domain = author_domain(message)
        except NoAuthorDomain:
            SIGNED.labels("no_domain").inc()
            return message
        try:
            keys = await self.keys.keys_for(domain)
            if not keys:
                SIGNED.labels("no_key").inc()
                return message
            signed = await asyncio.to_thread(sign_with, message, keys)
        except Exception:
            log.exception("DKIM signing for %s failed: the message goes out unsigned", domain)
            SIGNED.labels("error").inc()
            return message
        SIGNED.labels("signed").inc()
        return signed
