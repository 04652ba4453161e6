"""Email/set update: the immutable properties read from the message's blob that an
update gives back unchanged (RFC 8620 section 5.3: a property is invalid when
"immutable and different to the current server value", so a client may send back what
Email/get gave it).

``headers``, ``header:{name}[:{form}][:all]`` and the body properties (bodyStructure,
textBody, htmlBody, attachments, bodyValues) are rendered as Email/get renders them and
compared with what the update gives; those that differ are ``invalidProperties``
naming them.  Email/get shapes these with its arguments (bodyProperties,
fetch*BodyValues, maxBodyValueBytes), which an update does not repeat, so:

* an EmailBodyPart is unchanged when each property it gives equals the server's (the
  parts rendered with every body property any given part names), and the lists and
  subParts have the server's length and order;
* an EmailBodyValue is unchanged when it is the server's whole value, or, with
  ``isTruncated`` true, a beginning of it (section 4.2: maxBodyValueBytes truncates).

The blob is read outside any transaction (a message never changes: a later transaction
finding the email gone answers notFound)."""

from __future__ import annotations

from collections.abc import Iterable

from fdb_layers.mail import Transaction, get_summary, get_visible_email
from server.blobs import BlobStore
from server.blobs.base import BlobError

from .email_get import BODY_PROPERTIES, DEFAULT_PROPERTIES, BlobReader, load_summary, \
    render_email, view_arg
from .errors import MethodError, SetError
from .json import JsonObject, JsonValue
from .mail import MailStore

_PARTS = ("bodyStructure", "textBody", "htmlBody", "attachments")


def read_from_blob(key: str) -> bool:
    """Whether the update key names (or patches into) a property of the blob."""
    prop = key.partition("/")[0]
    return prop == "headers" or prop in BODY_PROPERTIES or prop.startswith("header:")


async def without_unchanged_body(store: MailStore, blobs: BlobStore, account_id: str,
                                 email_id: str, patch: JsonObject) -> JsonObject:
    """``patch`` without the blob's properties it gives unchanged; SetError
    invalidProperties naming those it changes (a patch path into one included),
    notFound if the email is not visible."""
    keys = [k for k in patch if read_from_blob(k)]
    if not keys:
        return patch
    changed = [k for k in keys if "/" in k or not _gettable(k)]
    wanted = [k for k in keys if k not in changed]
    if wanted:
        current = await _render(store, blobs, account_id, email_id, wanted,
                                _part_keys(patch[k] for k in wanted if k in _PARTS))
        changed += [k for k in wanted if not _same(k, patch[k], current.get(k))]
    if changed:
        raise SetError("invalidProperties", "only keywords and mailboxIds can change",
                       properties=tuple(dict.fromkeys(k.partition("/")[0]
                                                      for k in changed)))
    return {k: v for k, v in patch.items() if k not in keys}


def _gettable(key: str, body_property: bool = False) -> bool:
    """Whether Email/get knows the property (or the body property): a header form it
    forbids, say, is a value no email has."""
    try:
        view_arg({"properties": [] if body_property else [key],
                  "bodyProperties": [key] if body_property else None},
                 DEFAULT_PROPERTIES, with_id=False)
    except MethodError:
        return False
    return True


def _part_keys(values: Iterable[JsonValue]) -> list[str]:
    """Every body property named by a part of the given part lists/structures that
    Email/get knows (others make the part differ)."""
    found: dict[str, None] = {}

    def walk(value: JsonValue) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if key not in found and _gettable(key, body_property=True):
                    found[key] = None
                if key == "subParts":
                    walk(inner)
    for value in values:
        walk(value)
    return list(found)


async def _read(tr: Transaction, account_id: str, email_id: str
                ) -> tuple[str, bytes | None]:
    email = await get_visible_email(tr, account_id, email_id)
    if email is None or not email.mailboxes:
        raise SetError("notFound")
    return email.blob_id, await get_summary(tr, account_id, email_id)


async def _render(store: MailStore, blobs: BlobStore, account_id: str, email_id: str,
                  properties: list[str], part_keys: list[str]) -> JsonObject:
    blob_id, raw = await store.run(account_id, _read, email_id)
    summary = load_summary(raw)
    if summary is None:  # stored without one: Email/get shows no blob property
        return {}
    args: JsonObject = {"properties": list[JsonValue](properties),
                        "bodyProperties": list[JsonValue](part_keys) or None,
                        "fetchAllBodyValues": True}
    view = view_arg(args, DEFAULT_PROPERTIES, with_id=False)
    try:
        return await render_email(summary, blob_id, BlobReader(blobs, blob_id), view)
    except BlobError as e:
        raise MethodError("serverFail", f"the message is unreadable: {e}") from e


def _same(key: str, given: JsonValue, current: JsonValue) -> bool:
    if key in _PARTS:
        return _same_parts(given, current)
    if key == "bodyValues":
        return _same_values(given, current)
    return given == current


def _same_parts(given: JsonValue, current: JsonValue) -> bool:
    if isinstance(given, list) and isinstance(current, list):
        return len(given) == len(current) and all(
            _same_parts(g, c) for g, c in zip(given, current, strict=True))
    if isinstance(given, dict) and isinstance(current, dict):
        return all(k in current and (_same_parts(v, current[k]) if k == "subParts"
                                     else v == current[k]) for k, v in given.items())
    return given == current


def _same_values(given: JsonValue, current: JsonValue) -> bool:
    if not isinstance(given, dict) or not isinstance(current, dict):
        return False
    for part_id, value in given.items():
        whole = current.get(part_id)
        if not isinstance(value, dict) or not isinstance(whole, dict) or \
                set(value) - {"value", "isEncodingProblem", "isTruncated"}:
            return False
        text, full = value.get("value"), whole.get("value")
        if not isinstance(text, str) or not isinstance(full, str) or \
                value.get("isEncodingProblem", False) != whole.get("isEncodingProblem"):
            return False
        if not (text == full if not value.get("isTruncated") else full.startswith(text)):
            return False
    return True
