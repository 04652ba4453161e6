"""The ``[maintenance]`` section: the mailbox housekeeping pass (server/maintenance.py)."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import section, setting

DAY = 86400

@dataclass(frozen=True, slots=True)
class MaintenanceSettings:
    """The ``[maintenance]`` settings."""

    interval_seconds: int = setting(600,
        "How often a node tries to take the maintenance lease (± 20 %); also how soon a pass left"
        " by a node that died is carried on. 0 disables the worker on this node.")
    pass_interval_seconds: int = setting(3600,
        "Least time between the starts of two full passes, across all nodes; a node that finds "
        "the last pass more recent does nothing.")
    lease_seconds: int = setting(60,
        "How long the lease lasts unless renewed; the holder renews it every third of that while "
        "it works.")
    change_retention_seconds: int = setting(30 * DAY,
        "Changes (the log behind JMAP /changes and IMAP CONDSTORE) and expunge tombstones "
        "(QRESYNC VANISHED) older than this are forgotten; clients with older state "
        "resynchronise. 0 keeps them (unless change_max_modseqs caps them).")
    change_max_modseqs: int = setting(0,
        "Keep the changes of at most this many of an account's newest modseqs, whatever their "
        "age; 0: no cap.")
    delivery_retention_seconds: int = setting(7 * DAY,
        "Delivery markers (which make a repeated delivery of the same message a no-op) of "
        "messages received longer ago than this are forgotten; keep it longer than the outbound "
        "queue's lifetime. 0 keeps them.")
    account_batch: int = setting(100,
        "Accounts listed per transaction; the pass's cursor is saved after each batch.")


SECTION = section(
    "maintenance",
    "Mailbox housekeeping: one pass at a time over every account (leased through the store, so "
    "any number of nodes may run the worker) empties deleted mailboxes and forgets old changes, "
    "expunge tombstones and delivery markers.",
    MaintenanceSettings,
)
