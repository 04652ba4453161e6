"""Domain exceptions of the mail layer; protocols map them to replies.

Engine errors never leave the layer: only these (and retryable StoreErrors,
which :func:`fdb_layers.engine.run.transact` consumes) do.
"""

from __future__ import annotations


class MailError(Exception):
    """A refusal by the mail layer (the user's or policy's, not our fault)."""


class AccountNotFound(MailError):
    pass


class MailboxNotFound(MailError):
    pass


class MailboxExists(MailError):
    pass


class InvalidMailboxName(MailError):
    pass


class MailboxHasChildren(MailError):
    """JMAP mailboxHasChild; IMAP DELETE of a \\Noselect mailbox with inferiors."""


class MailboxNotEmpty(MailError):
    """JMAP mailboxHasEmail (destroy without onDestroyRemoveEmails)."""


class MailboxNotDeletable(MailError):
    """INBOX cannot be deleted."""


class MailboxNotSelectable(MailError):
    """A \\Noselect mailbox holds no messages."""


class RoleExists(MailError):
    pass


class EmailNotFound(MailError):
    pass


class EmailExists(MailError):
    """An email id given for a new email is already used."""


class QuotaExceeded(MailError):
    def __init__(self, used: int, quota: int, size: int) -> None:
        super().__init__(f"quota exceeded: {used} + {size} > {quota} bytes")
        self.used = used
        self.quota = quota
        self.size = size


class BatchTooLarge(MailError):
    """More items than one transaction may touch; split the request."""


class CannotCalculateChanges(MailError):
    """The state is unknown or too old (JMAP cannotCalculateChanges)."""


class AnnotationTooLarge(MailError):
    """An annotation's value is over :data:`fdb_layers.mail.metadata.MAX_VALUE` octets."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"annotation values are limited to {limit} octets")
        self.limit = limit


class TooManyAnnotations(MailError):
    """The account has :data:`fdb_layers.mail.metadata.MAX_ANNOTATIONS` entries already."""


class TooManySubscriptions(MailError):
    """The account has :data:`fdb_layers.mail.subscriptions.MAX_NAMES` subscribed names
    without a mailbox already."""


class StoreUnavailable(Exception):
    """The store could not run the transaction (conflicts retried too long, the
    cluster unreachable, a layout this node cannot use...): nothing was written by
    it, or (after an unknown commit result) an idempotent retry will tell.  Our
    fault or the store's, not the user's: try again later."""


class StorageFull(StoreUnavailable):
    """The store's disk is full: nothing was committed; commits succeed again
    once space returns."""
