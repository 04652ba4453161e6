"""IDLE (RFC 2177, RFC 9051 section 6.3.13): ``+ idling``, then the selected mailbox's
changes pushed as they happen until the client sends DONE.

Wake-ups come from the store, not from this process: the account's modseq key is watched
(:func:`fdb_layers.mail.watch_account`), and every commit that changes the account --
another session, JMAP, an SMTP delivery, another node process or another node -- fires it.
The connection (I/O only) calls :func:`wait_for_change` while the session idles, alongside
its wait for input, and writes what it leaves in ``out``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fdb_layers.mail import watch_account
from server.imap.wire import commands as c
from server.imap.wire.framing import Mode
from server.imap.wire.responses import Continuation

from .selected import announce_changes
from .state import Session

log = logging.getLogger(__name__)

# RFC 9051 section 5.4 / RFC 2177: the autologout timer is at least 30 minutes, and an
# IDLE client re-issues IDLE within 29 minutes.
IDLE_TIMEOUT = 30 * 60.0
_RETRY_AFTER_FAILURE = 1.0


@dataclass(frozen=True, slots=True)
class Idling:
    tag: str


async def idle(s: Session, cmd: c.Command) -> None:
    assert isinstance(cmd, c.Idle)
    s.idling = Idling(cmd.tag)
    s.reader.set_mode(Mode.IDLE)
    s.write(Continuation("idling"))
    await announce_changes(s)


async def done(s: Session) -> None:
    """DONE: the changes not pushed yet, then the IDLE's tagged OK."""
    idling = s.idling
    s.idling = None
    s.reader.set_mode(Mode.COMMAND)
    if idling is None:
        return
    await s.guarded("*", announce_changes(s))
    s.ok(idling.tag, "IDLE terminated")


async def wait_for_change(s: Session) -> None:
    """Return once something was announced (left in ``s.out``).  Cancelled by the
    connection when the client sends something (DONE)."""
    if s.notifying is not None:
        from .notify import wait_for_event
        await wait_for_event(s)
        return
    if s.selected is None:
        await asyncio.Event().wait()   # nothing to announce in the authenticated state
    while not s.out:
        watch = await watch_account(s.ctx.engine, s.account_id)
        try:
            await s.guarded("*", announce_changes(s))  # what changed before the watch was set
            if s.out:
                return
            await watch.wait()
        except Exception:
            log.exception("IDLE watch failed (%s)", s.conn_id)
            await asyncio.sleep(_RETRY_AFTER_FAILURE)
        finally:
            watch.cancel()
        await s.guarded("*", announce_changes(s))
