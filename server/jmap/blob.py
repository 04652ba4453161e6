"""Blobs as JMAP methods: Blob/copy (RFC 8620 section 6.3), and the blob capability of
RFC 9404: Blob/upload, Blob/get, Blob/lookup.  Any blob id the account may download
works in them, a body part's (Email/get's ``bodyStructure`` blobIds) included: a part
reads as its download does, decoded (:func:`.download.read_found`).

Which blobs an account may use: those it uploaded (their temporary reference,
``fdb_layers.blobs.uploads``) and those its emails are made of (the mail layer's blob
references): :func:`blob_readable`.  Any other blob id, existing or not, is simply not
found, so one account never learns about another's blobs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable

from fdb_layers.blobs.refs import is_blob_id
from fdb_layers.blobs.uploads import get_upload
from fdb_layers.mail import (StoreUnavailable, Transaction, find_email_of_blob,
                              get_visible_email, list_blob_emails)
from server.blobs import BlobStore
from server.blobs.base import BlobError, BlobNotFound

from .args import (
    account_arg,
    check_known,
    from_account_arg,
    ids_arg,
    int_arg,
    object_arg,
    properties_arg,
    string_list_arg,
)
from .errors import MethodError, SetError, invalid_arguments
from .json import JsonObject, JsonValue
from .mail import MailStore
from .methods import CORE, CallContext, Capability
from .download import Found, find_blob, read_found
from .upload import UPLOAD_TTL, reference_upload

BLOB = "urn:ietf:params:jmap:blob"
TYPE_NAMES = ("Mailbox", "Thread", "Email")  # what Blob/lookup finds (RFC 9404 4.3)
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha": lambda data: hashlib.sha1(data).digest(),
    "sha-256": lambda data: hashlib.sha256(data).digest(),
}
MAX_DATA_SOURCES = 64
GET_PROPERTIES = ("data:asText", "data:asBase64", "data", "size",
                  *(f"digest:{d}" for d in DIGESTS))


def blob_capability(max_size_upload: int) -> Capability:
    """``urn:ietf:params:jmap:blob`` (RFC 9404 section 4.1)."""
    return Capability(BLOB, {}, {
        "maxSizeBlobSet": max_size_upload, "maxDataSources": MAX_DATA_SOURCES,
        "supportedTypeNames": list(TYPE_NAMES),
        "supportedDigestAlgorithms": list(DIGESTS)})


async def blob_readable(tr: Transaction, account_id: str, blob_id: str) -> bool:
    """Whether ``account_id`` may use ``blob_id``: it uploaded it, or has an email of it
    that JMAP shows (not one with ``$deleted`` everywhere, RFC 8621 section 4.1.1)."""
    if not is_blob_id(blob_id):
        return False
    if await get_upload(tr, account_id, blob_id) is not None:
        return True
    return await find_email_of_blob(tr, account_id, blob_id) is not None


async def _readable(tr: Transaction, account_id: str, ids: list[str]) -> list[str]:
    return [i for i in ids if await blob_readable(tr, account_id, i)]


async def readable_blobs(store: MailStore, account_id: str, ids: list[str]) -> set[str]:
    """Those of ``ids`` the account may use (one transaction)."""
    return set(await store.run(account_id, _readable, ids))


async def _found(tr: Transaction, account_id: str, ids: list[str]) -> dict[str, Found]:
    out = {}
    for blob_id in dict.fromkeys(ids):
        found = await find_blob(tr, account_id, blob_id)
        if found is not None:
            out[blob_id] = found
    return out


async def found_blobs(store: MailStore, account_id: str, ids: list[str]) -> dict[str, Found]:
    """Those of ``ids`` the account may read, whole blobs and parts (one transaction)."""
    return await store.run(account_id, _found, ids)


class BlobCopy:
    """Blob/copy (RFC 8620 section 6.3).  Without shared accounts the only target is the
    caller's own account, where a blob it may read is already usable: it is "copied" to
    itself; anything else is ``notFound``."""

    name = "Blob/copy"
    capability = CORE

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("fromAccountId", "accountId", "blobIds"))
        source = from_account_arg(ctx, args)
        target = account_arg(ctx, args, write=True)
        blob_ids = string_list_arg(args, "blobIds")
        if blob_ids is None:
            raise invalid_arguments("'blobIds' is required")
        found = await found_blobs(self.store, source.id, blob_ids)
        copied: JsonObject = {b: b for b in blob_ids if b in found}
        not_copied: JsonObject = {b: SetError("notFound").to_json()
                                  for b in blob_ids if b not in found}
        return {"fromAccountId": source.id, "accountId": target.id,
                "copied": copied or None, "notCopied": not_copied or None}


def _range(args: JsonObject) -> tuple[int, int | None]:
    offset = int_arg(args, "offset", 0, minimum=0)
    length = int_arg(args, "length", minimum=0)
    assert offset is not None
    return offset, length


class BlobGet:
    """Blob/get (RFC 9404 section 4.2): the data as text or base64, the size, digests;
    ``offset``/``length`` select a range (``isTruncated`` when it passes the end)."""

    name = "Blob/get"
    capability = BLOB

    def __init__(self, store: MailStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "ids", "properties", "offset", "length"))
        account = account_arg(ctx, args)
        ids = ids_arg(ctx, args)
        if ids is None:
            raise invalid_arguments("Blob/get needs 'ids'")
        properties = properties_arg(args, GET_PROPERTIES, ("data", "size"))
        offset, length = _range(args)
        found = await found_blobs(self.store, account.id, ids)
        listed: list[JsonValue] = []
        not_found: list[JsonValue] = []
        for blob_id in ids:
            record = await self._one(blob_id, found[blob_id], properties, offset, length) \
                if blob_id in found else None
            if record is None:
                not_found.append(blob_id)
            else:
                listed.append(record)
        return {"accountId": account.id, "list": listed, "notFound": not_found}

    async def _one(self, blob_id: str, found: Found, properties: tuple[str, ...],
                   offset: int, length: int | None) -> JsonObject | None:
        try:
            data, size = await read_found(self.blobs, found, offset, length)
        except BlobNotFound:
            return None
        except (BlobError, OSError) as e:
            raise MethodError("serverUnavailable", "the blob store is unavailable") from e
        out: JsonObject = {"id": blob_id}
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        wants = set(properties)
        if "data:asText" in wants or ("data" in wants and text is not None):
            out["data:asText"] = text
        if "data:asBase64" in wants or ("data" in wants and text is None):
            out["data:asBase64"] = base64.b64encode(data).decode()
        if wants & {"data", "data:asText", "data:asBase64"}:
            out["isEncodingProblem"] = text is None
            out["isTruncated"] = length is not None and offset + length > size \
                or offset > size
        if "size" in wants:
            out["size"] = size
        for name, digest in DIGESTS.items():
            if f"digest:{name}" in wants:
                out[f"digest:{name}"] = base64.b64encode(digest(data)).decode()
        return out


class BlobLookup:
    """Blob/lookup (RFC 9404 section 4.3): for each blob, the ids of the account's
    objects of each asked type that refer to it (an uploaded blob no email uses yet:
    empty lists; a blob the account may not use: ``notFound``)."""

    name = "Blob/lookup"
    capability = BLOB

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "typeNames", "ids"))
        account = account_arg(ctx, args)
        types = string_list_arg(args, "typeNames")
        if types is None:
            raise invalid_arguments("'typeNames' is required")
        unknown = [t for t in types if t not in TYPE_NAMES]
        if unknown:
            raise MethodError("unknownDataType", f"unknown type names: {', '.join(unknown)}")
        ids = ids_arg(ctx, args)
        if ids is None:
            raise invalid_arguments("'ids' is required")
        found = await self.store.run(account.id, _lookup, ids, tuple(types))
        listed: list[JsonValue] = [{"id": i, "matchedIds": found[i]} for i in ids
                                   if i in found]
        return {"accountId": account.id, "list": listed,
                "notFound": [i for i in ids if i not in found]}


async def _lookup(tr: Transaction, account_id: str, ids: list[str],
                  types: tuple[str, ...]) -> dict[str, JsonObject]:
    out: dict[str, JsonObject] = {}
    for blob_id in ids:
        found = await find_blob(tr, account_id, blob_id)
        if found is None:
            continue
        emails = await list_blob_emails(tr, account_id, found.blob_id)
        threads: dict[str, None] = {}
        mailboxes: dict[str, None] = {}
        visible: list[JsonValue] = []
        for email_id in emails:
            email = await get_visible_email(tr, account_id, email_id)
            if email is not None:  # RFC 8621 section 4.1.1: not one with $deleted
                visible.append(email_id)
                threads[email.thread_id] = None
                mailboxes.update(dict.fromkeys(email.mailboxes))
        matched: dict[str, list[JsonValue]] = {
            "Email": visible, "Thread": list(threads), "Mailbox": list(mailboxes)}
        out[blob_id] = {t: matched[t] for t in types}
    return out


# --- Blob/upload (RFC 9404 section 4.1) -----------------------------------------------


class BlobUpload:
    """Blob/upload: a blob made of data sources (text, base64, ranges of blobs the
    account may use), stored and referenced like an HTTP upload."""

    name = "Blob/upload"
    capability = BLOB

    def __init__(self, store: MailStore, blobs: BlobStore, *, max_size: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.blobs, self.max_size, self.clock = store, blobs, max_size, clock

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "create"))
        account = account_arg(ctx, args, write=True)
        create = object_arg(args, "create") or {}
        if len(create) > ctx.limits.max_objects_in_set:
            raise MethodError("requestTooLarge", "too many blobs in one call")
        created: JsonObject = {}
        not_created: JsonObject = {}
        for creation_id, spec in create.items():
            try:
                data, kind = await self._data(ctx, account.id, spec)
                ref = await self.blobs.put(data)
                await reference_upload(self.store.engine, account.id, ref.id, ref.size,
                                       self.clock() + UPLOAD_TTL)
            except SetError as e:
                not_created[creation_id] = e.to_json()
                continue
            except (BlobError, OSError, StoreUnavailable) as e:
                raise MethodError("serverUnavailable", f"the blob could not be stored: {e}"
                                  ) from e
            ctx.record_created(creation_id, ref.id)
            created[creation_id] = {"id": ref.id, "type": kind, "size": ref.size}
        return {"accountId": account.id, "created": created or None,
                "notCreated": not_created or None}

    async def _data(self, ctx: CallContext, account_id: str,
                    spec: JsonValue) -> tuple[bytes, str | None]:
        if not isinstance(spec, dict) or set(spec) - {"data", "type"}:
            raise SetError("invalidProperties", "an upload is {data, type}",
                           properties=("data",))
        kind, sources = spec.get("type"), spec.get("data")
        if kind is not None and not isinstance(kind, str):
            raise SetError("invalidProperties", "type must be a string", properties=("type",))
        if not isinstance(sources, list) or not sources or len(sources) > MAX_DATA_SOURCES:
            raise SetError("invalidProperties",
                           f"data must be a list of 1 to {MAX_DATA_SOURCES} data sources",
                           properties=("data",))
        parts: list[bytes] = []
        size = 0
        for source in sources:
            part = await self._source(ctx, account_id, source)
            size += len(part)
            if size > self.max_size:
                raise SetError("tooLarge", f"larger than {self.max_size} octets")
            parts.append(part)
        return b"".join(parts), kind

    async def _source(self, ctx: CallContext, account_id: str, source: JsonValue) -> bytes:
        bad = SetError("invalidProperties", "a data source is data:asText, data:asBase64 "
                       "or {blobId, offset, length}", properties=("data",))
        if not isinstance(source, dict) or len(source) == 0:
            raise bad
        if set(source) == {"data:asText"} and isinstance(source["data:asText"], str):
            return source["data:asText"].encode()
        if set(source) == {"data:asBase64"} and isinstance(source["data:asBase64"], str):
            try:
                return base64.b64decode(source["data:asBase64"], validate=True)
            except binascii.Error:
                raise bad from None
        if set(source) - {"blobId", "offset", "length"} or \
                not isinstance(source.get("blobId"), str):
            raise bad
        blob_id = str(source["blobId"])
        if blob_id.startswith("#"):
            blob_id = ctx.created_id(blob_id[1:]) or blob_id
        offset, length = source.get("offset", 0), source.get("length")
        if not isinstance(offset, int) or offset < 0 or \
                (length is not None and (not isinstance(length, int) or length < 0)):
            raise bad
        found = await self.store.run(account_id, find_blob, blob_id)
        if found is None:
            raise SetError("blobNotFound", notFound=[blob_id])
        try:
            data, size = await read_found(self.blobs, found, offset, length)
            if offset > size or (length is not None and offset + length > size):
                raise SetError("invalidProperties", "the range passes the end of the blob",
                               properties=("data",))
            return data
        except BlobNotFound:
            raise SetError("blobNotFound", notFound=[blob_id]) from None

