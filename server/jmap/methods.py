"""The seam between the request pipeline and the methods: what a method is
(:class:`Method`), what it is given (:class:`CallContext`), and where methods and the
capabilities they need are registered (:class:`Registry`).

A package that adds methods (mail, submission, blob ...) declares a :class:`Capability`
and registers objects that satisfy :class:`Method`; the pipeline dispatches by name and
refuses a call whose capability the request's ``using`` does not name (``unknownMethod``,
RFC 8620 section 3.6.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from server.config import SettingValue
from server.directory.base import Principal

from .json import JsonObject

CORE = "urn:ietf:params:jmap:core"

Replies: TypeAlias = tuple[tuple[str, JsonObject], ...]
"""What a method returns when it answers with more than one response (RFC 8620 section
3.3: e.g. /copy's implicit /set); otherwise it returns its response arguments."""


@dataclass(frozen=True, slots=True)
class Capability:
    """A capability the server advertises: its URI, its object in the session's
    ``capabilities``, and its object in each account's ``accountCapabilities`` (None: the
    capability is server-wide and not listed per account)."""

    uri: str
    session: JsonObject
    account: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """An account the caller may use (RFC 8620 section 2, ``accounts``)."""

    id: str
    name: str
    is_personal: bool = True
    is_read_only: bool = False
    capabilities: Mapping[str, JsonObject] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return {"name": self.name, "isPersonal": self.is_personal,
                "isReadOnly": self.is_read_only,
                "accountCapabilities": {k: dict(v) for k, v in self.capabilities.items()}}


@dataclass(frozen=True, slots=True)
class Limits:
    """The core capability's limits (RFC 8620 section 2) that the pipeline and the methods
    enforce; :func:`limits_from_settings` reads them from ``[jmap]``."""

    max_size_upload: int
    max_concurrent_upload: int
    max_size_request: int
    max_concurrent_requests: int
    max_calls_in_request: int
    max_objects_in_get: int
    max_objects_in_set: int

    def to_json(self) -> JsonObject:
        return {"maxSizeUpload": self.max_size_upload,
                "maxConcurrentUpload": self.max_concurrent_upload,
                "maxSizeRequest": self.max_size_request,
                "maxConcurrentRequests": self.max_concurrent_requests,
                "maxCallsInRequest": self.max_calls_in_request,
                "maxObjectsInGet": self.max_objects_in_get,
                "maxObjectsInSet": self.max_objects_in_set}


def limits_from_settings(values: Mapping[str, SettingValue]) -> Limits:
    """The limits of a ``[jmap]`` section (settings of the same names)."""
    numbers: dict[str, int] = {}
    for name in Limits.__dataclass_fields__:
        value = values[name]
        if not isinstance(value, int):
            raise TypeError(f"[jmap] {name} must be an integer, not {value!r}")
        numbers[name] = value
    return Limits(**numbers)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What one method call sees: who calls, with which accounts, under which limits, and
    the request's creation ids (shared by all calls of the request, RFC 8620 section
    5.3: a creation id is usable in later calls as ``#creationId``)."""

    principal: Principal
    accounts: Mapping[str, Account]
    using: frozenset[str]
    limits: Limits
    session_state: str
    call_id: str
    method: str
    capability: str
    created_ids: MutableMapping[str, str]

    def created_id(self, creation_id: str) -> str | None:
        """The id the object created as ``creation_id`` got earlier in this request."""
        return self.created_ids.get(creation_id)

    def record_created(self, creation_id: str, object_id: str) -> None:
        self.created_ids[creation_id] = object_id


class Method(Protocol):
    """A JMAP method: its name (``Foo/get``), the capability a request must use to call
    it, and the handler.  The handler raises :class:`~server.jmap.errors.MethodError` for
    a protocol-visible error; anything else is ``serverFail`` (logged)."""

    @property
    def name(self) -> str: ...

    @property
    def capability(self) -> str: ...

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject | Replies: ...


class Registry:
    """Capabilities and the methods that need them."""

    def __init__(self, capabilities: Iterable[Capability] = (),
                 methods: Iterable[Method] = ()) -> None:
        self._capabilities: dict[str, Capability] = {}
        self._methods: dict[str, Method] = {}
        for capability in capabilities:
            self.add_capability(capability)
        for method in methods:
            self.add(method)

    def add_capability(self, capability: Capability) -> None:
        if capability.uri in self._capabilities:
            raise ValueError(f"capability {capability.uri} registered twice")
        self._capabilities[capability.uri] = capability

    def add(self, method: Method) -> None:
        if method.name in self._methods:
            raise ValueError(f"method {method.name} registered twice")
        if method.capability not in self._capabilities:
            raise ValueError(f"method {method.name} needs {method.capability}, which is "
                             "not registered")
        self._methods[method.name] = method

    def method(self, name: str) -> Method | None:
        return self._methods.get(name)

    @property
    def capabilities(self) -> Mapping[str, Capability]:
        return self._capabilities

    @property
    def method_names(self) -> frozenset[str]:
        return frozenset(self._methods)
