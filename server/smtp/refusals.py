"""SMTP's replies to refused deliveries: one table from domain errors to replies.

The delivery pipeline refuses with a domain error (``server.delivery.errors``:
the mail layer's ``MailError`` subclasses, the pipeline's ``DeliveryError``
subclasses); it never words a reply.  Each protocol keeps one table from those
error *types* to its own replies and reads nothing else -- never an error's
text.  The rows are tried in order, so a subclass comes before its base; a type
missing from the table falls to the family's default (permanent refusal, or
temporary failure).

The design every protocol follows (IMAP and JMAP fill in their column in their
own package, ``server/imap/refusals.py`` and ``server/jmap/refusals.py``):

======================  ======================  ===================  ====================
domain error            SMTP/LMTP (RFC 3463)    IMAP (RFC 5530)      JMAP (RFC 8620/8621)
======================  ======================  ===================  ====================
QuotaExceeded           552 5.2.2               NO [OVERQUOTA]       overQuota
MailboxNotFound         550 5.2.0               NO [TRYCREATE]       invalidProperties
MailboxNotSelectable    550 5.2.0               NO [CANNOT]          invalidProperties
MessageTooLarge         552 5.3.4               NO [TOOBIG]          tooLarge
NoSuchBlob              554 5.3.0               NO [NONEXISTENT]     blobNotFound
InvalidRequest          554 5.6.0               BAD                  invalidArguments
other MailError         554 5.0.0               NO                   forbidden
TemporaryFailure:
- STORAGE_FULL          452 4.3.1               NO [UNAVAILABLE]     serverUnavailable
- STORE, BLOBS          451 4.3.0               NO [UNAVAILABLE]     serverUnavailable
- INTERNAL              451 4.3.0               NO [SERVERBUG]       serverFail
======================  ======================  ===================  ====================

(SMTP delivers to a role mailbox, which is re-created if missing: it meets
MailboxNotFound only once Sieve's ``fileinto`` names a mailbox.  JMAP's
invalidProperties names ``mailboxIds``.)

SMTP answers DATA once for all recipients (LMTP once per recipient, RFC 2033);
how the per-recipient replies fold into one is :mod:`server.smtp.handler`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.delivery.errors import (
    InvalidRequest,
    MailboxNotFound,
    MailboxNotSelectable,
    MailError,
    MessageTooLarge,
    NoSuchBlob,
    QuotaExceeded,
    Refusal,
    TemporaryFailure,
    Unavailable,
    is_temporary,
)


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    status: str  # the enhanced status code (RFC 3463)
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


TABLE: tuple[tuple[type[Exception], Reply], ...] = (
    (QuotaExceeded, Reply(552, "5.2.2", "Mailbox full")),
    (MailboxNotFound, Reply(550, "5.2.0", "Target mailbox does not exist")),
    (MailboxNotSelectable, Reply(550, "5.2.0", "Target mailbox cannot hold messages")),
    (MessageTooLarge, Reply(552, "5.3.4", "Message too big for this mailbox")),
    (NoSuchBlob, Reply(554, "5.3.0", "Message body not found")),
    (InvalidRequest, Reply(554, "5.6.0", "Message cannot be stored as asked")),
    (MailError, Reply(554, "5.0.0", "Delivery refused")),
)

TEMPORARY: dict[Unavailable, Reply] = {
    Unavailable.STORAGE_FULL: Reply(452, "4.3.1", "Insufficient system storage, try again later"),
    Unavailable.STORE: Reply(451, "4.3.0", "Temporary delivery failure, try again later"),
    Unavailable.BLOBS: Reply(451, "4.3.0", "Temporary delivery failure, try again later"),
    Unavailable.INTERNAL: Reply(451, "4.3.0", "Temporary delivery failure, try again later"),
}

PERMANENT_DEFAULT = Reply(554, "5.0.0", "Delivery refused")
TEMPORARY_DEFAULT = TEMPORARY[Unavailable.INTERNAL]


def reply_for(error: Refusal) -> Reply:
    """SMTP's reply to one recipient's refusal."""
    if isinstance(error, TemporaryFailure):
        return TEMPORARY.get(error.kind, TEMPORARY_DEFAULT)
    for kind, reply in TABLE:
        if isinstance(error, kind):
            return reply
    return TEMPORARY_DEFAULT if is_temporary(error) else PERMANENT_DEFAULT


__all__ = ["PERMANENT_DEFAULT", "TABLE", "TEMPORARY", "TEMPORARY_DEFAULT", "Reply", "reply_for"]
