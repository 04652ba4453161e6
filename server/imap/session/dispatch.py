"""Which handler answers each command, and in which states it is valid (RFC 9051
section 3 and section 6: a command outside its states is answered BAD)."""

from __future__ import annotations

from server.imap.wire import commands as c

from . import auth, idle, mailboxes, messages, metadata, mutate, notify, quota, search
from . import selected, sort, thread
from .state import Handler, State

ANY = frozenset(State) - {State.LOGOUT}
NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
ONLY_AUTH = frozenset({State.AUTHENTICATED})
SELECTED = frozenset({State.SELECTED})

_TABLE: dict[type, tuple[Handler, frozenset[State]]] = {
    c.Capability: (auth.capability, ANY),
    c.Noop: (auth.noop, ANY),
    c.Logout: (auth.logout, ANY),
    c.Id: (auth.id_, ANY),
    c.StartTLS: (auth.starttls, NOT_AUTH),
    c.Login: (auth.login, NOT_AUTH),
    c.Authenticate: (auth.authenticate, NOT_AUTH),
    c.Enable: (auth.enable, ONLY_AUTH),
    c.Namespace: (auth.namespace, AUTH),
    c.ListCmd: (mailboxes.list_, AUTH),
    c.Lsub: (mailboxes.lsub, AUTH),
    c.Create: (mailboxes.create, AUTH),
    c.Delete: (mailboxes.delete, AUTH),
    c.Rename: (mailboxes.rename, AUTH),
    c.Subscribe: (mailboxes.subscribe, AUTH),
    c.Unsubscribe: (mailboxes.unsubscribe, AUTH),
    c.Status: (mailboxes.status, AUTH),
    c.Select: (selected.select, AUTH),
    c.Close: (selected.close, SELECTED),
    c.Unselect: (selected.unselect, SELECTED),
    c.Check: (selected.check, SELECTED),
    c.Fetch: (messages.fetch, SELECTED),
    c.Store: (messages.store, SELECTED),
    c.Search: (search.search, SELECTED),
    c.Sort: (sort.sort, SELECTED),
    c.Thread: (thread.thread, SELECTED),
    c.Append: (mutate.append, AUTH),
    c.Copy: (mutate.copy, SELECTED),
    c.Move: (mutate.move, SELECTED),
    c.Expunge: (mutate.expunge, SELECTED),
    c.Replace: (mutate.replace, SELECTED),
    c.Compress: (auth.compress, AUTH),
    c.Unauthenticate: (auth.unauthenticate, AUTH),
    c.GetQuota: (quota.getquota, AUTH),
    c.GetQuotaRoot: (quota.getquotaroot, AUTH),
    c.SetQuota: (quota.setquota, AUTH),
    c.GetMetadata: (metadata.getmetadata, AUTH),
    c.SetMetadata: (metadata.setmetadata, AUTH),
    c.Notify: (notify.notify, AUTH),
    c.Idle: (idle.idle, AUTH),
}

HANDLERS: dict[type, Handler] = {k: h for k, (h, _) in _TABLE.items()}
ALLOWED: dict[type, frozenset[State]] = {k: st for k, (_, st) in _TABLE.items()}

# Commands parsed but not served yet: valid in these states, answered BAD "not implemented"
# there (and BAD for the state elsewhere), so that the wrong-state answer never depends on
# what is implemented.
_LATER: tuple[tuple[frozenset[State], tuple[type, ...]], ...] = (
    (AUTH, (c.Append, c.Compress, c.Unauthenticate, c.GetQuota, c.GetQuotaRoot,
            c.SetQuota, c.GetMetadata, c.SetMetadata, c.Notify)),
    (SELECTED, (c.Expunge, c.Search, c.Fetch, c.Store, c.Copy, c.Move, c.Sort, c.Thread,
                c.Replace)),
)
for _states, _kinds in _LATER:
    for _kind in _kinds:
        ALLOWED.setdefault(_kind, _states)
