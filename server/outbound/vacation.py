"""The vacation auto-reply (JMAP VacationResponse, RFC 8621 section 8; the rules of
RFC 3834 and RFC 5230): a delivery hook (``server.delivery.DeliveredHook``) that
answers incoming mail for an account whose vacation response is on.

A message is answered only if all of these hold (RFC 3834 sections 2 and 3.1,
RFC 5230 sections 4.5 and 4.6):

* the response is enabled and now is within [fromDate, toDate);
* the message has a reverse-path (its Return-Path is not ``<>``), and the sender is
  not the account itself nor a typical list or daemon address (``owner-*``,
  ``*-request``, ``mailer-daemon`` ...);
* it is not automatic: no ``Auto-Submitted`` other than ``no``, no ``List-*`` field,
  no ``Precedence: bulk|list|junk``;
* one of the account's addresses is in its To or Cc (mail reaching the account as a
  Bcc or through a list is not answered);
* the sender was not answered within the period (7 days by default), which
  ``fdb_layers.vacation.claim_reply`` records in the store before anything is sent.

The reply has ``Auto-Submitted: auto-replied``, In-Reply-To and References, the
response's subject or "Re: " and the original subject, and a null reverse-path (RFC
3834 section 3.3); it goes to local senders through delivery and to remote ones
through the outbound queue (:mod:`server.delivery.submit`), named by the delivery it answers, so it
is sent once however often that delivery runs."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32
from email.utils import format_datetime, getaddresses, make_msgid
from datetime import UTC, datetime

from prometheus_client import Counter

from fdb_layers.mail import Engine, transact
from fdb_layers.vacation import Vacation, claim_reply, get_vacation
from server.delivery import DeliveryRequest
from server.delivery.submit import (
    DeliveryPipeline,
    Outbox,
    SendFailed,
    received,
    send,
)
from server.delivery.routing import route_recipients
from server.directory.base import Directory

log = logging.getLogger(__name__)

REPLIES = Counter(
    "fdbmail_vacation_replies_total",
    "Incoming messages for an account with an active vacation response, by result "
    "(sent, skipped_automatic, skipped_list, skipped_no_sender, skipped_not_addressed, "
    "skipped_recently, failed).",
    ("result",),
)

DEFAULT_PERIOD = 7 * 86400.0  # RFC 5230 section 4.1: :days 7
_DAEMONS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "noreply",
            "no-reply")


def _header(headers: Message, name: str) -> str:
    value = headers.get(name)
    return "" if value is None else str(value).strip()


def return_path(raw: bytes) -> str | None:
    """The reverse-path our SMTP front put first: "" for ``<>``, None if absent."""
    first = raw.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    if not first.lower().startswith(b"return-path:"):
        return None
    value = first.split(b":", 1)[1].decode("utf-8", "replace").strip()
    return value.strip("<>").strip()


def automatic(headers: Message) -> str | None:
    """Why a message must not be answered (a metric label), or None."""
    auto = _header(headers, "Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return "skipped_automatic"
    keys = [str(k).lower() for k in headers.keys()]
    if any(k.startswith("list-") for k in keys):
        return "skipped_list"
    if _header(headers, "Precedence").lower() in ("bulk", "list", "junk"):
        return "skipped_list"
    return None


def _daemon(sender: str) -> bool:
    local = sender.rpartition("@")[0].lower()
    return local in _DAEMONS or local.startswith("owner-") or local.endswith("-request") \
        or local.endswith("-owner")


def reply_subject(vacation: Vacation, original: str) -> str:
    if vacation.subject:
        return vacation.subject
    original = " ".join(original.split())
    if original.lower().startswith("re:"):
        return original
    return f"Re: {original}" if original else "Auto: away"


def compose_reply(vacation: Vacation, *, from_address: str, to: str,
                  headers: Message, hostname: str, when: datetime) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_address
    msg["To"] = to
    msg["Subject"] = reply_subject(vacation, _header(headers, "Subject"))
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=hostname)
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834 section 5
    original_id = _header(headers, "Message-ID")
    if original_id:
        msg["In-Reply-To"] = original_id
        refs = _header(headers, "References")
        msg["References"] = f"{refs} {original_id}".strip()
    text = vacation.text_body
    if text is None:
        text = "I am away and will read your message later." if not vacation.html_body \
            else _strip_tags(vacation.html_body)
    msg.set_content(text)
    if vacation.html_body:
        msg.add_alternative(vacation.html_body, subtype="html")
    return msg.as_bytes()


def _strip_tags(html: str) -> str:
    return re.sub(r"<[^>]*>", "", html)


class VacationResponder:
    """The hook; one per process, given to the node's delivery pipeline."""

    def __init__(self, engine: Engine, directory: Directory, delivery: DeliveryPipeline,
                 outbox: Outbox | None, hostname: str, *, period: float = DEFAULT_PERIOD,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.directory, self.delivery = engine, directory, delivery
        self.outbox, self.hostname, self.period, self.clock = outbox, hostname, period, clock

    async def delivered(self, request: DeliveryRequest, raw: bytes,
                        stored: Sequence[str]) -> None:
        headers = None
        for account_id in stored:
            vacation = await transact(self.engine, get_vacation, account_id)
            now = self.clock()
            if not vacation.active(now):
                continue
            if headers is None:
                headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
            result = await self._answer(account_id, vacation, request, raw, headers, now)
            REPLIES.labels(result).inc()

    async def _answer(self, account_id: str, vacation: Vacation, request: DeliveryRequest,
                      raw: bytes, headers: Message, now: float) -> str:
        sender = return_path(raw)
        if not sender or "@" not in sender or _daemon(sender):
            return "skipped_no_sender"
        why = automatic(headers)
        if why is not None:
            return why
        ours = await self._addressed_to(account_id, headers)
        if ours is None:
            return "skipped_not_addressed"
        if account_id in {p.id for p in await self.directory.resolve_recipient(sender)}:
            return "skipped_no_sender"  # our own message
        if not await transact(self.engine, claim_reply, account_id, sender, now=now,
                              period=self.period, delivery_id=request.idempotency_id):
            return "skipped_recently"
        send_id = "vacation-" + hashlib.sha256(
            f"{account_id}\0{request.idempotency_id}".encode()).hexdigest()[:32]
        when = datetime.fromtimestamp(now, UTC)
        content = compose_reply(vacation, from_address=ours, to=sender, headers=headers,
                                hostname=self.hostname, when=when)
        try:
            routes = await route_recipients(self.directory, [sender])
            await send(self.delivery, self.outbox, send_id=send_id, sender="", routes=routes,
                       content=content, trace=received(by=self.hostname, source="vacation",
                                                       id=send_id[9:], when=when))
        except SendFailed:
            log.warning("vacation reply %s for %s not sent", send_id, account_id)
            return "failed"
        log.info("vacation reply %s sent for %s", send_id, account_id)
        return "sent"

    async def _addressed_to(self, account_id: str, headers: Message) -> str | None:
        """The first To/Cc address that reaches the account directly, or None."""
        values = [str(v) for name in ("To", "Cc")
                  for v in (headers.get_all(name) or [])]
        for _, address in getaddresses(values):
            if "@" not in address:
                continue
            domain = address.rpartition("@")[2]
            if not await self.directory.is_local_domain(domain):
                continue
            principals = await self.directory.resolve_recipient(address)
            if len(principals) == 1 and principals[0].id == account_id:
                return address
        return None
