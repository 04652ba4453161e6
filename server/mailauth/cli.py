"""``fdbmail dkim generate|list``: make a domain's DKIM signing key, keep it in the
store (every node signs with it within ``[mailauth] dkim_key_cache_seconds``) and
print the TXT record to publish."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fdb_layers.engine.base import Engine
from fdb_layers.engine.run import transact
from server.config import load_config
from server.mailauth.dkim_keys import (
    ALGORITHMS,
    RSA,
    DkimKeyError,
    generate,
    get_key,
    list_keys,
    store_key,
    txt_record,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dkim", help="DKIM signing keys of local domains")
    sub = p.add_subparsers(dest="dkim_command", required=True)
    g = sub.add_parser("generate", help="make and store a signing key for DOMAIN; prints "
                       "the DNS TXT record to publish")
    g.add_argument("domain")
    g.add_argument("--algorithm", choices=ALGORITHMS, default=RSA,
                   help="rsa (2048 bits, RFC 6376) or ed25519 (RFC 8463); default rsa")
    g.add_argument("--selector", default="",
                   help="the selector (default: rsaYYYYMM or edYYYYMM)")
    g.set_defaults(func=lambda args: _run(args, _generate))
    q = sub.add_parser("list", help="stored keys with their TXT records")
    q.add_argument("domain", nargs="?")
    q.set_defaults(func=lambda args: _run(args, _list))


def _run(args: argparse.Namespace,
         func: Callable[[Engine, argparse.Namespace], Awaitable[int]]) -> int:
    from server.node.parts import open_store

    async def main() -> int:
        engine = await open_store(load_config(args.config))
        try:
            return await func(engine, args)
        finally:
            await engine.close()

    try:
        return asyncio.run(main())
    except DkimKeyError as e:
        print(f"fdbmail: {e}", file=sys.stderr)
        return 1


async def _generate(engine: Engine, args: argparse.Namespace) -> int:
    key = generate(args.domain, args.algorithm, args.selector)
    if await transact(engine, get_key, key.domain, key.selector) is not None:
        print(f"fdbmail: {key.domain} has a key with selector {key.selector} already; "
              "give another --selector", file=sys.stderr)
        return 1
    await transact(engine, store_key, key)
    print(f"; {key.algorithm} key for {key.domain}, selector {key.selector}: publish")
    print(txt_record(key))
    return 0


async def _list(engine: Engine, args: argparse.Namespace) -> int:
    for key in await transact(engine, list_keys, args.domain):
        created = datetime.fromtimestamp(key.created, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        print(f"; {key.domain} {key.selector} {key.algorithm} created {created}")
        print(txt_record(key))
    return 0
