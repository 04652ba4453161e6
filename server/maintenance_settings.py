"""The ``[maintenance]`` section: the mailbox housekeeping pass (server/maintenance.py)."""

from __future__ import annotations

from server.config import Section, Setting

DAY = 86400

SECTION = Section(
    "maintenance",
    "Mailbox housekeeping: one pass at a time over every account (leased through the store, "
    "so any number of nodes may run the worker) empties deleted mailboxes and forgets old "
    "changes, expunge tombstones and delivery markers.",
    (
        Setting("interval_seconds", 600, "How often a node tries to take the maintenance "
                "lease (± 20 %); also how soon a pass left by a node that died is carried on. "
                "0 disables the worker on this node."),
        Setting("pass_interval_seconds", 3600, "Least time between the starts of two full "
                "passes, across all nodes; a node that finds the last pass more recent does "
                "nothing."),
        Setting("lease_seconds", 60, "How long the lease lasts unless renewed; the holder "
                "renews it every third of that while it works."),
        Setting("change_retention_seconds", 30 * DAY, "Changes (the log behind JMAP /changes "
                "and IMAP CONDSTORE) and expunge tombstones (QRESYNC VANISHED) older than "
                "this are forgotten; clients with older state resynchronise. 0 keeps them "
                "(unless change_max_modseqs caps them)."),
        Setting("change_max_modseqs", 0, "Keep the changes of at most this many of an "
                "account's newest modseqs, whatever their age; 0: no cap."),
        Setting("delivery_retention_seconds", 7 * DAY, "Delivery markers (which make a "
                "repeated delivery of the same message a no-op) of messages received longer "
                "ago than this are forgotten; keep it longer than the outbound queue's "
                "lifetime. 0 keeps them."),
        Setting("account_batch", 100, "Accounts listed per transaction; the pass's cursor "
                "is saved after each batch."),
    ),
)
