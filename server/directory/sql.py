"""The SQL directory: SQLite (built in) or PostgreSQL (psycopg, the ``postgres`` extra).

Every look-up runs one of the configured named queries (``sql_query_*``), always with
parameters: each ``?`` receives the looked-up value.  Blocking driver calls run on a small
pool of worker threads, each with its own connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .settings import DirectorySettings

from .address import (
    canonical_domain,
    domain_forms,
    lookup_stages,
    parse_address,
    principal_emails,
)
from .base import DirectoryError, Principal, PrincipalType
from .passwords import dummy_verify, verify_password
from .resolve import expand, resolve_recipient
from .schema import create_sqlite_schema
from .sqlite_memo import PasswordVersionMemo
from .threadconns import ThreadConnections

log = logging.getLogger(__name__)

QUERY_NAMES = ("name", "members", "group_members", "recipients", "emails", "verify", "expand",
               "domains", "domain_list")

T = TypeVar("T")
Row = dict[str, Any]


def prepare_query(query: str, driver: str) -> tuple[str, int]:
    """The query text for the driver and its number of placeholders.  Placeholders are written
    ``?``; for psycopg they become ``%s`` (and a literal ``%`` becomes ``%%``).  A ``?`` inside
    a quoted string or identifier is not a placeholder."""
    out: list[str] = []
    count = 0
    quote = ""
    for ch in query:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            count += 1
            out.append("%s" if driver == "postgresql" else "?")
            continue
        out.append("%%" if ch == "%" and driver == "postgresql" else ch)
    return "".join(out), count


def sqlite_path(settings: DirectorySettings, data_dir: Path) -> Path:
    configured = str(settings.sql_path)
    return Path(configured).expanduser() if configured else data_dir / "directory.sqlite3"


def connect(settings: DirectorySettings, data_dir: Path) -> Any:
    """A DB-API connection for the configured driver (blocking; call from a worker thread)."""
    timeout = float(settings.sql_timeout)
    if settings.sql_driver == "postgresql":
        try:
            psycopg = importlib.import_module("psycopg")
        except ImportError:
            raise DirectoryError("sql_driver = 'postgresql' needs psycopg: install "
                                 "fdbmail[postgres]") from None
        return psycopg.connect(str(settings.sql_dsn), autocommit=True,
                               connect_timeout=max(1, int(timeout)))
    path = sqlite_path(settings, data_dir)
    if not path.exists():
        if not settings.sql_create_schema:
            raise DirectoryError(f"SQLite directory {path} does not exist")
        create_sqlite_schema(path)
        log.info("created the sample directory schema in %s", path)
    return sqlite3.connect(path, timeout=timeout, check_same_thread=False,
                           isolation_level=None)


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        errors.append(importlib.import_module("psycopg").Error)
    except ImportError:
        pass
    return tuple(errors)


def _storable(text: str) -> bool:
    """Whether a database could hold ``text`` at all: valid Unicode without NUL (PostgreSQL
    text cannot hold NUL).  Anything else is no such name, not a database error."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SqlDirectory:
    """A :class:`~server.directory.base.Directory` over the named SQL queries."""

    backend = "sql"

    def __init__(self, settings: DirectorySettings, data_dir: Path):
        self.driver = str(settings.sql_driver)
        self.separator = str(settings.subaddress_separator)
        self.fold_local = not settings.case_sensitive_local_part
        self.allow_plaintext = bool(settings.allow_plaintext_passwords)
        self.password_scheme = str(settings.password_scheme)
        self.queries = {name: prepare_query(getattr(settings, f"sql_query_{name}"), self.driver)
                        for name in QUERY_NAMES}
        self._connect: Callable[[], Any] = lambda: connect(settings, data_dir)
        self._executor = ThreadPoolExecutor(max_workers=max(1, int(settings.sql_pool_size)),
                                            thread_name_prefix="directory-sql")
        self._conns: ThreadConnections[Any] = ThreadConnections(lambda conn: conn.close())
        self._errors = _driver_errors()
        self._closed = False
        # SQLite: password versions reused while nothing was committed to the file
        # (.sqlite_memo); PostgreSQL is asked every time
        self._memo = PasswordVersionMemo(sqlite_path(settings, data_dir)) \
            if self.driver != "postgresql" else None

    # -- plumbing ------------------------------------------------------------------------

    def _conn(self) -> Any:
        return self._conns.get("conn", self._connect)

    def _drop_conn(self) -> None:
        self._conns.drop("conn")

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise DirectoryError("the directory is closed")

        def guarded() -> T:
            try:
                return fn()
            except self._errors as e:
                self._drop_conn()   # a broken connection is not reused
                log.error("SQL directory query failed: %s", e.__class__.__name__, exc_info=True)
                raise DirectoryError(f"SQL directory query failed: {e}") from e

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    def _rows(self, query: str, value: str) -> list[Row]:
        text, count = self.queries[query]
        cur = self._conn().cursor()
        try:
            cur.execute(text, (value,) * count)
            columns = [d[0].lower() for d in cur.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

    def _column(self, query: str, value: str) -> list[str]:
        out: list[str] = []
        for row in self._rows(query, value):
            first = next(iter(row.values()), None)
            if first is not None and str(first) not in out:
                out.append(str(first))
        return out

    # -- blocking look-ups (worker thread) ---------------------------------------------

    def _head(self, name: str) -> tuple[Row, str, PrincipalType, str] | None:
        """The 'name' query's row of ``name``: (row, name, type, stored secret)."""
        rows = self._rows("name", name)
        if not rows:
            return None
        row = rows[0]
        kind: PrincipalType = "group" if str(row.get("type", "")).lower() in (
            "group", "list") else "individual"
        return row, str(row.get("name") or name), kind, str(row.get("secret") or "")

    def _account(self, name: str) -> tuple[Principal, str] | None:
        head = self._head(name)
        if head is None:
            return None
        row, real_name, kind, secret = head
        principal = Principal(
            id=str(row.get("id") or real_name),
            name=real_name,
            type=kind,
            emails=principal_emails(self._column("emails", real_name),
                                    fold_local=self.fold_local),
            quota=int(row.get("quota") or 0),
            member_of=tuple(self._column("members", real_name)),
            description=str(row.get("description") or ""),
        )
        return principal, secret

    def _owners(self, keys: Sequence[str]) -> list[str]:
        names: list[str] = []
        for key in keys:
            for name in self._column("recipients", key):
                if name not in names:
                    names.append(name)
        return names

    def _entry(self, name: str) -> tuple[Principal, list[str]] | None:
        found = self._account(name)
        if found is None:
            return None
        principal = found[0]
        members = self._column("group_members", principal.name) if principal.type == "group" \
            else []
        return principal, members

    def _login_name(self, login: str) -> str | None:
        """The account name a login that is no account name stands for: the address of
        exactly one account."""
        if "@" in login:
            address = parse_address(login, fold_local=self.fold_local)
            if address is not None:
                owners = self._owners(lookup_stages(address, "")[0])
                if len(owners) == 1:
                    return owners[0]
        return None

    def _login_account(self, login: str) -> tuple[Principal, str] | None:
        found = self._account(login)
        if found is None and (name := self._login_name(login)) is not None:
            found = self._account(name)
        return found

    def _login_version(self, login: str) -> str | None:
        """:meth:`password_version`'s look-up: the 'name' query alone (no emails, no
        memberships: the version covers only the id and the stored secret)."""
        head = self._head(login)
        if head is None and (name := self._login_name(login)) is not None:
            head = self._head(name)
        if head is None or not head[3] or head[2] != "individual":
            return None
        row, real_name, _, secret = head
        principal_id = str(row.get("id") or real_name)
        return hashlib.sha256(f"{principal_id}\0{secret}".encode()).hexdigest()

    # -- the Directory protocol ----------------------------------------------------------

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        # Every refusal costs one hash check: a login that does not exist, an account
        # without a password, a group and a wrong password look alike (issue 10, item 16).
        found = None
        if login and secret and _storable(login):
            found = await self._run(lambda: self._login_account(login))
        if found is None or not found[1] or found[0].type != "individual":
            await asyncio.to_thread(dummy_verify, self.password_scheme)
            return None
        principal, stored = found
        ok = await asyncio.to_thread(verify_password, stored, secret,
                                     allow_plaintext=self.allow_plaintext)
        return principal if ok else None

    async def password_version(self, login: str) -> str | None:
        """A digest of the stored password hash (:class:`PasswordVersions`); one look-up,
        no hashing of a secret.  SQLite: the one looked up last while nothing was
        committed to the file since (:mod:`.sqlite_memo`), without the worker thread."""
        if not login or not _storable(login):
            return None
        memo = self._memo
        stamp = None if memo is None or self._closed else memo.look()
        if stamp is not None:
            assert memo is not None
            hit, version = memo.get(login, stamp)
            if hit:
                return version
        version = await self._run(lambda: self._login_version(login))
        if stamp is not None:
            assert memo is not None
            memo.put(login, stamp, version)
        return version

    async def get_principal(self, name: str) -> Principal | None:
        if not _storable(name):
            return None
        found = await self._run(lambda: self._account(name))
        return found[0] if found else None

    async def resolve_recipient(self, address: str) -> list[Principal]:
        parsed = parse_address(address, fold_local=self.fold_local)
        if parsed is None:
            return []

        async def find_owners(keys: Sequence[str]) -> list[str]:
            return await self._run(lambda: self._owners(keys))

        async def load(name: str) -> tuple[Principal, list[str]] | None:
            return await self._run(lambda: self._entry(name))

        return await resolve_recipient(parsed, self.separator, find_owners, load)

    async def is_local_domain(self, domain: str) -> bool:
        canon = canonical_domain(domain)
        if canon is None:
            return False
        forms = domain_forms(canon)
        return await self._run(lambda: any(self._rows("domains", d) for d in forms))

    async def list_domains(self) -> list[str]:
        raw = await self._run(lambda: self._column("domain_list", ""))
        domains: list[str] = []
        for d in raw:
            canon = canonical_domain(d)
            if canon and canon not in domains:
                domains.append(canon)
        return sorted(domains)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._conns.close_all()
        if self._memo is not None:
            self._memo.close()

    # -- SMTP VRFY / EXPN (outside the Directory protocol) -------------------------------

    async def verify_address(self, text: str) -> list[str]:
        if not _storable(text):
            return []
        return await self._run(lambda: self._column("verify", text.lower()))

    async def expand_list(self, address: str) -> list[str]:
        parsed = parse_address(address, fold_local=self.fold_local)
        if parsed is None:
            return []
        keys = lookup_stages(parsed, "")[0]
        return await self._run(lambda: [a for k in keys for a in self._column("expand", k)])

    async def expand_group(self, names: Sequence[str]) -> list[Principal]:
        """The individual members of groups, by name (used by tests and tools)."""
        return await expand(list(names), lambda n: self._run(lambda: self._entry(n)))
