"""Email/parse (RFC 8621 section 4.10): blobs the account can read (a message, or a
message/rfc822 part of one, see :mod:`.download`) parsed into Email objects.

The properties of an email in the store that a blob does not have are null: id,
threadId, mailboxIds, keywords, receivedAt.  The parts of a parsed blob have blob ids
``<blobId>_<part id>``; for an attached message these are the part numbers of the
enclosing message (IMAP numbers the parts of message part 2 as 2.1, 2.2...), so they
download like any part."""

from __future__ import annotations

from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.mime import header_fields, parse_message, part_bytes

from .args import account_arg, check_known, string_list_arg
from .download import Found, find_blob
from .email_body import BytesReader
from .email_get import GET_ARGUMENTS, render_email, view_arg
from .errors import MethodError
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore
from .methods import CallContext

# Section 4.10: the properties when the client gives none.
DEFAULT_PROPERTIES = ("messageId", "inReplyTo", "references", "sender", "from", "to", "cc",
                      "bcc", "replyTo", "subject", "sentAt", "hasAttachment", "preview",
                      "bodyValues", "textBody", "htmlBody", "attachments")
MAX_PARSE = 16 * 1024 * 1024  # octets of one blob parsed in memory
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


def _is_message(found: Found | None, raw: bytes) -> bool:
    """Whether the blob can be an Email: a message or an attached message, with a
    header; anything else is notParsable."""
    return found is not None and found.type in _MESSAGE_TYPES and bool(raw) \
        and bool(header_fields(raw))


class EmailParse:
    name = "Email/parse"
    capability = MAIL

    def __init__(self, store: MailStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, tuple(a if a != "ids" else "blobIds" for a in GET_ARGUMENTS))
        account = account_arg(ctx, args)
        blob_ids = string_list_arg(args, "blobIds")
        if blob_ids is None:
            raise MethodError("invalidArguments", "'blobIds' is required")
        cap = ctx.limits.max_objects_in_get
        if len(blob_ids) > cap:
            raise MethodError("requestTooLarge", f"{len(blob_ids)} blobIds; at most {cap}")
        view = view_arg(args, DEFAULT_PROPERTIES, with_id=False)
        parsed: JsonObject = {}
        not_parsable: list[JsonValue] = []
        not_found: list[JsonValue] = []
        for blob_id in dict.fromkeys(blob_ids):
            found = await self.store.run(account.id, find_blob, blob_id)
            raw = await self._read(found) if found is not None else None
            if raw is None:
                not_found.append(blob_id)
            elif not _is_message(found, raw):
                not_parsable.append(blob_id)
            else:
                email = await render_email(parse_message(raw), blob_id, BytesReader(raw),
                                           view)
                email.update(id=None, blobId=blob_id, threadId=None, mailboxIds=None,
                             keywords=None, size=len(raw), receivedAt=None)
                parsed[blob_id] = {p: email.get(p) for p in view.properties}
        return {"accountId": account.id, "parsed": parsed or None,
                "notParsable": not_parsable or None, "notFound": not_found or None}

    async def _read(self, found: Found) -> bytes | None:
        try:
            if found.part is None:
                if await self.blobs.size(found.blob_id) > MAX_PARSE:
                    return b""
                return await self.blobs.get(found.blob_id)
            p = found.part
            if p.size > MAX_PARSE:
                return b""
            return part_bytes(await self.blobs.read_range(found.blob_id, p.body_start,
                                                          p.body_end), p)
        except BlobError:
            return None
