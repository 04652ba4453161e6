"""SearchSnippet/get (RFC 8621 section 5): where the terms of an Email/query filter
(its ``text``, ``subject`` and ``body`` conditions outside any NOT) match an email's
subject and body, HTML-escaped and marked up with ``<mark>``."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from server.blobs import BlobStore
from server.blobs.base import BlobError
from server.mime import MessageSummary

from .args import account_arg, check_known, string_list_arg
from .email import check_condition
from .email_get import BlobReader, get_records, load_summary
from .email_text import read_message_text
from .errors import MethodError, invalid_arguments
from .json import JsonObject, JsonValue
from .mail import MAIL, MailStore
from .methods import CallContext
from .query import Filter, FilterCondition, FilterOperator, filter_arg

MAX_PREVIEW = 255  # octets (section 5)
_CONTEXT = 40  # characters of body text shown before the first match
_WS = re.compile(r"\s+")


def search_terms(tree: Filter | None) -> list[str]:
    """The words the filter looks for in subjects and bodies (not those under NOT)."""
    if tree is None:
        return []
    if isinstance(tree, FilterCondition):
        out: list[str] = []
        for name in ("text", "subject", "body"):
            value = tree.condition.get(name)
            if isinstance(value, str):
                out.extend(w.strip('"') for w in value.split() if w.strip('"'))
        return out
    assert isinstance(tree, FilterOperator)
    if tree.operator == "NOT":
        return []
    return [t for sub in tree.conditions for t in search_terms(sub)]


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    alternatives = sorted(set(terms), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in alternatives), re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with &, < and > as entities and each match in ``<mark></mark>``."""
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        out.append(f"<mark>{html.escape(m.group(), quote=False)}</mark>")
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def excerpt(body: str, pattern: re.Pattern[str], limit: int = MAX_PREVIEW) -> str | None:
    """The part of ``body`` around its first match, marked up, at most ``limit`` UTF-8
    octets; None without a match."""
    text = _WS.sub(" ", body).strip()
    first = pattern.search(text)
    if first is None:
        return None
    start = max(0, first.start() - _CONTEXT)
    if start:
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if 0 <= space < first.start() else start
    length = limit
    while length > 0:
        out = highlight(text[start:start + length], pattern)
        if len(out.encode("utf-8")) <= limit:
            return out
        length -= max(1, (len(out.encode("utf-8")) - limit) // 2)
    return ""


class SearchSnippetGet:
    name = "SearchSnippet/get"
    capability = MAIL

    def __init__(self, store: MailStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    async def call(self, ctx: CallContext, args: JsonObject) -> JsonObject:
        check_known(args, ("accountId", "filter", "emailIds"))
        account = account_arg(ctx, args)
        tree = filter_arg(args, check_condition)
        ids = string_list_arg(args, "emailIds")
        if ids is None:
            raise invalid_arguments("'emailIds' is required")
        cap = ctx.limits.max_objects_in_get
        if len(ids) > cap:
            raise MethodError("requestTooLarge", f"{len(ids)} emailIds; at most {cap}")
        pattern = _pattern(search_terms(tree))
        _, found = await self.store.run(account.id, get_records, ids, True)
        snippets: list[JsonValue] = []
        for email_id in dict.fromkeys(ids):
            if email_id in found:
                email, raw = found[email_id]
                snippets.append(await self._snippet(email_id, email.blob_id,
                                                    load_summary(raw), pattern))
        missing: list[JsonValue] = [i for i in dict.fromkeys(ids) if i not in found]
        return {"accountId": account.id, "list": snippets, "notFound": missing or None}

    async def _snippet(self, email_id: str, blob_id: str, summary: MessageSummary | None,
                       pattern: re.Pattern[str] | None) -> JsonObject:
        out: JsonObject = {"emailId": email_id, "subject": None, "preview": None}
        if pattern is None or summary is None:
            return out
        subject = summary.envelope.decoded_subject or ""
        if pattern.search(subject):
            out["subject"] = highlight(subject, pattern)
        try:
            text = await read_message_text(summary, BlobReader(self.blobs, blob_id))
        except BlobError:
            return out
        out["preview"] = excerpt(text.body, pattern)
        return out
