"""Running a Request's method calls in order (RFC 8620 section 3.3): result references
resolved against earlier responses, dispatch through the :class:`Registry`, each error
turned into its ``error`` response, created ids shared across the calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import cache

from prometheus_client import Counter, Histogram

from server.directory.base import Principal

from .errors import MethodError, method_error_for
from .json import JsonObject
from .methods import Account, CallContext, Limits, Method, Registry
from .references import resolve_references
from .request import Invocation, Request, Response

log = logging.getLogger(__name__)

UNKNOWN_METHOD_LABEL = "unknown"

METHOD_CALLS = Counter(
    "fdbmail_jmap_method_calls_total",
    "JMAP method calls by method (registered names; any other is 'unknown') and result "
    "('ok' or the error type).",
    ["method", "result"])
METHOD_DURATION = Histogram(
    "fdbmail_jmap_method_duration_seconds",
    "Time to run one JMAP method call, by method (registered names; any other is "
    "'unknown').",
    ["method"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


async def execute(request: Request, registry: Registry, *, principal: Principal,
                  accounts: Mapping[str, Account], limits: Limits,
                  session_state: str) -> Response:
    """The Response to ``request``: one or more responses per call, in order."""
    created: dict[str, str] = dict(request.created_ids or {})
    using = frozenset(request.using)
    responses: list[Invocation] = []
    for call in request.method_calls:
        method = registry.method(call.name)
        label = call.name if method is not None else UNKNOWN_METHOD_LABEL
        started = time.perf_counter()
        try:
            if method is None or method.capability not in using:
                raise MethodError("unknownMethod", f"unknown method {call.name!r}" if
                                  method is None else
                                  f"{call.name} needs {method.capability} in 'using'")
            args = resolve_references(call.arguments, responses)
            ctx = CallContext(principal, accounts, using, limits, session_state,
                              call.call_id, method.name, method.capability, created)
            replies = await _run(method, ctx, args)
        except Exception as e:  # every error becomes this call's error response
            error, ours = method_error_for(e)
            if ours:
                log.exception("JMAP method %s failed", label,
                              extra={"method": label, "call_id": call.call_id[:64]})
            replies = (("error", error.arguments()),)
            result = error.type
        else:
            result = "ok"
        ok, duration = _metrics(label)
        (ok if result == "ok" else METHOD_CALLS.labels(label, result)).inc()
        duration.observe(time.perf_counter() - started)
        responses.extend(Invocation(name, args, call.call_id) for name, args in replies)
    return Response(tuple(responses), session_state,
                    created if request.created_ids is not None else None)


@cache  # a bounded set: the registered method names and UNKNOWN_METHOD_LABEL
def _metrics(label: str) -> tuple[Counter, Histogram]:
    """The method's 'ok' counter and its duration histogram (labelled children looked up
    once, not on every call)."""
    return METHOD_CALLS.labels(label, "ok"), METHOD_DURATION.labels(label)


async def _run(method: Method, ctx: CallContext, args: JsonObject
               ) -> tuple[tuple[str, JsonObject], ...]:
    result = await method.call(ctx, args)
    if isinstance(result, dict):
        return ((method.name, result),)
    return result
