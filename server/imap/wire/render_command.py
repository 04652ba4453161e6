"""Commands back to bytes: the inverse of :mod:`.parser`, as a client sends them.

Literals are synchronizing (``{n}``) unless ``literal_plus`` (``{n+}``, RFC 7888). The output
is the whole byte stream; a real client waits for the continuation before each literal's
octets. The tests use it for the round trip (render, parse, compare); a proxy or a migration
tool could use it to talk to another server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from server.imap.wire import commands as c
from server.imap.wire.fetch import render_fetch_item, render_fetch_items
from server.imap.wire.mutf7 import encode_mailbox
from server.imap.wire.values import imap_datetime
from server.imap.wire.search import render_search
from server.imap.wire.values import render_astring, render_string

__all__ = ["render_command"]

_SYNC = re.compile(rb"(~?\{\d+)\}\r\n")


class _Out:
    def __init__(self, utf8: bool, literal_plus: bool) -> None:
        self.utf8 = utf8
        self.plus = literal_plus

    def lit(self, data: bytes) -> bytes:
        return _SYNC.sub(rb"\1+}\r\n", data) if self.plus else data

    def astr(self, text: str) -> bytes:
        return self.lit(render_astring(text.encode("utf-8", "surrogateescape"), utf8=True))

    def string(self, data: bytes) -> bytes:
        return self.lit(render_string(data, utf8=True))

    def mailbox(self, name: str) -> bytes:
        return self.lit(render_astring(encode_mailbox(name, self.utf8), utf8=self.utf8))

    def mailboxes(self, names: tuple[str, ...]) -> bytes:
        return b"(" + b" ".join(self.mailbox(n) for n in names) + b")"

    def message(self, msg: c.AppendMessage) -> bytes:
        out = b""
        if msg.flags:
            out += b"(" + " ".join(msg.flags).encode() + b") "
        if msg.date is not None:
            out += _date_time(msg.date) + b" "
        head = b"~{%d}\r\n" if msg.utf8 or msg.binary else b"{%d}\r\n"
        data = self.lit(head % len(msg.data)) + msg.data
        return out + (b"UTF8 (" + data + b")" if msg.utf8 else data)


def _date_time(when: datetime) -> bytes:
    return imap_datetime(when).data


def _atoms(words: tuple[str, ...]) -> bytes:
    return b"(" + " ".join(words).encode() + b")"


def _uid(cmd: Any) -> bytes:
    return b"UID " if cmd.uid else b""


def _returns(returns: tuple[str, ...] | None) -> bytes:
    return b"" if returns is None else b" RETURN " + _atoms(returns)


def _select(o: _Out, cmd: c.Select) -> bytes:
    out = (b"EXAMINE " if cmd.readonly else b"SELECT ") + o.mailbox(cmd.mailbox)
    params = []
    if cmd.condstore:
        params.append(b"CONDSTORE")
    q = cmd.qresync
    if q is not None:
        inner = b"%d %d" % (q.uidvalidity, q.modseq)
        if q.known_uids is not None:
            inner += b" " + q.known_uids.render()
        if q.seq_match is not None:
            inner += b" (" + q.seq_match[0].render() + b" " + q.seq_match[1].render() + b")"
        params.append(b"QRESYNC (" + inner + b")")
    return out + (b" (" + b" ".join(params) + b")" if params else b"")


def _list(o: _Out, cmd: c.ListCmd) -> bytes:
    out = b"LIST "
    if cmd.selection or cmd.extended:
        out += _atoms(cmd.selection) + b" "
    out += o.mailbox(cmd.reference) + b" "
    if len(cmd.patterns) == 1:
        out += o.mailbox(cmd.patterns[0])
    else:
        out += o.mailboxes(cmd.patterns)
    if cmd.returns or cmd.status is not None:
        opts = [
            b"STATUS " + _atoms(cmd.status) if r == "STATUS" and cmd.status else r.encode()
            for r in cmd.returns
        ]
        out += b" RETURN (" + b" ".join(opts) + b")"
    return out


def _fetch(o: _Out, cmd: c.Fetch) -> bytes:
    out = _uid(cmd) + b"FETCH " + cmd.messages.render() + b" " + render_fetch_items(cmd.items)
    mods = []
    if cmd.changed_since is not None:
        mods.append(b"CHANGEDSINCE %d" % cmd.changed_since)
    if cmd.vanished:
        mods.append(b"VANISHED")
    return out + (b" (" + b" ".join(mods) + b")" if mods else b"")


def _store(o: _Out, cmd: c.Store) -> bytes:
    out = _uid(cmd) + b"STORE " + cmd.messages.render() + b" "
    if cmd.unchanged_since is not None:
        out += b"(UNCHANGEDSINCE %d) " % cmd.unchanged_since
    out += cmd.mode.encode() + b"FLAGS" + (b".SILENT" if cmd.silent else b"")
    return out + b" " + _atoms(cmd.flags)


def _search(o: _Out, cmd: c.Search) -> bytes:
    out = _uid(cmd) + b"SEARCH" + _returns(cmd.returns) + b" "
    if cmd.charset is not None:
        out += b"CHARSET " + cmd.charset.encode() + b" "
    return out + o.lit(render_search(cmd.key))


def _sort(o: _Out, cmd: c.Sort) -> bytes:
    crit = b" ".join((b"REVERSE " if r else b"") + k.encode() for r, k in cmd.criteria)
    return (
        _uid(cmd) + b"SORT" + _returns(cmd.returns) + b" (" + crit + b") "
        + cmd.charset.encode() + b" " + o.lit(render_search(cmd.key))
    )


def _id(o: _Out, cmd: c.Id) -> bytes:
    if cmd.params is None:
        return b"ID NIL"
    items = [
        o.string(k.encode("utf-8", "surrogateescape")) + b" "
        + (b"NIL" if v is None else o.string(v.encode("utf-8", "surrogateescape")))
        for k, v in cmd.params
    ]
    return b"ID (" + b" ".join(items) + b")"


def _getmetadata(o: _Out, cmd: c.GetMetadata) -> bytes:
    opts = []
    if cmd.max_size is not None:
        opts.append(b"MAXSIZE %d" % cmd.max_size)
    if cmd.depth != "0":
        opts.append(b"DEPTH " + cmd.depth.encode())
    head = b"GETMETADATA " + (b"(" + b" ".join(opts) + b") " if opts else b"")
    entries = b"(" + b" ".join(o.astr(e) for e in cmd.entries) + b")"
    return head + o.mailbox(cmd.mailbox) + b" " + entries


def _setmetadata(o: _Out, cmd: c.SetMetadata) -> bytes:
    items = []
    for name, value in cmd.entries:
        shown = b"NIL" if value is None else o.string(value)
        items.append(o.astr(name) + b" " + shown)
    return b"SETMETADATA " + o.mailbox(cmd.mailbox) + b" (" + b" ".join(items) + b")"


def _notify(o: _Out, cmd: c.Notify) -> bytes:
    if cmd.groups is None:
        return b"NOTIFY NONE"
    out = b"NOTIFY SET" + (b" STATUS" if cmd.status else b"")
    for g in cmd.groups:
        head = g.filter.encode()
        if g.mailboxes:
            head += b" " + o.mailboxes(g.mailboxes)
        if g.events == ("NONE",):
            events = b"NONE"
        else:
            shown = []
            for e in g.events:
                item = e.encode()
                if e == "MESSAGENEW" and g.fetch:
                    item += b" (" + b" ".join(render_fetch_item(f) for f in g.fetch) + b")"
                shown.append(item)
            events = b"(" + b" ".join(shown) + b")"
        out += b" (" + head + b" " + events + b")"
    return out


_RENDER: dict[type, Callable[[_Out, Any], bytes]] = {
    c.Capability: lambda o, x: b"CAPABILITY",
    c.Noop: lambda o, x: b"NOOP",
    c.Logout: lambda o, x: b"LOGOUT",
    c.StartTLS: lambda o, x: b"STARTTLS",
    c.Authenticate: lambda o, x: b"AUTHENTICATE " + x.mechanism.encode()
    + (b" " + x.initial.encode() if x.initial is not None else b""),
    c.Login: lambda o, x: b"LOGIN " + o.astr(x.user) + b" " + o.astr(x.password),
    c.Enable: lambda o, x: b"ENABLE " + " ".join(x.capabilities).encode(),
    c.Select: _select,
    c.Create: lambda o, x: b"CREATE " + o.mailbox(x.mailbox)
    + (b" (USE " + _atoms(x.special_use) + b")" if x.special_use else b""),
    c.Delete: lambda o, x: b"DELETE " + o.mailbox(x.mailbox),
    c.Rename: lambda o, x: b"RENAME " + o.mailbox(x.mailbox) + b" " + o.mailbox(x.new_name),
    c.Subscribe: lambda o, x: b"SUBSCRIBE " + o.mailbox(x.mailbox),
    c.Unsubscribe: lambda o, x: b"UNSUBSCRIBE " + o.mailbox(x.mailbox),
    c.ListCmd: _list,
    c.Lsub: lambda o, x: b"LSUB " + o.mailbox(x.reference) + b" " + o.mailbox(x.pattern),
    c.Namespace: lambda o, x: b"NAMESPACE",
    c.Status: lambda o, x: b"STATUS " + o.mailbox(x.mailbox) + b" " + _atoms(x.items),
    c.Append: lambda o, x: b"APPEND " + o.mailbox(x.mailbox)
    + b"".join(b" " + o.message(m) for m in x.messages),
    c.Replace: lambda o, x: _uid(x) + b"REPLACE %d " % x.message_id + o.mailbox(x.mailbox)
    + b" " + o.message(x.message),
    c.Idle: lambda o, x: b"IDLE",
    c.Check: lambda o, x: b"CHECK",
    c.Close: lambda o, x: b"CLOSE",
    c.Unselect: lambda o, x: b"UNSELECT",
    c.Expunge: lambda o, x: b"EXPUNGE" if x.uids is None else b"UID EXPUNGE " + x.uids.render(),
    c.Search: _search,
    c.Fetch: _fetch,
    c.Store: _store,
    c.Copy: lambda o, x: _uid(x) + b"COPY " + x.messages.render() + b" " + o.mailbox(x.mailbox),
    c.Move: lambda o, x: _uid(x) + b"MOVE " + x.messages.render() + b" " + o.mailbox(x.mailbox),
    c.Sort: _sort,
    c.Thread: lambda o, x: _uid(x) + b"THREAD " + x.algorithm.encode() + b" "
    + x.charset.encode() + b" " + o.lit(render_search(x.key)),
    c.Id: _id,
    c.Compress: lambda o, x: b"COMPRESS " + x.mechanism.encode(),
    c.Unauthenticate: lambda o, x: b"UNAUTHENTICATE",
    c.GetQuota: lambda o, x: b"GETQUOTA " + o.astr(x.root),
    c.GetQuotaRoot: lambda o, x: b"GETQUOTAROOT " + o.mailbox(x.mailbox),
    c.SetQuota: lambda o, x: b"SETQUOTA " + o.astr(x.root) + b" ("
    + b" ".join(b"%s %d" % (n.encode(), v) for n, v in x.limits) + b")",
    c.GetMetadata: _getmetadata,
    c.SetMetadata: _setmetadata,
    c.Notify: _notify,
}


def render_command(cmd: c.Command, utf8: bool = False, literal_plus: bool = False) -> bytes:
    """``tag SP command CRLF`` with literals inline."""
    body = _RENDER[type(cmd)](_Out(utf8, literal_plus), cmd)
    return cmd.tag.encode("ascii") + b" " + body + b"\r\n"
