"""STORE (and FETCH's implicit \\Seen) whose commit is retried after an unknown result
(``commit_unknown_result``: the first attempt was applied, the client could not know), at
the session level on an engine that forces that outcome on exactly the command's commit.
The retry finds its change done; the session must still take it for its own: with .SILENT
no untagged FETCH for the flags it set (RFC 9051 section 6.4.6), while another session's
change made in between is announced (section 7.4.1, RFC 7162 section 3.2)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import pytest

from fdb_layers.engine.base import CommitUnknownResult, Engine, Transaction
from fdb_layers.engine.faults import FaultyEngine, FaultyTransaction
from fdb_layers.engine.run import transact
from fdb_layers.mail import accounts
from fdb_layers.mail.messages import append_email, store_keywords
from server.blobs import BlobStore
from server.imap.session import Selected, Session, SessionContext, State
from server.sasl import Authenticator, Registry
from tests.fdb_layers.mail.fixtures import ACCOUNT, new_email
from tests.support.engines import FDB_SKIP_REASON, make_engine

Between = Callable[[Engine], Awaitable[None]]


class _UnknownOnce(FaultyTransaction):
    """Commits; the first writing commit after :meth:`_Scripted.arm` then runs the armed
    step (another session's work, on the engine underneath) and reports an unknown
    result, as FoundationDB may after a commit it applied."""

    def __init__(self, engine: _Scripted, inner: Transaction) -> None:
        super().__init__(engine, inner)
        self._scripted = engine
        self._wrote = False

    def set(self, key: bytes, value: bytes) -> None:
        self._wrote = True
        super().set(key, value)

    async def commit(self) -> None:
        await super().commit()
        between = self._scripted.between
        if between is not None and self._wrote:
            self._scripted.between = None
            await between(self._scripted.inner)
            self._scripted.injected_unknown_result += 1
            raise CommitUnknownResult("scripted: committed, reported unknown")


class _Scripted(FaultyEngine):
    """No fault by chance: one unknown result where the test arms it."""

    def __init__(self, inner: Engine) -> None:
        super().__init__(inner)
        self.between: Between | None = None

    def arm(self, between: Between) -> None:
        self.between = between

    def create_transaction(self) -> _UnknownOnce:  # type: ignore[override]
        return _UnknownOnce(self, self.inner.create_transaction())


@pytest.fixture(params=[
    "sqlite",
    pytest.param("foundationdb", marks=pytest.mark.skipif(
        FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or "")),
])
async def scripted(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> AsyncIterator[_Scripted]:
    engine = _Scripted(await make_engine(request.param, tmp_path))
    await transact(engine, accounts.ensure_account, ACCOUNT)
    for i in range(1, 4):
        await transact(engine, append_email, ACCOUNT, "inbox", new_email(i),
                       delivery_id=f"d{i}")
    try:
        yield engine
    finally:
        await engine.close()


_BODY = b"Subject: x\r\n\r\n" + b"y" * 986   # new_email's size: 1000 bytes


class _Blobs:
    """Every blob holds ``_BODY`` (FETCH BODY[] reads the whole blob)."""

    async def get(self, blob_id: str) -> bytes:
        return _BODY

    async def read_range(self, blob_id: str, start: int, end: int) -> bytes:
        return _BODY[start:end]

    async def open(self, blob_id: str, start: int = 0, end: int | None = None
                   ) -> AsyncIterator[bytes]:
        yield _BODY[start:end]


async def _session(engine: Engine, *, condstore: bool = False) -> Session:
    ctx = SessionContext(engine=engine, blobs=cast(BlobStore, _Blobs()),
                         authenticator=cast(Authenticator, None),
                         mechanisms=Registry(), hostname="test")
    s = Session(ctx, tls=True)
    s.state, s.account_id = State.AUTHENTICATED, ACCOUNT   # as LOGIN leaves it
    if condstore:   # ENABLE only in the authenticated state (RFC 9051 section 6.3.1)
        assert (await _command(s, b"e ENABLE CONDSTORE"))[-1] == b"e OK ENABLE completed\r\n"
    assert (await _command(s, b"s SELECT INBOX"))[-1] == b"s OK [READ-WRITE] SELECT completed\r\n"
    assert isinstance(s.selected, Selected) and list(s.selected.uids) == [1, 2, 3]
    return s


async def _command(s: Session, line: bytes) -> list[bytes]:
    s.feed(line + b"\r\n")
    await s.run()
    out, s.out = s.out, []
    return b"".join(out).splitlines(keepends=True)


def _fetches(lines: list[bytes]) -> dict[int, list[bytes]]:
    got: dict[int, list[bytes]] = {}
    for line in lines:
        m = re.match(rb"\* (\d+) FETCH ", line)
        if m:
            got.setdefault(int(m.group(1)), []).append(line)
    return got


async def _nothing(engine: Engine) -> None:
    return None


@pytest.mark.parametrize("condstore", [False, True])
async def test_a_retried_silent_store_announces_nothing(scripted: _Scripted,
                                                        condstore: bool) -> None:
    """RFC 9051 section 6.4.6: .SILENT, no untagged FETCH for the flags the STORE set, also
    when its commit came back unknown and the retry found the change done; not with the
    command, not with the next NOOP.  With CONDSTORE a silent STORE still reports the
    UID and MODSEQ of what it changed (RFC 7162 section 3.1.3, example 3), here too once."""
    s = await _session(scripted, condstore=condstore)
    scripted.arm(_nothing)
    out = await _command(s, b"a UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert scripted.injected_unknown_result == 1 and scripted.between is None
    if condstore:
        assert len(out) == 2 and re.fullmatch(rb"\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)\r\n",
                                              out[0]), out
    else:
        assert out == [b"a OK UID STORE completed\r\n"]
    assert out[-1] == b"a OK UID STORE completed\r\n"
    assert await _command(s, b"n NOOP") == [b"n OK NOOP completed\r\n"]
    flags = await _command(s, b"f FETCH 2 (FLAGS)")
    assert flags[0].startswith(b"* 2 FETCH (FLAGS (\\Deleted)")


async def test_another_sessions_change_before_the_retry_is_announced(
        scripted: _Scripted) -> None:
    """RFC 9051 section 7.4.1: another session's flag changes reach this one as untagged
    FETCH, once; here made between the STORE's commit and its retry, on the message the
    STORE set \\Deleted on (its \\Seen is news to the client) and on one it did not
    touch.  The retry changes nothing, so the message keeps the other session's modseq."""
    s = await _session(scripted)

    async def other_session(inner: Engine) -> None:
        await transact(inner, store_keywords, ACCOUNT, "inbox", [2, 3], add=["$seen"])

    scripted.arm(other_session)
    out = await _command(s, b"a UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert scripted.injected_unknown_result == 1
    assert out[-1] == b"a OK UID STORE completed\r\n"
    out += await _command(s, b"n NOOP")
    announced = _fetches(out)
    assert sorted(announced) == [2, 3] and all(len(v) == 1 for v in announced.values()), out
    assert re.search(rb"FLAGS \(\\Deleted \\Seen\)", announced[2][0]), announced
    assert re.search(rb"FLAGS \(\\Seen\)", announced[3][0]), announced
    assert await _command(s, b"m NOOP") == [b"m OK NOOP completed\r\n"]


async def test_a_retried_fetch_reports_the_seen_it_set_once(scripted: _Scripted) -> None:
    """RFC 9051 section 6.4.5: FETCH BODY[] sets \\Seen, and the flags it changed SHOULD
    come in its FETCH response: also when that write's commit came back unknown and the
    retry found \\Seen set; then not again as an untagged FETCH with the next NOOP."""
    s = await _session(scripted)
    scripted.arm(_nothing)
    out = await _command(s, b"a FETCH 2 (BODY[])")
    assert scripted.injected_unknown_result == 1
    assert b"".join(out) == (b"* 2 FETCH (BODY[] {1000}\r\n" + _BODY + b" FLAGS (\\Seen))\r\n"
                             b"a OK FETCH completed\r\n")
    assert await _command(s, b"n NOOP") == [b"n OK NOOP completed\r\n"]
