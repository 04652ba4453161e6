"""The mail layer's public API: what IMAP, JMAP and the delivery pipeline may call.

Everything a protocol needs is imported from here (``from fdb_layers.mail import
...``); the modules below are its parts, and only this package and its tests
reach into them.  Functions take the transaction ``tr`` first and never commit:
run them with :func:`transact`, which turns the store's failures into
:class:`StoreUnavailable` / :class:`StorageFull`.  Engine errors never leave it.

Where things are:

* accounts: :mod:`.accounts`; mailboxes (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ,
  totals, roles, names): :mod:`.mailboxes`;
* **messages: UIDs, modseqs, flags and expunge** -- every write to a mailbox's
  messages (append/deliver, copy, move, STORE of keywords, EXPUNGE, JMAP
  Email/set) is in :mod:`.messages`; every read of them (UID ranges, a FETCH's
  records, CONDSTORE/QRESYNC changed and vanished UIDs, Email/get) in
  :mod:`.queries`; keywords and IMAP flags in :mod:`.keywords`;
* threads: :mod:`.threads`; quota: :mod:`.quota`; annotations (IMAP METADATA):
  :mod:`.metadata`;
* the change log behind modseqs and JMAP states: :mod:`.changes`;
* the periodic maintenance (change-log compaction, expiry): :mod:`.maintenance`;
* the keys of it all, in one block: :mod:`.layout`; the domain errors: :mod:`.errors`.
"""

from ..blobs.refs import BlobBeingDeleted
from ..engine.base import Engine, Transaction
from .accounts import (
    ROLE_NAMES,
    account_exists,
    ensure_account,
    ensure_role_mailbox,
    require_account,
    watch_account,
)
from .changes import EMAIL, MAILBOX, THREAD, Changes, get_change_floor, get_changes, get_modseq
from .changes import get_state
from .errors import (
    AccountNotFound,
    AnnotationTooLarge,
    BatchTooLarge,
    CannotCalculateChanges,
    EmailExists,
    EmailNotFound,
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotDeletable,
    MailboxNotEmpty,
    MailboxNotFound,
    MailboxNotSelectable,
    MailError,
    QuotaExceeded,
    RoleExists,
    StorageFull,
    StoreUnavailable,
    TooManyAnnotations,
    TooManySubscriptions,
)
from .keywords import (
    DELETED,
    MAX_KEYWORD_LENGTH,
    SEEN,
    keyword_from_imap,
    keyword_to_imap,
    normalise_keyword,
    normalise_keywords,
)
from .mailboxes import (
    DELIMITER,
    INBOX,
    MAX_DEPTH,
    MAX_NAME_BYTES,
    MAX_UIDVALIDITY,
    OPTIONAL_ROLES,
    ROLES,
    Mailbox,
    MailboxStatus,
    create_mailbox,
    create_mailbox_path,
    delete_mailbox,
    find_mailbox,
    find_role,
    get_highest_modseq,
    get_mailbox,
    get_status,
    list_mailboxes,
    list_orphan_subscriptions,
    rename_mailbox,
    rename_mailbox_path,
    set_role,
    set_sort_order,
    set_subscribed,
    split_path,
    subscribe_name,
)
from .maintenance import (
    MaintenanceResult,
    MaintenanceState,
    Retention,
    get_maintenance_state,
    run_maintenance,
    take_maintenance_lease,
)
from .messages import (
    MAX_BATCH,
    MAX_DELIVERY_ID,
    Appended,
    ExpungeResult,
    NewEmail,
    Placement,
    RoleMailbox,
    StoreResult,
    append_email,
    copy_messages,
    deliver_email,
    destroy_email,
    email_id_for,
    expunge_messages,
    move_messages,
    set_email_keywords,
    set_email_mailboxes,
    store_keywords,
)
from .queries import (
    MAX_UID,
    Email,
    Message,
    find_email_of_blob,
    count_deleted,
    get_email,
    get_emails,
    get_visible_changes,
    get_visible_email,
    get_visible_emails,
    iter_visible_emails,
    get_message,
    get_messages,
    get_save_dates,
    get_summary,
    list_blob_emails,
    list_changed_since,
    list_messages,
    list_save_dates,
    list_uids,
    list_vanished,
    query_mailbox,
    query_mailbox_threads,
)
from .quota import Usage, get_usage
from .metadata import (
    MAX_ANNOTATIONS,
    MAX_VALUE,
    SERVER,
    count_annotations,
    get_annotations,
    set_annotations,
    watch_annotations,
)
from .uidmap import list_keywords_in_use, list_uid_runs
from .store import PartFailed, run_part, transact
from .threads import ThreadHeaders, list_thread, normalise_message_id

