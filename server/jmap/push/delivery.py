"""Pushing to a PushSubscription's url (RFC 8620 section 7.2): one POST of a JSON
object (a PushVerification or a StateChange), retried with exponential backoff.

Only http and https URLs of the hosts ``push_allowed_hosts`` allows are ever
contacted; redirects are not followed (a push service answers 201 or fails)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter

from ..json import JsonObject, encode
from .encryption import PushKeys, encrypt
from .settings import PushSettings

log = logging.getLogger(__name__)

TIMEOUT = 10.0
TTL = "43200"  # seconds a push service may keep a push for a device that is offline

PUSHES = Counter("fdbmail_jmap_push_deliveries_total",
                 "POSTs to PushSubscription urls, by kind (verification, state) and result "
                 "(delivered, retried, failed).", ["kind", "result"])


def check_url(url: str, settings: PushSettings) -> str | None:
    """Why ``url`` may not be pushed to, or None if it may."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "url is not a URL"
    if parts.scheme not in ("http", "https"):
        return "url must be an http or https URL"
    if not parts.hostname:
        return "url must name a host"
    if parts.username is not None or parts.password is not None:
        return "url must not carry credentials"
    if not settings.allows_host(parts.hostname):
        return f"pushing to {parts.hostname} is not allowed on this server"
    return None


class Pusher:
    """POSTs to push urls, with ``push_attempts`` tries and doubling delays."""

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                                             trust_env=False)
        return self._client

    async def post(self, url: str, body: JsonObject, kind: str,
                   keys: PushKeys | None = None) -> bool:
        """True once the push service accepted ``body`` (a 2xx answer); encrypted
        (RFC 8291) when the subscription gave ``keys``."""
        if check_url(url, self.settings) is not None:  # the settings changed since
            PUSHES.labels(kind, "failed").inc()
            return False
        delay = self.settings.retry_delay
        data = encode(body)
        headers = {"Content-Type": "application/json; charset=utf-8", "TTL": TTL}
        if keys is not None:
            data = encrypt(data, keys)
            headers = {"Content-Encoding": "aes128gcm", "TTL": TTL}
        for attempt in range(1, self.settings.attempts + 1):
            try:
                r = await self._http().post(url, content=data, headers=headers)
                if 200 <= r.status_code < 300:
                    PUSHES.labels(kind, "delivered").inc()
                    return True
                why = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    break  # the push service refuses it: trying again will not help
            except httpx.HTTPError as e:
                why = type(e).__name__
            if attempt < self.settings.attempts:
                PUSHES.labels(kind, "retried").inc()
                log.info("push %s failed (%s); retrying in %.1f s", kind, why, delay)
                await asyncio.sleep(delay)
                delay *= 2
        PUSHES.labels(kind, "failed").inc()
        log.warning("push %s given up (%s)", kind, why)
        return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
