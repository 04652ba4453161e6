"""DKIM signing keys (RFC 6376, RSA; RFC 8463, Ed25519): made here, kept in the
store's settings layer (scope ``dkim``, named ``(domain, selector)``) so that every
node signs with them, never in the blob store.  :func:`txt_record` is what the domain
publishes at ``selector._domainkey.domain``."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from fdb_layers.engine.base import Engine, Transaction
from fdb_layers.engine.run import transact
from fdb_layers.settings import get_setting, list_settings, set_setting

SCOPE = "dkim"
RSA = "rsa"
ED25519 = "ed25519"
ALGORITHMS = (RSA, ED25519)
RSA_BITS = 2048         # RFC 8301 section 3.2: at least 1024, 2048 recommended
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")    # RFC 1035 section 2.3.1 (LDH)


class DkimKeyError(ValueError):
    """A domain, selector or key that cannot be used."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str          # "rsa" or "ed25519"
    private: bytes          # dkimpy's form: PKCS#1 PEM (rsa), base64 of the seed (ed25519)
    public: bytes           # the p= value: base64 SubjectPublicKeyInfo (rsa), raw key (ed25519)
    created: float

    def record(self) -> str:
        """The TXT record's text (RFC 6376 section 3.6.1; k=ed25519: RFC 8463 section 4)."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public.decode()}"


def normalize_domain(domain: str) -> str:
    d = domain.strip().rstrip(".").lower()
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError:
        raise DkimKeyError(f"not a domain name: {domain!r}") from None
    labels = d.split(".")
    if len(d) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        raise DkimKeyError(f"not a domain name: {domain!r}")
    return d


def _check_selector(selector: str) -> str:
    labels = selector.lower().split(".")
    if len(selector) > 200 or not all(_LABEL.fullmatch(x) for x in labels):
        raise DkimKeyError(f"not a selector (RFC 6376 section 3.1): {selector!r}")
    return selector.lower()


def default_selector(algorithm: str, now: float) -> str:
    """``rsa202612`` or ``ed202612``: a new selector per month, so a rotated key
    never replaces the record that signed mail still in flight."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m")
    return ("rsa" if algorithm == RSA else "ed") + stamp


def generate(domain: str, algorithm: str = RSA, selector: str = "",
             now: float | None = None) -> DkimKey:
    """A new key pair for ``domain`` (not stored: see :func:`store_key`)."""
    now = time.time() if now is None else now
    domain = normalize_domain(domain)
    if algorithm not in ALGORITHMS:
        raise DkimKeyError(f"algorithm is one of {', '.join(ALGORITHMS)}")
    selector = _check_selector(selector or default_selector(algorithm, now))
    if algorithm == RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = base64.b64encode(key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    else:
        ed = ed25519.Ed25519PrivateKey.generate()
        private = base64.b64encode(ed.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
        public = base64.b64encode(ed.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return DkimKey(domain, selector, algorithm, private, public, now)


def txt_record(key: DkimKey) -> str:
    """The zone-file line to publish, its text split in strings of at most 255
    octets (RFC 1035 section 3.3.14; RFC 6376 section 3.6.2.2 joins them)."""
    text = key.record()
    parts = " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))
    return f"{key.selector}._domainkey.{key.domain}. IN TXT ( {parts} )"


def _encode(key: DkimKey) -> bytes:
    return json.dumps({"algorithm": key.algorithm, "private": key.private.decode(),
                       "public": key.public.decode(), "created": key.created}).encode()


def _decode(domain: str, selector: str, raw: bytes) -> DkimKey:
    v = json.loads(raw)
    return DkimKey(domain, selector, str(v["algorithm"]), str(v["private"]).encode(),
                   str(v["public"]).encode(), float(v["created"]))


async def store_key(tr: Transaction, key: DkimKey) -> None:
    await set_setting(tr, SCOPE, (key.domain, key.selector), _encode(key))


async def get_key(tr: Transaction, domain: str, selector: str) -> DkimKey | None:
    raw = await get_setting(tr, SCOPE, (domain, selector))
    return None if raw is None else _decode(domain, selector, raw)


async def list_keys(tr: Transaction, domain: str | None = None) -> list[DkimKey]:
    """Every stored key (of one domain), by domain and selector."""
    prefix = (normalize_domain(domain),) if domain else ()
    return [_decode(s.name[0], s.name[1], s.value)
            for s in await list_settings(tr, SCOPE, prefix) if len(s.name) == 2]


def signing_keys(keys: list[DkimKey]) -> list[DkimKey]:
    """The newest key of each algorithm: a domain with both signs twice (RFC 8463
    section 1 suggests both while verifiers learn Ed25519)."""
    newest: dict[str, DkimKey] = {}
    for k in keys:
        if k.algorithm not in newest or k.created > newest[k.algorithm].created:
            newest[k.algorithm] = k
    return sorted(newest.values(), key=lambda k: k.algorithm)


class KeyCache:
    """Each domain's signing keys, read through the store and kept ``ttl`` seconds
    (a droppable cache: a new key is used within ``ttl`` on every node)."""

    def __init__(self, engine: Engine, ttl: float = 60.0, size: int = 10_000) -> None:
        self.engine = engine
        self.ttl = ttl
        self.size = size
        self._cache: dict[str, tuple[float, list[DkimKey]]] = {}

    async def keys_for(self, domain: str) -> list[DkimKey]:
        now = time.monotonic()
        hit = self._cache.get(domain)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            d = normalize_domain(domain)
        except DkimKeyError:
            return []
        keys = signing_keys(await transact(self.engine, list_keys, d))
        if len(self._cache) >= self.size:
            self._cache.clear()
        self._cache[domain] = (now + self.ttl, keys)
        return keys
