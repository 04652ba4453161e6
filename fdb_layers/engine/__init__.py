"""Engines behind the store contract (see base.py) and how to open one."""

from __future__ import annotations

from .base import Engine


async def open_engine(
    kind: str,
    *,
    sqlite_path: str = "",
    cluster_file: str = "",
    api_version: int = 730,
    not_committed_rate: float = 0.0,
    unknown_result_rate: float = 0.0,
    commit_socket: str | None = None,
) -> Engine:
    """Open the configured engine, wrapped in fault injection if any rate is set.
    ``commit_socket``: the sqlite engine sends its commits to the process serving
    that socket (see sqlite.remote); FoundationDB ignores it."""
    engine: Engine
    if kind == "sqlite":
        from .sqlite import SqliteEngine

        engine = await SqliteEngine.open(sqlite_path, commit_socket=commit_socket)
    elif kind == "foundationdb":
        from .foundationdb import FoundationDbEngine

        engine = await FoundationDbEngine.open(cluster_file, api_version)
    else:
        raise ValueError(f"unknown store engine {kind!r}")
    if not_committed_rate or unknown_result_rate:
        from .faults import FaultyEngine

        engine = FaultyEngine(
            engine, not_committed_rate=not_committed_rate, unknown_result_rate=unknown_result_rate
        )
    return engine


__all__ = ["Engine", "open_engine"]
