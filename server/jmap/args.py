"""Argument helpers shared by the standard methods (RFC 8620 section 5): each reads one
argument or checks one rule and raises the method error the RFC names.  Mail, submission
and the other method packages call them; none re-implements a check."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from .errors import MethodError, SetError, invalid_arguments
from .json import JsonObject, JsonValue
from .methods import Account, CallContext

MAX_UNSIGNED = 2**53 - 1  # RFC 8620 section 1.3: UnsignedInt is 0 <= x <= 2^53-1

_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")  # RFC 8620 section 1.2


def is_id(value: str) -> bool:
    """``value`` has the syntax of an Id (RFC 8620 section 1.2)."""
    return _ID.fullmatch(value) is not None


def check_known(args: JsonObject, known: Collection[str]) -> None:
    """``invalidArguments`` for an argument the method does not define."""
    unknown = sorted(k for k in args if k not in known)
    if unknown:
        raise invalid_arguments(f"unknown argument(s): {', '.join(unknown)}")


def string_arg(args: JsonObject, name: str, *, required: bool = False,
               default: str | None = None) -> str | None:
    value = args.get(name)
    if value is None:
        if required:
            raise invalid_arguments(f"{name!r} is required")
        return default
    if not isinstance(value, str):
        raise invalid_arguments(f"{name!r} must be a string")
    return value


def bool_arg(args: JsonObject, name: str, default: bool = False) -> bool:
    value = args.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_arguments(f"{name!r} must be true or false")
    return value


def int_arg(args: JsonObject, name: str, default: int | None = None, *,
            minimum: int = -MAX_UNSIGNED, maximum: int = MAX_UNSIGNED) -> int | None:
    """An Int (or UnsignedInt with ``minimum=0``) argument; null or absent is
    ``default``."""
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) \
            or not minimum <= value <= maximum:
        raise invalid_arguments(f"{name!r} must be an integer from {minimum} to {maximum}")
    return value


def string_list_arg(args: JsonObject, name: str) -> list[str] | None:
    """A ``String[]|null`` argument."""
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_arguments(f"{name!r} must be an array of strings or null")
    return [v for v in value if isinstance(v, str)]


def object_arg(args: JsonObject, name: str) -> JsonObject | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_arguments(f"{name!r} must be an object or null")
    return value


# -- accounts -------------------------------------------------------------------------


def account_arg(ctx: CallContext, args: JsonObject, *, write: bool = False,
                name: str = "accountId") -> Account:
    """The account the call names (RFC 8620 section 3.6.2): ``accountNotFound`` for an id
    that is not one of the caller's accounts (another user's account is exactly as absent
    as one that does not exist), ``accountNotSupportedByMethod`` when the account lacks the
    method's capability, ``accountReadOnly`` for a write to a read-only account."""
    account_id = string_arg(args, name, required=True)
    assert account_id is not None
    account = ctx.accounts.get(account_id)
    if account is None:
        raise MethodError("accountNotFound")
    if ctx.capability not in account.capabilities:
        raise MethodError("accountNotSupportedByMethod",
                          f"{ctx.method} is not available for this account")
    if write and account.is_read_only:
        raise MethodError("accountReadOnly")
    return account


def from_account_arg(ctx: CallContext, args: JsonObject) -> Account:
    """/copy's ``fromAccountId`` (section 5.4): the account errors of
    :func:`account_arg` under their ``fromAccount`` names."""
    try:
        return account_arg(ctx, args, name="fromAccountId")
    except MethodError as e:
        renamed = {"accountNotFound": "fromAccountNotFound",
                   "accountNotSupportedByMethod": "fromAccountNotSupportedByMethod"}
        if e.type in renamed:
            raise MethodError(renamed[e.type], e.description) from None
        raise


# -- /get (section 5.1) ---------------------------------------------------------------


def ids_arg(ctx: CallContext, args: JsonObject, *, limit: int | None = None,
            name: str = "ids") -> list[str] | None:
    """``ids: Id[]|null``: None means "all" (the method then applies its own cap).

    ``#creationId`` entries become the id created earlier in the request (section 5.3);
    an unknown creation id stays as it is, so /get reports it in ``notFound``.  More ids
    than ``limit`` (default maxObjectsInGet) is ``requestTooLarge``."""
    ids = string_list_arg(args, name)
    if ids is None:
        return None
    cap = ctx.limits.max_objects_in_get if limit is None else limit
    if len(ids) > cap:
        raise MethodError("requestTooLarge", f"{len(ids)} ids; at most {cap} per call")
    return [resolve_creation_id(ctx, i) for i in dict.fromkeys(ids)]


def check_get_all(ctx: CallContext, count: int) -> None:
    """``ids: null`` asks for every object: ``requestTooLarge`` when there are more than
    maxObjectsInGet of them (section 5.1)."""
    cap = ctx.limits.max_objects_in_get
    if count > cap:
        raise MethodError("requestTooLarge", f"{count} objects; give ids (at most {cap})")


def resolve_creation_id(ctx: CallContext, value: str) -> str:
    """``#creationId`` -> the id created for it in this request (or ``value`` unchanged)."""
    if value.startswith("#"):
        created = ctx.created_id(value[1:])
        if created is not None:
            return created
    return value


def properties_arg(args: JsonObject, supported: Collection[str],
                   default: Sequence[str], *, name: str = "properties") -> tuple[str, ...]:
    """``properties: String[]|null``: null is ``default``; a name not in ``supported`` is
    ``invalidArguments``; ``id`` is always returned (section 5.1)."""
    wanted = string_list_arg(args, name)
    if wanted is None:
        wanted = list(default)
    unknown = sorted({p for p in wanted if p not in supported})
    if unknown:
        raise invalid_arguments(f"unknown properties: {', '.join(unknown)}")
    return tuple(dict.fromkeys(["id", *wanted])) if "id" in supported \
        else tuple(dict.fromkeys(wanted))


