"""Delivery status notifications (RFC 3464): a ``multipart/report;
report-type=delivery-status`` message (RFC 6522) with a human-readable part, the
``message/delivery-status`` fields, and the original headers (``text/rfc822-headers``)
or, when the submission asked for RET=FULL, the whole message.

Failures and delays are reported unless NOTIFY says otherwise; a success only when
NOTIFY has SUCCESS (RFC 3461 section 4.1): "delivered" to a local mailbox, "relayed"
to a next hop that does not offer DSN (section 5.2.2; one that does reports itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime, formatdate
from datetime import UTC, datetime

from fdb_layers.queue import QueuedMessage, RecipientState
from server.outbound.wire import enhanced_status

FAILED = "failed"
DELAYED = "delayed"
DELIVERED = "delivered"
RELAYED = "relayed"
SUCCESS_KINDS = frozenset({DELIVERED, RELAYED})


@dataclass(frozen=True, slots=True)
class Notice:
    """A DSN to send: ``kind`` FAILED or DELAYED, for some recipients of a message."""

    kind: str
    recipients: tuple[RecipientState, ...]


def wants(recipient: RecipientState, kind: str) -> bool:
    """Whether the sender asked for this notice (RFC 3461 section 4.1: without
    NOTIFY, failures and delays are reported)."""
    if kind in SUCCESS_KINDS:
        return "SUCCESS" in recipient.notify
    if not recipient.notify:
        return True
    return ("FAILURE" if kind == FAILED else "DELAY") in recipient.notify


def notice_id(message: QueuedMessage, notice: Notice) -> str:
    """A stable id for the notice (its delivery id or queue id): retries send it once."""
    h = hashlib.sha256(f"dsn\0{message.queue_id}\0{notice.kind}".encode())
    for r in notice.recipients:
        h.update(f"\0{r.index}".encode())
    return "dsn-" + h.hexdigest()[:32]


def _headers_of(original: bytes) -> bytes:
    end = original.find(b"\r\n\r\n")
    return original if end < 0 else original[:end + 2]


def _field(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build(message: QueuedMessage, notice: Notice, original: bytes, *, reporting_mta: str,
          now: float) -> bytes:
    """The DSN to ``message.sender`` (never called for ``<>``: see the worker)."""
    boundary = f"=_dsn_{notice_id(message, notice)[4:20]}"
    failed = notice.kind == FAILED
    success = notice.kind in SUCCESS_KINDS
    subject = ("Undelivered Mail Returned to Sender" if failed
               else "Successful Mail Delivery Report" if success
               else "Delivery Status Notification (Delay)")
    human = [
        f"This is the mail system at {reporting_mta}.",
        "",
        ("Your message could not be delivered to these recipients:" if failed else
         "Your message was delivered to these recipients:" if notice.kind == DELIVERED
         else "Your message was relayed to these recipients (the next mail system does "
         "not report delivery):" if success else
         "Your message has not been delivered yet to these recipients; delivery will be "
         "tried again:"),
        "",
    ]
    for r in notice.recipients:
        human.append(f"<{r.address}>: {_field(r.reply) or 'no reply'}")
    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if message.envid:
        per_message.append(f"Original-Envelope-Id: {_field(message.envid)}")
    per_message.append(f"Arrival-Date: {formatdate(message.created_at)}")
    blocks = ["\r\n".join(per_message)]
    for r in notice.recipients:
        status = enhanced_status(r.reply) if r.reply[:1] in "45" else (
            "5.4.7" if failed else "4.4.7")
        if success:
            status = enhanced_status(r.reply) if r.reply[:1] == "2" else "2.0.0"
        if failed and status[0] != "5":
            status = "5" + status[1:]       # given up: a permanent status (RFC 3463)
        fields = []
        if r.orcpt:
            fields.append(f"Original-Recipient: {_field(r.orcpt)}")
        fields += [f"Final-Recipient: rfc822; {r.address}",
                   f"Action: {notice.kind}",
                   f"Status: {status}"]
        if r.reply:
            fields.append(f"Diagnostic-Code: smtp; {_field(r.reply)}")
        fields.append(f"Last-Attempt-Date: {formatdate(now)}")
        if not failed and not success:
            fields.append(f"Will-Retry-Until: {formatdate(message.created_at + 5 * 86400)}")
        blocks.append("\r\n".join(fields))
    full = message.ret == "FULL"
    date = format_datetime(datetime.fromtimestamp(now, UTC))
    head = "\r\n".join([
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{message.sender}>",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <{notice_id(message, notice)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 section 5
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ])
    parts = [
        head.encode() + b"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n",
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode(),
        "\r\n".join(human).encode() + b"\r\n\r\n",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n".encode(),
        "\r\n\r\n".join(blocks).encode() + b"\r\n\r\n",
        f"--{boundary}\r\nContent-Type: {'message/rfc822' if full else 'text/rfc822-headers'}"
        "\r\n\r\n".encode(),
        original if full else _headers_of(original),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def notices(message: QueuedMessage, failed: Sequence[int], delayed: Sequence[int],
            delivered: Sequence[int] = (), relayed: Sequence[int] = ()) -> list[Notice]:
    """The notices an attempt calls for, by recipient index, NOTIFY honoured."""
    by_index = {r.index: r for r in message.recipients}
    out = []
    for kind, indexes in ((FAILED, failed), (DELAYED, delayed), (DELIVERED, delivered),
                          (RELAYED, relayed)):
        chosen = tuple(by_index[i] for i in indexes if i in by_index and wants(by_index[i], kind))
        if chosen:
            out.append(Notice(kind, chosen))
    return out
