"""Arbitrary text from a client (login, address, domain) never breaks a query, never raises
anything but "no such thing", and never matches an entry it does not name, on SQLite and on a
real slapd."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.config import Config
from server.directory import Directory, open_directory

from .conftest import LDAP_PASSWORDS
from .test_sql import PASSWORDS, populate

_text = st.text(st.characters(codec=None, blacklist_categories=()), max_size=40)
_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(d: Directory, loop: asyncio.AbstractEventLoop, value: str, known: dict[str, str]
           ) -> None:
    run = loop.run_until_complete
    # The server's matching rules may fold case, spaces or Unicode forms (RFC 4518), so a
    # value may name an entry in another spelling: then it is that real entry, found again
    # by its own name.
    p = run(d.get_principal(value))
    assert p is None or run(d.get_principal(p.name)) == p
    for pw in set(known.values()):
        who = run(d.authenticate(value, pw))
        assert who is None or known.get(who.name) == pw
    for address in (value, f"{value}@example.com", f"{value}@example.test", f"x@{value}"):
        for r in run(d.resolve_recipient(address)):
            assert r.type == "individual"
    run(d.is_local_domain(value))


def _with_directory(config: Config, known: dict[str, str]) -> None:
    loop = asyncio.new_event_loop()
    d = loop.run_until_complete(open_directory(config))

    @_settings
    @given(_text)
    @example("*")
    @example("*)(uid=*")
    @example("' OR '1'='1")
    @example("x'; DROP TABLE accounts; --")
    @example("\x00")
    @example("%")
    def check(value: str) -> None:
        _check(d, loop, value, known)

    try:
        check()
        assert loop.run_until_complete(d.authenticate("alice", known["alice"])) is not None
    finally:
        loop.run_until_complete(d.close())
        loop.close()


def test_sqlite(sql_env: Callable[..., tuple[Path, Config]]) -> None:
    cfg, config = sql_env()
    populate(cfg)
    _with_directory(config, PASSWORDS)


def test_ldap(ldap_config: Callable[..., Config]) -> None:
    _with_directory(ldap_config(ldap_auth_method="lookup"), LDAP_PASSWORDS)
