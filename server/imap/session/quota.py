"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT; SETQUOTA is refused (limits come from the
directory).  One quota root per account, named ``""``, holding every mailbox; its one
resource is STORAGE (QUOTA=RES-STORAGE, in units of 1024 octets): usage from the mailbox
layer (each email counted once), the limit from the directory -- the quota the delivery
path enforces.  An account without a limit has no quota root (RFC 9208 section 4.1.2)."""

from __future__ import annotations

from fdb_layers.mail import find_mailbox, get_usage, transact
from server.imap.wire import commands as c
from server.imap.wire.responses import QuotaData, QuotaRootData

from .errors import no
from .mailboxes import mailbox_path
from .state import Session

ROOT = ""
CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE")


async def _limit(s: Session) -> int:
    """The account's storage limit in octets, read from the directory now (0: none)."""
    principal = await s.ctx.authenticator.directory.get_principal(s.principal_name)
    return principal.quota if principal is not None else 0


async def _quota(s: Session, limit: int) -> QuotaData:
    usage = await transact(s.ctx.engine, get_usage, s.account_id)
    return QuotaData(ROOT, (("STORAGE", usage.bytes // 1024, limit // 1024),))


async def getquota(s: Session, cmd: c.Command) -> None:
    """RFC 9208 section 4.1.1: a root that does not exist gets NO."""
    assert isinstance(cmd, c.GetQuota)
    limit = await _limit(s)
    if cmd.root != ROOT or not limit:
        raise no("No such quota root", "NONEXISTENT")
    s.write(await _quota(s, limit))
    s.ok(cmd.tag, "GETQUOTA completed")


async def getquotaroot(s: Session, cmd: c.Command) -> None:
    """RFC 9208 section 4.1.2: the mailbox's roots, then each root's QUOTA."""
    assert isinstance(cmd, c.GetQuotaRoot)
    name = mailbox_path(cmd.mailbox)
    await transact(s.ctx.engine, find_mailbox, s.account_id, name)   # NO [NONEXISTENT]
    limit = await _limit(s)
    s.write(QuotaRootData(name, (ROOT,) if limit else ()))
    if limit:
        s.write(await _quota(s, limit))
    s.ok(cmd.tag, "GETQUOTAROOT completed")


async def setquota(s: Session, cmd: c.Command) -> None:
    """RFC 9208 section 4.1.3: limits are the directory's to set, not a client's."""
    assert isinstance(cmd, c.SetQuota)
    raise no("Quota limits are set in the directory", "NOPERM")
