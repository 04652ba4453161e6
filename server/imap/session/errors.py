"""IMAP's one table from refusals to responses (STYLE.md: errors): a handler raises
:class:`ImapError` (or lets a domain error of the mail layer through) and the session
answers the command with the tagged response this table gives."""

from __future__ import annotations

from fdb_layers.mail import (
    MAX_ANNOTATIONS,
    MAX_VALUE,
    AccountNotFound,
    AnnotationTooLarge,
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
    MailboxNotEmpty,
    MailboxNotFound,
    MailboxNotSelectable,
    QuotaExceeded,
    RoleExists,
    StorageFull,
    StoreUnavailable,
    TooManyAnnotations,
    TooManySubscriptions,
)
from server.delivery import InvalidRequest, MessageTooLarge, TemporaryFailure
from server.directory.base import DirectoryError


class ImapError(Exception):
    """A refusal that knows its answer: ``status`` (NO or BAD), a response code, a text."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def bad(text: str) -> ImapError:
    return ImapError("BAD", text)


def no(text: str, code: str | None = None) -> ImapError:
    return ImapError("NO", text, code)


# (status, response code, text) per domain error (RFC 5530 response codes).
TABLE: dict[type[Exception], tuple[str, str | None, str]] = {
    MailboxNotFound: ("NO", "NONEXISTENT", "No such mailbox"),
    MailboxExists: ("NO", "ALREADYEXISTS", "Mailbox already exists"),
    InvalidMailboxName: ("NO", "CANNOT", "Invalid mailbox name"),
    # RFC 9051 section 7.1: "The mailbox delete operation failed because the mailbox has
    # one or more children" (DELETE of a \Noselect name with inferiors, section 6.3.5)
    MailboxHasChildren: ("NO", "HASCHILDREN", "Mailbox has children; delete them first"),
    MailboxNotDeletable: ("NO", "CANNOT", "Mailbox cannot be deleted"),
    MailboxNotEmpty: ("NO", "INUSE", "Mailbox is not empty"),
    MailboxNotSelectable: ("NO", "CANNOT", "Mailbox cannot be selected"),
    RoleExists: ("NO", "ALREADYEXISTS", "Special-use mailbox already exists"),
    QuotaExceeded: ("NO", "OVERQUOTA", "Over quota"),
    TooManySubscriptions: ("NO", "LIMIT", "Too many subscribed names without a mailbox"),
    AccountNotFound: ("NO", "UNAVAILABLE", "Account not available"),
    StorageFull: ("NO", "UNAVAILABLE", "Storage full, try again later"),
    StoreUnavailable: ("NO", "UNAVAILABLE", "Store unavailable, try again later"),
    MessageTooLarge: ("NO", "TOOBIG", "Message too large"),
    TemporaryFailure: ("NO", "UNAVAILABLE", "Message not stored, try again later"),
    InvalidRequest: ("NO", "CANNOT", "Message cannot be stored as asked"),
    DirectoryError: ("NO", "UNAVAILABLE", "Directory unavailable, try again later"),
    # RFC 5464 section 4.3 (SETMETADATA; RENAME of INBOX copies INBOX's, section 4.1)
    AnnotationTooLarge: ("NO", f"METADATA MAXSIZE {MAX_VALUE}",
                         f"Values are limited to {MAX_VALUE} octets"),
    TooManyAnnotations: ("NO", "METADATA TOOMANY", f"At most {MAX_ANNOTATIONS} entries"),
}


def lookup(error: Exception) -> ImapError | None:
    """The answer to a domain error, None for anything else (our fault: SERVERBUG)."""
    if isinstance(error, ImapError):
        return error
    for kind in type(error).__mro__:
        found = TABLE.get(kind)
        if found is not None:
            status, code, text = found
            return ImapError(status, text, code)
    return None
