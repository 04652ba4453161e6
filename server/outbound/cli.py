"""``fdbmail queue list|show|retry|delete``: inspect and manage the outbound queue
through the queue layer (any node's store; safe while nodes run)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fdb_layers.mail import Engine, transact
from fdb_layers.queue import (
    DELAYED,
    PENDING,
    MessageNotFound,
    QueuedMessage,
    count_queue,
    delete_message,
    get_message,
    list_messages,
    retry_now,
)
from server.config import load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("queue", help="inspect and manage the outbound queue")
    sub = p.add_subparsers(dest="queue_command", required=True)
    q = sub.add_parser("list", help="queued messages (queue id, state, age, sender, "
                       "recipients) and the totals")
    q.add_argument("--state", choices=(PENDING, DELAYED))
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=lambda args: _run(args, _list))
    for name, func, text in (
            ("show", _show, "one message: envelope, schedule and each recipient's state"),
            ("retry", _retry, "make a message due now"),
            ("delete", _delete, "take a message out of the queue undelivered (no bounce)")):
        q = sub.add_parser(name, help=text)
        q.add_argument("queue_id")
        q.set_defaults(func=lambda args, f=func: _run(args, f))


def _run(args: argparse.Namespace,
         func: Callable[[Engine, argparse.Namespace], Awaitable[int]]) -> int:
    from server.node.parts import open_store

    async def main() -> int:
        engine = await open_store(load_config(args.config))
        try:
            return await func(engine, args)
        finally:
            await engine.close()

    return asyncio.run(main())


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(m: QueuedMessage, now: float) -> str:
    rcpts = ",".join(r.address for r in m.recipients)
    return (f"{m.queue_id}  {m.state:8} {int(now - m.created_at):>7}s  "
            f"<{m.sender}>  {rcpts}  next {_when(m.due_at)}")


async def _list(engine: Engine, args: argparse.Namespace) -> int:
    now = time.time()
    for m in await transact(engine, list_messages, state=args.state, limit=args.limit):
        print(_line(m, now))
    counts = await transact(engine, count_queue)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


async def _show(engine: Engine, args: argparse.Namespace) -> int:
    m = await _get(engine, args.queue_id)
    if m is None:
        return 1
    print(f"queue id:  {m.queue_id}\nsender:    <{m.sender}>\nsize:      {m.size}\n"
          f"queued:    {_when(m.created_at)}\nnext:      {_when(m.due_at)}\n"
          f"attempts:  {m.attempts}\nleased:    {m.holder or '-'}")
    if m.envid or m.ret:
        print(f"envid:     {m.envid or '-'}\nret:       {m.ret or '-'}")
    for r in m.recipients:
        print(f"  <{r.address}>  {r.state}  attempts={r.attempts}  {r.reply}")
    return 0


async def _get(engine: Engine, queue_id: str) -> QueuedMessage | None:
    try:
        m = await transact(engine, get_message, queue_id)
    except ValueError as e:
        print(f"fdbmail: {e}", file=sys.stderr)
        return None
    if m is None:
        print(f"fdbmail: no queued message {queue_id}", file=sys.stderr)
    return m


async def _retry(engine: Engine, args: argparse.Namespace) -> int:
    try:
        if not await transact(engine, retry_now, args.queue_id, time.time()):
            print(f"fdbmail: {args.queue_id} is being delivered now", file=sys.stderr)
            return 1
    except (MessageNotFound, ValueError) as e:
        print(f"fdbmail: {e}", file=sys.stderr)
        return 1
    print(f"{args.queue_id}: due now")
    return 0


async def _delete(engine: Engine, args: argparse.Namespace) -> int:
    try:
        deleted = await transact(engine, delete_message, args.queue_id, time.time())
    except ValueError as e:
        print(f"fdbmail: {e}", file=sys.stderr)
        return 1
    if not deleted:
        print(f"fdbmail: no queued message {args.queue_id}", file=sys.stderr)
        return 1
    print(f"{args.queue_id}: deleted")
    return 0