def pick(record: JsonObject, properties: Iterable[str]) -> JsonObject:
    """``record`` with only ``properties`` (those it has)."""
    return {p: record[p] for p in properties if p in record}


def check_state(args: JsonObject, current: str, *, name: str = "ifInState") -> None:
    """``stateMismatch`` when the call gives ``ifInState`` and it is not ``current``
    (sections 5.3 and 5.4)."""
    expected = string_arg(args, name)
    if expected is not None and expected != current:
        raise MethodError("stateMismatch", f"the state is {current!r}, not {expected!r}")


# -- /changes (section 5.2) and /queryChanges (section 5.6) --------------------------


def max_changes_arg(args: JsonObject) -> int | None:
    """``maxChanges: UnsignedInt|null``; 0 is ``invalidArguments`` (section 5.2: it MUST
    be a positive integer greater than 0 if given)."""
    value = int_arg(args, "maxChanges", minimum=0)
    if value == 0:
        raise invalid_arguments("'maxChanges' must be greater than 0")
    return value


def cannot_calculate(since: str) -> MethodError:
    """The error for a ``sinceState``/``sinceQueryState`` the server cannot compute
    changes from (unknown, malformed or expired): the client must resync."""
    return MethodError("cannotCalculateChanges",
                       f"cannot calculate changes since state {since!r}")


def check_too_many(count: int, max_changes: int | None) -> None:
    """/queryChanges (section 5.6): ``tooManyChanges`` when more than ``maxChanges``
    changes would be returned."""
    if max_changes is not None and count > max_changes:
        raise MethodError("tooManyChanges",
                          f"{count} changes, more than maxChanges {max_changes}")


# -- /set (section 5.3) ---------------------------------------------------------------


def check_set_size(ctx: CallContext, args: JsonObject) -> None:
    """``requestTooLarge`` when create + update + destroy hold more than
    maxObjectsInSet objects."""
    total = 0
    for name in ("create", "update", "destroy"):
        value: JsonValue = args.get(name)
        if isinstance(value, dict | list):
            total += len(value)
    cap = ctx.limits.max_objects_in_set
    if total > cap:
        raise MethodError("requestTooLarge", f"{total} objects; at most {cap} per call")


def split_updates(ctx: CallContext, update: JsonObject,
                  destroy: Iterable[str]) -> tuple[JsonObject, JsonObject]:
    """``update`` in two: the entries to apply now, and those of objects the same /set
    also destroys (``#creation`` ids resolved), to settle after the destroys with
    :func:`apply_updates`'s ``destroyed`` (RFC 8620 section 5.3, ``willDestroy``)."""
    doomed = frozenset(resolve_creation_id(ctx, i) for i in destroy)
    now: JsonObject = {}
    later: JsonObject = {}
    for raw_id, patch in update.items():
        (later if resolve_creation_id(ctx, raw_id) in doomed else now)[raw_id] = patch
    return now, later


def will_destroy_error() -> SetError:
    """RFC 8620 section 5.3: "willDestroy: The client requested an object be both
    updated and destroyed in the same /set request, and the server has decided to
    therefore ignore the update." """
    return SetError("willDestroy", "the object was destroyed by the same call: the "
                    "update is ignored")


async def apply_updates(ctx: CallContext, update: JsonObject,
                        apply: Callable[[str, JsonObject], Awaitable[JsonObject | None]],
                        *,
                        destroyed: Collection[JsonValue] = ()
                        ) -> tuple[JsonObject, JsonObject]:
    """The ``update`` part of a /set (RFC 8620 section 5.3): ``apply(id, patch)`` for each
    entry (``#creation`` ids resolved), its SetError recorded per id.  An id in
    ``destroyed`` (the later half of :func:`split_updates`, after the destroys) is
    ``willDestroy`` and not applied; one whose destroy failed is applied, as if the
    destroy had not been asked for (so notFound stays notFound, and a refused destroy
    loses the client nothing).  Returns ``(updated, notUpdated)``: ``updated`` maps the
    record's id (the one created for a ``#creation`` key: "a map of the id to ...") to
    what ``apply`` returned (the properties the server set otherwise than asked, or
    None), ``notUpdated`` the key as given (an unknown creation id has no other)."""
    updated: JsonObject = {}
    not_updated: JsonObject = {}
    for raw_id, patch in update.items():
        object_id = resolve_creation_id(ctx, raw_id)
        try:
            if object_id in destroyed:
                raise will_destroy_error()
            if not isinstance(patch, dict):
                raise SetError("invalidPatch", "a patch must be an object")
            changed = await apply(object_id, patch)
        except SetError as e:
            not_updated[raw_id] = e.to_json()
            continue
        updated[object_id] = changed
    return updated, not_updated


def set_response(out: JsonObject, created: JsonObject, updated: JsonObject,
                 destroyed: list[JsonValue], not_created: JsonObject,
                 not_updated: JsonObject, not_destroyed: JsonObject) -> JsonObject:
    """``out`` (accountId, oldState, newState) with the six result maps of a /set
    response, each null when empty (RFC 8620 section 5.3)."""
    for key, value in (("created", created), ("updated", updated),
                       ("destroyed", destroyed), ("notCreated", not_created),
                       ("notUpdated", not_updated), ("notDestroyed", not_destroyed)):
        out[key] = value or None
    return out
