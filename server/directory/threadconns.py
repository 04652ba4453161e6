"""One connection per worker thread (and per purpose), for the blocking SQL and
LDAP clients that the directory runs in its thread pool; all of them are
remembered so that closing the directory closes every one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class ThreadConnections(Generic[C]):
    def __init__(self, close: Callable[[C], object]) -> None:
        self._close = close
        self._local = threading.local()
        self._all: list[C] = []
        self._lock = threading.Lock()

    def get(self, slot: str, open_: Callable[[], C]) -> C:
        """This thread's connection in ``slot``, opened by ``open_`` the first time."""
        conn: C | None = getattr(self._local, slot, None)
        if conn is None:
            conn = open_()
            setattr(self._local, slot, conn)
            with self._lock:
                self._all.append(conn)
        return conn

    def drop(self, slot: str) -> None:
        """Forget and close this thread's connection in ``slot`` (it broke)."""
        conn: C | None = getattr(self._local, slot, None)
        setattr(self._local, slot, None)
        if conn is None:
            return
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        self._quietly_close(conn)

    def close_all(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            self._quietly_close(conn)

    def _quietly_close(self, conn: C) -> None:
        try:
            self._close(conn)
        except Exception:  # closing a broken connection may fail too; nothing to do
            pass
