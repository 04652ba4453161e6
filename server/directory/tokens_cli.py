"""``fdbmail token create|list|revoke USER``: an administrator's hand on app passwords
(:mod:`server.directory.apppasswords`); users manage their own at ``/auth/tokens`` on
the JMAP port.  The secret of a new token is printed once, on stdout, alone on its
line; nothing else keeps it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fdb_layers.tokens import AppToken, TooManyTokens
from server.config import load_config

from . import open_directory
from .apppasswords import AppPasswords
from .base import DirectoryError, Principal


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("token", help="app passwords (JMAP bearer tokens, also "
                              "IMAP/SMTP passwords) of a user")
    sub = p.add_subparsers(dest="token_command", required=True)
    q = sub.add_parser("create", help="make a token and print its secret (shown once)")
    q.add_argument("user", help="login name")
    q.add_argument("--name", required=True, help="what the token is for")
    q.set_defaults(func=lambda args: _run(args, _create))
    q = sub.add_parser("list", help="the user's tokens: id, created, last used, revoked, name")
    q.add_argument("user", help="login name")
    q.set_defaults(func=lambda args: _run(args, _list))
    q = sub.add_parser("revoke", help="revoke a token: it stops working at once")
    q.add_argument("user", help="login name")
    q.add_argument("token_id")
    q.set_defaults(func=lambda args: _run(args, _revoke))


Command = Callable[[AppPasswords, Principal, argparse.Namespace], Awaitable[int]]


def _run(args: argparse.Namespace, func: Command) -> int:
    from server.node.parts import open_store

    async def main() -> int:
        config = load_config(args.config)
        engine = await open_store(config)
        try:
            passwords = AppPasswords(await open_directory(config), engine)
            try:
                principal = await passwords.get_principal(args.user)
                if principal is None:
                    print(f"fdbmail: no such user: {args.user}", file=sys.stderr)
                    return 1
                return await func(passwords, principal, args)
            except DirectoryError as e:
                print(f"fdbmail: the directory is unavailable: {e}", file=sys.stderr)
                return 1
            finally:
                await passwords.close()
        finally:
            await engine.close()

    return asyncio.run(main())


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


def _line(t: AppToken) -> str:
    state = f"revoked {_when(t.revoked)}" if t.revoked else "active"
    return (f"{t.id}  created {_when(t.created)}  last used {_when(t.last_used)}  "
            f"{state}  {t.name}")


async def _create(passwords: AppPasswords, principal: Principal,
                  args: argparse.Namespace) -> int:
    try:
        token, secret = await passwords.create(principal, args.name)
    except (ValueError, TooManyTokens) as e:
        print(f"fdbmail: {e}", file=sys.stderr)
        return 1
    print(f"token {token.id} for {principal.name}: shown once, keep it now",
          file=sys.stderr)
    print(secret)
    return 0


async def _list(passwords: AppPasswords, principal: Principal,
                args: argparse.Namespace) -> int:
    for t in await passwords.tokens_of(principal):
        print(_line(t))
    return 0


async def _revoke(passwords: AppPasswords, principal: Principal,
                  args: argparse.Namespace) -> int:
    if not await passwords.revoke(principal, args.token_id):
        print(f"fdbmail: {principal.name} has no token {args.token_id}", file=sys.stderr)
        return 1
    return 0