__all__ = [
    # running transactions (the engine and transaction types); the store's failures
    "Engine", "Transaction", "transact", "run_part", "PartFailed", "StoreUnavailable",
    "StorageFull",
    # refusals
    "MailError", "AccountNotFound", "MailboxNotFound", "MailboxExists", "InvalidMailboxName",
    "MailboxHasChildren", "MailboxNotEmpty", "MailboxNotDeletable", "MailboxNotSelectable",
    "RoleExists", "EmailNotFound", "EmailExists", "QuotaExceeded", "BatchTooLarge",
    "CannotCalculateChanges", "BlobBeingDeleted", "AnnotationTooLarge", "TooManyAnnotations",
    "TooManySubscriptions",
    # accounts
    "ROLE_NAMES", "account_exists", "ensure_account", "ensure_role_mailbox", "require_account",
    "watch_account",
    # mailboxes
    "DELIMITER", "INBOX", "MAX_DEPTH", "MAX_NAME_BYTES", "MAX_UIDVALIDITY", "OPTIONAL_ROLES",
    "ROLES", "Mailbox",
    "MailboxStatus", "create_mailbox", "create_mailbox_path", "delete_mailbox", "find_mailbox",
    "find_role", "get_mailbox", "get_highest_modseq", "get_status", "list_mailboxes",
    "rename_mailbox", "rename_mailbox_path", "set_sort_order", "set_subscribed", "split_path",
    "subscribe_name", "list_orphan_subscriptions", "set_role",
    # messages: UIDs, modseqs, flags (keywords), expunge -- writes
    "MAX_BATCH", "MAX_DELIVERY_ID", "Appended", "ExpungeResult", "NewEmail", "Placement",
    "RoleMailbox", "StoreResult", "append_email", "copy_messages", "deliver_email",
    "destroy_email", "email_id_for", "expunge_messages", "move_messages", "set_email_keywords",
    "set_email_mailboxes", "store_keywords",
    # ... and reads
    "MAX_UID", "Email", "Message", "find_email_of_blob", "get_email", "get_emails",
    "get_visible_email", "get_visible_emails", "iter_visible_emails", "get_visible_changes",
    "count_deleted",
    "get_message", "get_messages", "get_summary",
    "list_blob_emails", "list_changed_since", "list_messages", "list_uids", "list_vanished",
    "query_mailbox", "query_mailbox_threads", "list_uid_runs", "list_keywords_in_use",
    "get_save_dates", "list_save_dates",
    # keywords and IMAP flags
    "DELETED", "MAX_KEYWORD_LENGTH", "SEEN", "keyword_from_imap", "keyword_to_imap",
    "normalise_keyword", "normalise_keywords",
    # threads, quota, the change log (modseqs, JMAP states)
    "ThreadHeaders", "list_thread", "normalise_message_id", "Usage", "get_usage",
    "EMAIL", "MAILBOX", "THREAD", "Changes", "get_change_floor", "get_changes", "get_modseq",
    "get_state",
    # annotations (IMAP METADATA)
    "MAX_ANNOTATIONS", "MAX_VALUE", "SERVER", "count_annotations", "get_annotations",
    "set_annotations", "watch_annotations",
    # the periodic maintenance
    "MaintenanceResult", "MaintenanceState", "Retention", "get_maintenance_state",
    "run_maintenance", "take_maintenance_lease",
]
