"""The JMAP Session resource (RFC 8620 section 2): what the caller may use and where.

Built from the principal, the registry's capabilities and the base URL the client reached
us at; its ``state`` is a digest of everything else in it, so it changes exactly when the
session does (another account, a capability, a limit, a URL), and every API response's
``sessionState`` is the same value."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from server.directory.base import Principal

from .json import JsonObject, encode
from .methods import Account, Registry

API_PATH = "/jmap/api"
SESSION_PATHS = ("/.well-known/jmap", "/jmap/session")
# URL templates (RFC 6570 level 1) of the session, relative to the base URL.
DOWNLOAD_TEMPLATE = "/download/{accountId}/{blobId}/{name}?accept={type}"
UPLOAD_TEMPLATE = "/upload/{accountId}/"
EVENT_SOURCE_TEMPLATE = "/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"
# JMAP over WebSocket (RFC 8887 section 4): its capability's url is filled in here, as
# the ws:// or wss:// twin of the base URL.
WEBSOCKET = "urn:ietf:params:jmap:websocket"
WEBSOCKET_PATH = "/jmap/ws"


def account_id_of(principal: Principal) -> str:
    """The JMAP account id of a principal's own account: the directory's principal id,
    which the mailbox layer and delivery key the account by (DESIGN.md, "Data model")."""
    return principal.id


def accounts_of(principal: Principal, registry: Registry) -> dict[str, Account]:
    """The accounts the principal may use: its own (shared accounts come with ACLs)."""
    capabilities = {uri: dict(c.account) for uri, c in registry.capabilities.items()
                    if c.account is not None}
    name = principal.emails[0] if principal.emails else principal.name
    own = Account(account_id_of(principal), name, capabilities=capabilities)
    return {own.id: own}


def session_resource(principal: Principal, registry: Registry, base_url: str) -> JsonObject:
    """The Session object, ``state`` included."""
    base = base_url.rstrip("/")
    accounts = accounts_of(principal, registry)
    own = account_id_of(principal)
    body: JsonObject = {
        "capabilities": {uri: dict(c.session) for uri, c in registry.capabilities.items()},
        "accounts": {a.id: a.to_json() for a in accounts.values()},
        "primaryAccounts": {uri: own for uri in accounts[own].capabilities},
        "username": principal.name,
        "apiUrl": base + API_PATH,
        "downloadUrl": base + DOWNLOAD_TEMPLATE,
        "uploadUrl": base + UPLOAD_TEMPLATE,
        "eventSourceUrl": base + EVENT_SOURCE_TEMPLATE,
    }
    websocket = body["capabilities"].get(WEBSOCKET)  # type: ignore[union-attr]
    if isinstance(websocket, dict):
        websocket["url"] = base.replace("http", "ws", 1) + WEBSOCKET_PATH
    body["state"] = hashlib.sha256(encode(body)).hexdigest()[:16]
    return body


def session_state(session: JsonObject) -> str:
    state = session["state"]
    assert isinstance(state, str)
    return state



class SessionStates:
    """The accounts and the session ``state`` of each (principal, base URL), kept per
    process: every API request needs both (RFC 8620 section 3.4: ``sessionState``), and
    building the Session object to digest it is a noticeable part of a small request.
    Both are functions of the principal (a changed one, another name or address, is
    another key), the registry's capabilities (fixed once the routes are built) and the
    base URL, so an entry never goes stale; at most ``entries`` are kept (the oldest
    dropped first)."""

    def __init__(self, registry: Registry, entries: int = 4096) -> None:
        self.registry, self.entries = registry, entries
        self._states: dict[tuple[Principal, str], tuple[Mapping[str, Account], str]] = {}

    def get(self, principal: Principal, base_url: str) -> tuple[Mapping[str, Account], str]:
        key = (principal, base_url)
        found = self._states.get(key)
        if found is None:
            state = session_state(session_resource(principal, self.registry, base_url))
            found = MappingProxyType(accounts_of(principal, self.registry)), state
            if len(self._states) >= self.entries:
                del self._states[next(iter(self._states))]
            self._states[key] = found
        return found
