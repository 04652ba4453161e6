"""A transaction's commit request: what the writer (in this process or, through
:mod:`.remote`, in the one serving the commit socket) checks and applies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .conflicts import ConflictSet
from .mutations import Mutation

CommitResult = tuple[int, bytes]
"""A commit's version and its versionstamp."""


@dataclass(slots=True)
class Commit:
    read_version: int
    reads: ConflictSet
    writes: ConflictSet
    mutations: list[Mutation]
    future: asyncio.Future[CommitResult]
