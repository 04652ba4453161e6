"""``fdbmail directory``: manage accounts, passwords, addresses, groups and domains in the SQL
directory's sample schema (SQLite or PostgreSQL).  An LDAP directory is managed with LDAP
tools.  Passwords are read from a prompt or from standard input (``--password-stdin``), never
from the command line, and stored hashed."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from server.config import Config, load_config

from .address import canonical_domain, parse_address
from .base import DirectoryError
from .passwords import hash_password
from .schema import create_sqlite_schema
from .settings import DirectorySettings
from .sql import connect, prepare_query, sqlite_path


class CommandError(Exception):
    """A refusal to report on stderr (exit status 1)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("directory", help="manage the SQL directory (accounts, "
                              "passwords, addresses, groups, domains)")
    sub = p.add_subparsers(dest="directory_command", required=True)

    def cmd(name: str, func: Callable[[argparse.Namespace, Config], int], help: str
            ) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help)
        q.set_defaults(func=lambda args: _run(func, args))
        return q

    cmd("init", _init, "create the sample schema (SQLite)")
    q = cmd("add", _add, "add an account or a group")
    q.add_argument("name")
    q.add_argument("--type", choices=("individual", "group"), default="individual")
    q.add_argument("--description", default="")
    q.add_argument("--quota", type=int, default=0, help="bytes; 0 = unlimited")
    q.add_argument("--email", action="append", default=[],
                   help="address (repeatable); the first is the primary one")
    _password_options(q, "set a password (prompted unless --password-stdin)")
    q = cmd("remove", _remove, "remove an account or group with its addresses and memberships")
    q.add_argument("name")
    cmd("list", _list, "list accounts and groups")
    q = cmd("show", _show, "show one principal as the directory answers it")
    q.add_argument("name")
    q = cmd("passwd", _passwd, "set an account's password")
    q.add_argument("name")
    _password_options(q, None)
    q = cmd("add-address", _add_address, "give an account an address, alias or list address")
    q.add_argument("name")
    q.add_argument("address", help="local@domain, or @domain for a catch-all")
    q.add_argument("--type", choices=("primary", "alias", "list"), default="alias")
    q = cmd("remove-address", _remove_address, "take an address from an account")
    q.add_argument("name")
    q.add_argument("address")
    q = cmd("add-member", _add_member, "add an account (or group) to a group")
    q.add_argument("group")
    q.add_argument("name")
    q = cmd("remove-member", _remove_member, "remove an account (or group) from a group")
    q.add_argument("group")
    q.add_argument("name")
    cmd("domains", _domains, "list local domains")
    q = cmd("add-domain", _add_domain, "add a local domain (without an address)")
    q.add_argument("domain")
    q = cmd("remove-domain", _remove_domain, "remove a domain from the domains table")
    q.add_argument("domain")
    q = cmd("resolve", _resolve, "show who receives mail for an address")
    q.add_argument("address")


def _password_options(q: argparse.ArgumentParser, flag_help: str | None) -> None:
    if flag_help is not None:
        q.add_argument("--password", action="store_true", help=flag_help)
    q.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    q.add_argument("--scheme", choices=("bcrypt", "argon2"), default=None,
                   help="hash scheme (default: [directory] password_scheme)")


