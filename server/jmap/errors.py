"""JMAP's errors, in one place (RFC 8620 sections 3.6.1 and 3.6.2).

Two kinds reach the client:

- a *request-level* problem (:class:`RequestError`): the whole request is refused with an
  ``application/problem+json`` body (RFC 7807) and an HTTP status; no method ran;
- a *method-level* error (:class:`MethodError`): one call's response becomes
  ``["error", {"type": ...}, callId]`` and the next call runs.

Each is an exception that knows its reply; so is :class:`SetError`, one object's failure
inside a /set.  :data:`PROBLEM_STATUS`, :data:`METHOD_ERRORS` and :data:`SET_ERRORS` are the
tables of every type we send; :func:`method_error_for` is the one table that maps
an exception from elsewhere (directory, store, a bug) to the method error the client sees.
"""

from __future__ import annotations

from collections.abc import Mapping

from server.directory.base import DirectoryError

from .json import JsonObject, JsonValue

PROBLEM_PREFIX = "urn:ietf:params:jmap:error:"

# RFC 8620 section 3.6.1: request-level errors and the HTTP status we answer them with.
PROBLEM_STATUS: Mapping[str, int] = {
    "unknownCapability": 400,
    "notJSON": 400,
    "notRequest": 400,
    "limit": 400,
}

# RFC 8620 section 3.6.2 (any method) and the standard methods' errors (sections 5.1-5.6).
METHOD_ERRORS: frozenset[str] = frozenset({
    # 3.6.2
    "serverUnavailable", "serverFail", "serverPartialFail", "unknownMethod",
    "invalidArguments", "invalidResultReference", "forbidden", "accountNotFound",
    "accountNotSupportedByMethod", "accountReadOnly",
    # 5.1 /get, 5.3 /set, 5.4 /copy
    "requestTooLarge", "stateMismatch",
    # 5.2 /changes, 5.6 /queryChanges
    "cannotCalculateChanges", "tooManyChanges",
    # 5.5 /query
    "anchorNotFound", "unsupportedSort", "unsupportedFilter",
    # 5.4 /copy
    "fromAccountNotFound", "fromAccountNotSupportedByMethod",
    # RFC 9404 4.3 Blob/lookup
    "unknownDataType",
})


# RFC 8620 section 5.3 (and 5.4's alreadyExists), RFC 8621's additions: the SetError types
# a /set or /copy reports per object in notCreated / notUpdated / notDestroyed.
SET_ERRORS: frozenset[str] = frozenset({
    # RFC 8620 5.3, 5.4
    "forbidden", "overQuota", "tooLarge", "rateLimit", "notFound", "invalidPatch",
    "willDestroy", "invalidProperties", "singleton", "alreadyExists",
    # RFC 8621 2.3, 4.6, 4.8, 7.5
    "mailboxHasChild", "mailboxHasEmail", "blobNotFound", "tooManyKeywords",
    "tooManyMailboxes", "invalidEmail", "tooManyRecipients", "noRecipients",
    "invalidRecipients", "forbiddenMailFrom", "forbiddenFrom", "forbiddenToSend",
    "cannotUnsend",
})


class RequestError(Exception):
    """A request-level problem: ``type`` is the short name (``notJSON``), ``limit`` the
    name of the limit a ``limit`` problem hit."""

    def __init__(self, type: str, detail: str, *, limit: str | None = None) -> None:
        if type not in PROBLEM_STATUS:
            raise ValueError(f"not a JMAP request-level error: {type!r}")
        if (type == "limit") != (limit is not None):
            raise ValueError("a limit problem names its limit, and only it does")
        super().__init__(detail)
        self.type = type
        self.detail = detail
        self.limit = limit

    @property
    def status(self) -> int:
        return PROBLEM_STATUS[self.type]

    def problem(self) -> JsonObject:
        """The RFC 7807 body."""
        body: JsonObject = {"type": PROBLEM_PREFIX + self.type, "status": self.status,
                            "detail": self.detail}
        if self.limit is not None:
            body["limit"] = self.limit
        return body


class MethodError(Exception):
    """One method call's error (RFC 8620 section 3.6.2): ``type`` and, optionally, a
    ``description`` and extra properties the RFC defines for the type (``properties`` for
    invalidArguments of a known argument)."""

    def __init__(self, type: str, description: str | None = None,
                 **extra: JsonValue) -> None:
        if type not in METHOD_ERRORS:
            raise ValueError(f"not a JMAP method-level error: {type!r}")
        super().__init__(description or type)
        self.type = type
        self.description = description
        self.extra = extra

    def arguments(self) -> JsonObject:
        out: JsonObject = {"type": self.type}
        if self.description is not None:
            out["description"] = self.description
        out.update(self.extra)
        return out


class SetError(Exception):
    """One object's failure in a /set or /copy (RFC 8620 section 5.3): the call goes on,
    the object is reported in notCreated / notUpdated / notDestroyed.  ``properties``
    names the offending properties of an ``invalidProperties`` error."""

    def __init__(self, type: str, description: str | None = None, *,
                 properties: tuple[str, ...] = (), **extra: JsonValue) -> None:
        if type not in SET_ERRORS:
            raise ValueError(f"not a JMAP SetError type: {type!r}")
        super().__init__(description or type)
        self.type, self.description = type, description
        self.properties, self.extra = properties, extra

    def to_json(self) -> JsonObject:
        out: JsonObject = {"type": self.type}
        if self.description is not None:
            out["description"] = self.description
        if self.properties:
            out["properties"] = list(self.properties)
        out.update(self.extra)
        return out


def invalid_arguments(description: str) -> MethodError:
    return MethodError("invalidArguments", description)


def method_error_for(error: BaseException) -> tuple[MethodError, bool]:
    """The method error a client sees for an exception a method raised, and whether it is
    our fault (to be logged with its traceback).  A directory that cannot answer is a
    temporary ``serverUnavailable``; anything else unexpected is ``serverFail``."""
    if isinstance(error, MethodError):
        return error, False
    if isinstance(error, DirectoryError):
        return MethodError("serverUnavailable", "the directory is unavailable, "
                           "try again later"), False
    return MethodError("serverFail", "internal error (logged)"), True


# Refusals before any JMAP processing (authentication, transport), as HTTP statuses with
# an RFC 7807 body whose type is about:blank.  The reason is also the metrics label.
REFUSAL_STATUS: Mapping[str, int] = {
    "unauthorized": 401,       # no or bad credentials: WWW-Authenticate says how
    "tlsRequired": 403,        # credentials over plain HTTP, refused by configuration
    "rateLimited": 429,        # too many failed logins from this client
    "unavailable": 503,        # the directory could not answer: try again, not a bad login
    "badRequest": 400,         # malformed parameters of a non-API endpoint (push)
    "tooManyConnections": 429,  # an account's push connections are all in use
}


class Refused(Exception):
    """The HTTP request is refused before JMAP sees it: ``reason`` is a key of
    :data:`REFUSAL_STATUS`; ``headers`` go on the response."""

    def __init__(self, reason: str, detail: str,
                 headers: Mapping[str, str] | None = None) -> None:
        if reason not in REFUSAL_STATUS:
            raise ValueError(f"not a refusal: {reason!r}")
        super().__init__(detail)
        self.reason, self.detail = reason, detail
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return REFUSAL_STATUS[self.reason]

    def problem(self) -> JsonObject:
        return {"type": "about:blank", "status": self.status, "detail": self.detail}
