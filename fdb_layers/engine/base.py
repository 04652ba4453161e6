"""The store contract: FoundationDB's semantics, whatever engine sits below.

Every layer in ``fdb_layers`` talks to a :class:`Transaction` and is run by
:func:`fdb_layers.engine.run.transact` (the one retry loop).  Engines implement
:class:`Engine`.  The rules (see DESIGN.md, "The store contract"):

* keys are ordered bytes (built with the tuple layer, see ``fdb_layers.keys``);
* transactions are serializable; a conflict raises :class:`NotCommitted` and the
  retry loop runs the body again, so bodies must have no side effects;
* a commit may fail with :class:`CommitUnknownResult` *after* it was applied;
  layer writes are idempotent (caller-given ids, marker keys) so a re-run is a no-op;
* FoundationDB's limits are enforced everywhere (:data:`LIMITS`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")

# FoundationDB's documented limits ("Known limitations"); the embedded engine
# enforces the same numbers so that code that passes there fits FoundationDB.
MAX_KEY_SIZE = 10_000
MAX_VALUE_SIZE = 100_000
MAX_TRANSACTION_SIZE = 10_000_000
MAX_TRANSACTION_SECONDS = 5.0

VERSIONSTAMP_SIZE = 10  # 8-byte commit version + 2-byte batch order


class ErrorCode(enum.IntEnum):
    """FoundationDB error codes that the contract names.  A StoreError from the
    FoundationDB engine keeps whatever code FoundationDB gave, named here or not."""

    TIMED_OUT = 1004
    TRANSACTION_TOO_OLD = 1007
    FUTURE_VERSION = 1009
    NOT_COMMITTED = 1020
    COMMIT_UNKNOWN_RESULT = 1021
    TRANSACTION_CANCELLED = 1025
    TRANSACTION_TIMED_OUT = 1031
    ACCESSED_UNREADABLE = 1036
    PROCESS_BEHIND = 1037
    DATABASE_LOCKED = 1038
    CLUSTER_VERSION_CHANGED = 1039
    PROXY_MEMORY_LIMIT_EXCEEDED = 1042
    BATCH_TRANSACTION_THROTTLED = 1051
    GRV_PROXY_MEMORY_LIMIT_EXCEEDED = 1078
    TAG_THROTTLED = 1213
    TRANSACTION_TOO_LARGE = 2101
    KEY_TOO_LARGE = 2102
    VALUE_TOO_LARGE = 2103
    KEY_OUTSIDE_LEGAL_RANGE = 2004
    INVERTED_RANGE = 2005
    USED_DURING_COMMIT = 2017
    CLIENT_INVALID_OPERATION = 2000
    IO_ERROR = 1510
    INTERNAL_ERROR = 4100


# The errors the embedded engine raises after which FoundationDB's ``on_error``
# retries.  The FoundationDB engine does not use this set: it asks the binding
# (``fdb.predicates.is_retryable``, and its ``on_error`` drives the retry).
RETRYABLE = frozenset(
    {
        ErrorCode.TRANSACTION_TOO_OLD,
        ErrorCode.FUTURE_VERSION,
        ErrorCode.NOT_COMMITTED,
        ErrorCode.COMMIT_UNKNOWN_RESULT,
    }
)


class StoreError(Exception):
    """An error of the store contract, carrying FoundationDB's error code
    (an :class:`ErrorCode` when the contract names it, else FoundationDB's number).

    ``retryable`` is FoundationDB's answer where the error came from FoundationDB
    (the engine passes the binding's predicate), else membership of :data:`RETRYABLE`."""

    code: int = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str = "", *, code: int | None = None,
                 retryable: bool | None = None) -> None:
        if code is not None:
            self.code = _named(code)
        self._retryable = retryable
        super().__init__(message or self.reason)

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        return self.code in RETRYABLE

    @property
    def reason(self) -> str:
        """A bounded label for metrics ("not_committed", "error_1234", ...)."""
        code = self.code
        return code.name.lower() if isinstance(code, ErrorCode) else f"error_{code}"


def _named(code: int) -> int:
    try:
        return ErrorCode(code)
    except ValueError:
        return code


class NotCommitted(StoreError):
    code = ErrorCode.NOT_COMMITTED


class CommitUnknownResult(StoreError):
    code = ErrorCode.COMMIT_UNKNOWN_RESULT


class TransactionTooOld(StoreError):
    code = ErrorCode.TRANSACTION_TOO_OLD


class TransactionTooLarge(StoreError):
    code = ErrorCode.TRANSACTION_TOO_LARGE


class KeyTooLarge(StoreError):
    code = ErrorCode.KEY_TOO_LARGE


class ValueTooLarge(StoreError):
    code = ErrorCode.VALUE_TOO_LARGE


class InvertedRange(StoreError):
    code = ErrorCode.INVERTED_RANGE


class InvalidOperation(StoreError):
    code = ErrorCode.CLIENT_INVALID_OPERATION


class KeyOutsideLegalRange(StoreError):
    code = ErrorCode.KEY_OUTSIDE_LEGAL_RANGE


class AccessedUnreadable(StoreError):
    """A read of a key (or range) that this transaction wrote with a versionstamp."""

    code = ErrorCode.ACCESSED_UNREADABLE


class StoreFull(StoreError):
    """The store's disk is full: nothing was committed.  Not retried by the loop
    (it would only wait); the caller fails fast and temporarily (SMTP 4xx), and
    commits succeed again once space returns."""

    code = ErrorCode.IO_ERROR


_BY_CODE: dict[int, type[StoreError]] = {
    cls.code: cls
    for cls in (
        NotCommitted,
        CommitUnknownResult,
        TransactionTooOld,
        TransactionTooLarge,
        KeyTooLarge,
        ValueTooLarge,
        InvertedRange,
        InvalidOperation,
        KeyOutsideLegalRange,
        AccessedUnreadable,
    )
}


def error_for_code(code: int, message: str = "", *, retryable: bool | None = None) -> StoreError:
    """The contract exception for a FoundationDB error code; the code is kept
    as it is, named by :class:`ErrorCode` or not."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message, retryable=retryable)
    return StoreError(message or f"foundationdb error {code}", code=code, retryable=retryable)


class LayoutVersionError(Exception):
    """The store was written by a newer major layout version than this node knows."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes


class Transaction(Protocol):
    """One transaction: reads see one consistent snapshot; writes are buffered
    and applied atomically at commit.  Reads of keys written earlier in the same
    transaction see those writes (read-your-writes), as on FoundationDB."""

    async def get(self, key: bytes, *, snapshot: bool = False) -> bytes | None: ...

    async def get_many(self, keys: Sequence[bytes], *, snapshot: bool = False
                       ) -> list[bytes | None]:
        """The value of each key, in order, as :meth:`get` of each would give: read at
        once (FoundationDB: every read issued before the first is awaited; SQLite: one
        query), for a layer that knows all the keys it needs before the first answer."""
        ...

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[KeyValue]:
        """Pairs with ``begin <= key < end`` in key order (or reverse); ``limit`` 0 means all."""
        ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def clear(self, key: bytes) -> None: ...

    def clear_range(self, begin: bytes, end: bytes) -> None: ...

    def add(self, key: bytes, delta: int) -> None:
        """Atomic little-endian 64-bit add (FoundationDB ``ADD``); no read conflict."""
        ...

    def max(self, key: bytes, value: int) -> None:
        """Atomic unsigned little-endian 64-bit ``MAX``."""
        ...

    def min(self, key: bytes, value: int) -> None:
        """Atomic unsigned little-endian 64-bit ``MIN`` (an absent key takes ``value``)."""
        ...

    def compare_and_clear(self, key: bytes, value: bytes) -> None:
        """Atomically clear ``key`` if its value equals ``value``."""
        ...

    def set_versionstamped_key(self, key: bytes, value: bytes) -> None:
        """``key`` ends with a 4-byte little-endian offset of a 10-byte placeholder
        (as built by ``fdb.tuple.pack_with_versionstamp``); the placeholder becomes
        the commit's versionstamp, so keys written later sort later."""
        ...

    def set_versionstamped_value(self, key: bytes, value: bytes) -> None:
        """Like :meth:`set_versionstamped_key`, for a placeholder inside ``value``."""
        ...

    def add_read_conflict_key(self, key: bytes) -> None: ...

    def add_write_conflict_key(self, key: bytes) -> None: ...

    async def get_read_version(self) -> int: ...

    async def commit(self) -> None: ...

    async def on_error(self, error: StoreError) -> None:
        """Reset for a retry after a retryable error (with backoff); re-raise otherwise."""
        ...

    def reset(self) -> None: ...

    def cancel(self) -> None: ...

    def get_versionstamp(self) -> Awaitable[bytes]:
        """Resolves after a successful commit to its 10-byte versionstamp."""
        ...


class Watch(Protocol):
    """A change notification for one key; await :meth:`wait`, or :meth:`cancel`."""

    async def wait(self) -> None: ...

    def cancel(self) -> None: ...


class Engine(Protocol):
    """What every engine provides; layers never see it, only :class:`Transaction`."""

    name: str

    def create_transaction(self) -> Transaction: ...

    async def watch(self, key: bytes) -> Watch:
        """A watch on ``key``: it fires once the key's value differs from its value now."""
        ...

    async def close(self) -> None: ...


TransactionFunction = Callable[..., Awaitable[T]]