def _run(func: Callable[[argparse.Namespace, Config], int], args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        return func(args, config)
    except (CommandError, DirectoryError) as e:
        print(f"fdbmail directory: {e}", file=sys.stderr)
        return 1


# -- database access -------------------------------------------------------------------------

class _Db:
    def __init__(self, conn: Any, driver: str):
        self.conn = conn
        self.driver = driver

    def execute(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        text, count = prepare_query(sql, self.driver)
        if count != len(params):
            raise AssertionError(f"{count} placeholders, {len(params)} parameters")
        cur = self.conn.cursor()
        try:
            cur.execute(text, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def exists(self, sql: str, *params: object) -> bool:
        return bool(self.execute(sql, *params))


@contextmanager
def _db(config: Config) -> Iterator[_Db]:
    settings = config.get(DirectorySettings)
    if settings.type != "sql":
        raise CommandError("the directory is LDAP: manage it with LDAP tools")
    conn = connect(settings, config.data_dir)
    driver = str(settings.sql_driver)
    if driver == "sqlite":
        conn.isolation_level = "DEFERRED"
    else:
        conn.autocommit = False
    try:
        yield _Db(conn, driver)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _address(config: Config, text: str) -> str:
    if text.startswith("@"):
        domain = canonical_domain(text[1:])
        if domain is None:
            raise CommandError(f"not a domain: {text[1:]!r}")
        return "@" + domain
    fold_local = not config.get(DirectorySettings).case_sensitive_local_part
    parsed = parse_address(text, fold_local=fold_local)
    if parsed is None:
        raise CommandError(f"not a mail address: {text!r}")
    return str(parsed)


def _require_account(db: _Db, name: str) -> str:
    rows = db.execute("SELECT type FROM accounts WHERE name = ?", name)
    if not rows:
        raise CommandError(f"no account {name!r}")
    return str(rows[0][0])


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        secret = line.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to prompt for a password: use --password-stdin")
        secret = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != secret:
            raise CommandError("the passwords differ")
    if not secret:
        raise CommandError("empty password")
    return secret


def _hash(args: argparse.Namespace, config: Config, secret: str) -> str:
    scheme = args.scheme or str(config.get(DirectorySettings).password_scheme)
    try:
        return hash_password(secret, scheme)
    except ValueError as e:
        raise CommandError(str(e)) from None


# -- commands --------------------------------------------------------------------------------

def _init(args: argparse.Namespace, config: Config) -> int:
    settings = config.get(DirectorySettings)
    if settings.sql_driver != "sqlite":
        raise CommandError("create the PostgreSQL schema yourself (server/directory/schema.py)")
    path = sqlite_path(settings, config.data_dir)
    create_sqlite_schema(path)
    print(f"schema ready in {path}")
    return 0


def _add(args: argparse.Namespace, config: Config) -> int:
    addresses = [_address(config, e) for e in args.email]
    if args.quota < 0:
        raise CommandError("the quota cannot be negative")
    secret = None
    if args.password or args.password_stdin:
        secret = _hash(args, config, _read_password(args))
    with _db(config) as db:
        if db.exists("SELECT 1 FROM accounts WHERE name = ?", args.name):
            raise CommandError(f"{args.name!r} exists already")
        db.execute("INSERT INTO accounts (name, secret, description, type, quota, active) "
                   "VALUES (?, ?, ?, ?, ?, true)",
                   args.name, secret, args.description, args.type, args.quota)
        for i, address in enumerate(addresses):
            db.execute("INSERT INTO emails (name, address, type) VALUES (?, ?, ?)",
                       args.name, address, "primary" if i == 0 else "alias")
    print(f"added {args.type} {args.name}")
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    with _db(config) as db:
        _require_account(db, args.name)
        db.execute("DELETE FROM emails WHERE name = ?", args.name)
        db.execute("DELETE FROM group_members WHERE name = ? OR member_of = ?",
                   args.name, args.name)
        db.execute("DELETE FROM accounts WHERE name = ?", args.name)
    print(f"removed {args.name}")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    with _db(config) as db:
        accounts = db.execute("SELECT name, type, quota, description FROM accounts "
                              "ORDER BY name")
        for name, kind, quota, description in accounts:
            emails = [r[0] for r in db.execute(
                "SELECT address FROM emails WHERE name = ? ORDER BY type DESC, address", name)]
            print("\t".join([name, kind, str(quota), ",".join(emails), description or ""]))
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    from . import open_directory

    async def show() -> int:
        directory = await open_directory(config)
        try:
            principal = await directory.get_principal(args.name)
        finally:
            await directory.close()
        if principal is None:
            raise CommandError(f"no principal {args.name!r}")
        for field in ("id", "name", "type", "emails", "quota", "member_of", "description"):
            value = getattr(principal, field)
            print(f"{field}: {', '.join(value) if isinstance(value, tuple) else value}")
        return 0

    return asyncio.run(show())


def _passwd(args: argparse.Namespace, config: Config) -> int:
    secret = _hash(args, config, _read_password(args))
    with _db(config) as db:
        _require_account(db, args.name)
        db.execute("UPDATE accounts SET secret = ? WHERE name = ?", secret, args.name)
    print(f"password of {args.name} set")
    return 0


def _add_address(args: argparse.Namespace, config: Config) -> int:
    address = _address(config, args.address)
    with _db(config) as db:
        _require_account(db, args.name)
        if db.exists("SELECT 1 FROM emails WHERE name = ? AND address = ?", args.name, address):
            raise CommandError(f"{args.name} has {address} already")
        if args.type == "primary":
            db.execute("UPDATE emails SET type = 'alias' WHERE name = ? AND type = 'primary'",
                       args.name)
        db.execute("INSERT INTO emails (name, address, type) VALUES (?, ?, ?)",
                   args.name, address, args.type)
    print(f"{address} ({args.type}) added to {args.name}")
    return 0


def _remove_address(args: argparse.Namespace, config: Config) -> int:
    address = _address(config, args.address)
    with _db(config) as db:
        if not db.exists("SELECT 1 FROM emails WHERE name = ? AND address = ?",
                         args.name, address):
            raise CommandError(f"{args.name} has no address {address}")
        db.execute("DELETE FROM emails WHERE name = ? AND address = ?", args.name, address)
    print(f"{address} removed from {args.name}")
    return 0


def _add_member(args: argparse.Namespace, config: Config) -> int:
    with _db(config) as db:
        if _require_account(db, args.group) != "group":
            raise CommandError(f"{args.group!r} is not a group")
        _require_account(db, args.name)
        if db.exists("SELECT 1 FROM group_members WHERE name = ? AND member_of = ?",
                     args.name, args.group):
            raise CommandError(f"{args.name} is in {args.group} already")
        db.execute("INSERT INTO group_members (name, member_of) VALUES (?, ?)",
                   args.name, args.group)
    print(f"{args.name} added to {args.group}")
    return 0


def _remove_member(args: argparse.Namespace, config: Config) -> int:
    with _db(config) as db:
        if not db.exists("SELECT 1 FROM group_members WHERE name = ? AND member_of = ?",
                         args.name, args.group):
            raise CommandError(f"{args.name} is not in {args.group}")
        db.execute("DELETE FROM group_members WHERE name = ? AND member_of = ?",
                   args.name, args.group)
    print(f"{args.name} removed from {args.group}")
    return 0


def _domains(args: argparse.Namespace, config: Config) -> int:
    from . import open_directory

    async def domains() -> list[str]:
        directory = await open_directory(config)
        try:
            return await directory.list_domains()
        finally:
            await directory.close()

    for domain in asyncio.run(domains()):
        print(domain)
    return 0


def _add_domain(args: argparse.Namespace, config: Config) -> int:
    domain = canonical_domain(args.domain)
    if domain is None:
        raise CommandError(f"not a domain: {args.domain!r}")
    with _db(config) as db:
        if db.exists("SELECT 1 FROM domains WHERE name = ?", domain):
            raise CommandError(f"{domain} exists already")
        db.execute("INSERT INTO domains (name) VALUES (?)", domain)
    print(f"added domain {domain}")
    return 0


def _remove_domain(args: argparse.Namespace, config: Config) -> int:
    domain = canonical_domain(args.domain)
    with _db(config) as db:
        if domain is None or not db.exists("SELECT 1 FROM domains WHERE name = ?", domain):
            raise CommandError(f"no domain {args.domain!r} in the domains table")
        db.execute("DELETE FROM domains WHERE name = ?", domain)
    print(f"removed domain {domain}")
    return 0


def _resolve(args: argparse.Namespace, config: Config) -> int:
    from . import open_directory

    async def resolve() -> int:
        directory = await open_directory(config)
        try:
            found = await directory.resolve_recipient(args.address)
        finally:
            await directory.close()
        if not found:
            print(f"no recipient {args.address}", file=sys.stderr)
            return 1
        for p in found:
            print(f"{p.name}\t{p.emails[0] if p.emails else ''}")
        return 0

    return asyncio.run(resolve())
