"""The LDAP directory (ldap3): principals, groups and addresses found with configurable filters
and attribute names; passwords checked by binding as the user or by comparing the stored hash.

ldap3 blocks, so every operation runs on a small pool of worker threads, each holding one
service connection (bound as ``ldap_bind_dn``), reopened once if the server dropped it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.dn import parse_dn

from server.config import SettingValue

from .settings import DirectorySettings

from .address import (
    canonical_domain,
    domain_forms,
    lookup_stages,
    parse_address,
    principal_emails,
)
from .base import DirectoryError, Principal
from .ldapfilter import fill_filter
from .passwords import dummy_verify, verify_password
from .resolve import expand, resolve_recipient
from .threadconns import ThreadConnections

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors after which a connection is dropped and the operation tried once more.
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPSocketReceiveError,
    ldap_errors.LDAPSocketSendError,
    ldap_errors.LDAPSessionTerminatedByServerError,
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPSocketCloseError,
)
_RESULT_OK = (0, 4)     # success, sizeLimitExceeded (partial answers are fine for us)
_NO_SUCH_OBJECT = 32
_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class _Entry:
    dn: str
    attrs: dict[str, list[bytes]]   # attribute names in lower case

    def values(self, names: Sequence[str]) -> list[str]:
        out: list[str] = []
        for name in names:
            for raw in self.attrs.get(name.lower(), ()):
                out.append(raw.decode("utf-8", "replace"))
        return out

    def first(self, names: Sequence[str]) -> str:
        found = self.values(names)
        return found[0] if found else ""

    def identifier(self, name: str) -> str:
        """A stable id from a text or binary attribute (Active Directory's objectGUID is
        binary: it becomes hex rather than lossy text)."""
        for raw in self.attrs.get(name.lower(), ()):
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.hex()
        return ""


def _strings(value: SettingValue) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class LdapDirectory:
    """A :class:`~server.directory.base.Directory` over an LDAP server."""

    backend = "ldap"

    def __init__(self, settings: DirectorySettings):
        self.s = settings
        self.urls = _strings(settings.ldap_url)
        self.base = str(settings.ldap_base_dn)
        self.timeout = float(settings.ldap_timeout)
        self.separator = str(settings.subaddress_separator)
        self.fold_local = not settings.case_sensitive_local_part
        self.allow_plaintext = bool(settings.allow_plaintext_passwords)
        self.auth_by_bind = settings.ldap_auth_method == "bind"
        self.a_id = str(settings.ldap_attr_id)
        self.a_name = _strings(settings.ldap_attr_name)
        self.a_class = str(settings.ldap_attr_class)
        self.group_classes = {c.lower() for c in _strings(settings.ldap_group_classes)}
        self.a_email = _strings(settings.ldap_attr_email)
        self.a_alias = _strings(settings.ldap_attr_email_alias)
        self.a_secret = _strings(settings.ldap_attr_secret)
        self.a_description = _strings(settings.ldap_attr_description)
        self.a_member_of = _strings(settings.ldap_attr_member_of)
        self.a_members = _strings(settings.ldap_attr_members)
        self.a_member_names = _strings(settings.ldap_attr_member_names)
        self.a_quota = _strings(settings.ldap_attr_quota)
        self.attributes = sorted({
            *([self.a_id] if self.a_id else []), *self.a_name, self.a_class, *self.a_email,
            *self.a_alias, *self.a_description, *self.a_member_of, *self.a_members,
            *self.a_member_names, *self.a_quota,
        })
        self._executor = ThreadPoolExecutor(max_workers=max(1, int(settings.ldap_pool_size)),
                                            thread_name_prefix="directory-ldap")
        self._conns: ThreadConnections[ldap3.Connection] = ThreadConnections(
            lambda conn: conn.unbind())
        self._closed = False

    # -- connections (worker threads) ------------------------------------------------------

    def _tls(self) -> ldap3.Tls:
        ca_file = str(self.s.ldap_tls_ca_file) or None
        verify = ssl.CERT_REQUIRED if self.s.ldap_tls_verify else ssl.CERT_NONE
        return ldap3.Tls(validate=verify, ca_certs_file=ca_file,
                         version=ssl.PROTOCOL_TLS_CLIENT)

    def _open(self, user: str | None, password: str | None) -> ldap3.Connection:
        """A bound connection to the first server of ``ldap_url`` that answers; raises
        LDAPBindError at once if the credentials are refused (another server would refuse
        them too), the last server's error if none answers."""
        auto_bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.s.ldap_starttls \
            else ldap3.AUTO_BIND_NO_TLS
        tls = self._tls()
        failure: ldap_errors.LDAPException | None = None
        for url in self.urls:
            server = ldap3.Server(url, tls=tls, connect_timeout=self.timeout,
                                  get_info=ldap3.NONE)
            try:
                return ldap3.Connection(
                    server, user=user, password=password, auto_bind=auto_bind,
                    client_strategy=ldap3.SYNC, read_only=True,
                    receive_timeout=max(1, math.ceil(self.timeout)),
                    auto_escape=False, auto_encode=False, raise_exceptions=False,
                    auto_referrals=False, check_names=False,
                )
            except ldap_errors.LDAPBindError:
                raise
            except ldap_errors.LDAPException as e:
                log.warning("LDAP server %s unavailable: %s", url, e.__class__.__name__)
                failure = e
        raise failure or ldap_errors.LDAPSocketOpenError("no LDAP server configured")

    def _service_password(self) -> str:
        path = str(self.s.ldap_bind_password_file)
        if not path:
            return str(self.s.ldap_bind_password)
        try:
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as e:
            raise DirectoryError(f"cannot read ldap_bind_password_file: {e.strerror}") from None

    def _conn(self) -> ldap3.Connection:
        return self._conns.get("conn", self._open_service)

    def _open_service(self) -> ldap3.Connection:
        bind_dn = str(self.s.ldap_bind_dn) or None
        password = self._service_password() if bind_dn else None
        try:
            return self._open(bind_dn, password)
        except ldap_errors.LDAPBindError as e:
            raise DirectoryError(f"LDAP service bind refused: {e}") from None

    def _drop_conn(self) -> None:
        self._conns.drop("conn")

    def _search(self, search_filter: str, *, base: str | None = None,
                scope: str = ldap3.SUBTREE, attributes: Sequence[str] | None = None,
                size_limit: int = 0) -> list[_Entry]:
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.search(base or self.base, search_filter, search_scope=scope,
                            attributes=list(attributes or self.attributes),
                            size_limit=size_limit, time_limit=max(1, int(self.timeout)))
            except _CONNECTION_ERRORS:
                self._drop_conn()
                if attempt == 2:
                    raise
                continue
            code = conn.result.get("result", 0) if conn.result else 0
            if code == _NO_SUCH_OBJECT:
                return []
            if code not in _RESULT_OK:
                raise DirectoryError(f"LDAP search failed: {conn.result.get('description')} "
                                     f"({code})")
            entries = []
            for item in conn.response or ():
                if item.get("type") == "searchResEntry":
                    attrs = {k.lower(): list(v) for k, v in item["raw_attributes"].items()}
                    entries.append(_Entry(item["dn"], attrs))
            return entries
        raise AssertionError("unreachable")

    def _search_paged(self, search_filter: str, attributes: Sequence[str]) -> list[_Entry]:
        """Every matching entry, in pages (RFC 2696), past the server's size limit."""
        conn = self._conn()
        entries: list[_Entry] = []
        try:
            pages = conn.extend.standard.paged_search(
                self.base, search_filter, search_scope=ldap3.SUBTREE,
                attributes=list(attributes), paged_size=_PAGE_SIZE, generator=True)
            for item in pages:
                if item.get("type") == "searchResEntry":
                    attrs = {k.lower(): list(v) for k, v in item["raw_attributes"].items()}
                    entries.append(_Entry(item["dn"], attrs))
        except _CONNECTION_ERRORS:
            self._drop_conn()
            raise
        return entries

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise DirectoryError("the directory is closed")

        def guarded() -> T:
            try:
                return fn()
            except ldap_errors.LDAPException as e:
                self._drop_conn()
                log.error("LDAP directory operation failed: %s", e.__class__.__name__,
                          exc_info=True)
                raise DirectoryError(f"LDAP directory operation failed: {e}") from e

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    # -- entries to principals (worker threads) -----------------------------------------

    def _is_group(self, entry: _Entry) -> bool:
        return any(c.lower() in self.group_classes for c in entry.values([self.a_class]))

    def _emails(self, entry: _Entry) -> tuple[str, ...]:
        return principal_emails(entry.values(self.a_email) + entry.values(self.a_alias),
                                fold_local=self.fold_local)

    def _groups_of(self, entry: _Entry) -> tuple[str, ...]:
        names: list[str] = []

        def add(groups: list[_Entry]) -> None:
            for group in groups:
                name = group.first(self.a_name)
                if name and name not in names:
                    names.append(name)

        by_dn = str(self.s.ldap_filter_groups)
        if by_dn:
            add(self._search(fill_filter(by_dn, entry.dn), attributes=self.a_name))
        else:
            for dn in entry.values(self.a_member_of):
                rdn = parse_dn(dn)[0][1] if dn else ""
                if rdn and rdn not in names:
                    names.append(rdn)
        by_name = str(self.s.ldap_filter_groups_by_name)
        login = entry.first(self.a_name)
        if by_name and login:
            add(self._search(fill_filter(by_name, login), attributes=self.a_name))
        return tuple(names)

    def _members(self, group: _Entry) -> list[str]:
        """Refs (lower-case DNs) of a group's members, named by DN or by login name."""
        refs = [m.lower() for m in group.values(self.a_members)]
        for name in group.values(self.a_member_names):
            for entry in self._find_name(name):
                refs.append(entry.dn.lower())
        return refs

    def _loader(self, seen: dict[str, _Entry]
                ) -> Callable[[str], Awaitable[tuple[Principal, list[str]] | None]]:
        """The resolver's ``load``: a principal and its members by ref, reusing the entries
        a search already returned."""
        def load(ref: str) -> tuple[Principal, list[str]] | None:
            entry = seen.get(ref) or self._read(ref)
            if entry is None:
                return None
            members = self._members(entry) if self._is_group(entry) else []
            return self._principal(entry), members

        async def load_entry(ref: str) -> tuple[Principal, list[str]] | None:
            return await self._run(lambda: load(ref))
        return load_entry

    def _principal(self, entry: _Entry) -> Principal:
        quota = entry.first(self.a_quota)
        return Principal(
            id=(entry.identifier(self.a_id) if self.a_id else "") or entry.dn,
            name=entry.first(self.a_name),
            type="group" if self._is_group(entry) else "individual",
            emails=self._emails(entry),
            quota=int(quota) if quota.isdigit() else 0,
            member_of=self._groups_of(entry),
            description=entry.first(self.a_description),
        )

    def _find_name(self, name: str, extra: Sequence[str] = ()) -> list[_Entry]:
        try:
            search_filter = fill_filter(str(self.s.ldap_filter_name), name)
        except ValueError:
            return []
        return self._search(search_filter, attributes=[*self.attributes, *extra], size_limit=2)

    def _find_address(self, keys: Sequence[str], extra: Sequence[str] = ()) -> list[_Entry]:
        found: dict[str, _Entry] = {}
        for key in keys:
            try:
                search_filter = fill_filter(str(self.s.ldap_filter_email), key)
            except ValueError:
                continue
            for entry in self._search(search_filter, attributes=[*self.attributes, *extra]):
                found.setdefault(entry.dn.lower(), entry)
        return list(found.values())

    def _read(self, dn: str) -> _Entry | None:
        entries = self._search("(objectClass=*)", base=dn, scope=ldap3.BASE)
        return entries[0] if entries else None

    def _login_entry(self, login: str) -> _Entry | None:
        extra = [] if self.auth_by_bind else self.a_secret
        entries = self._find_name(login, extra)
        if not entries and "@" in login:
            address = parse_address(login, fold_local=self.fold_local)
            if address is not None:
                entries = self._find_address(lookup_stages(address, "")[0], extra)
        if len(entries) != 1:
            return None     # unknown or ambiguous login
        return entries[0]

    def _bind_as(self, dn: str, secret: str) -> bool:
        """Whether the server accepts ``secret`` for ``dn``.  Each worker thread keeps one
        connection for these binds only (never used to search, so a user's rights never leak
        into look-ups) and rebinds it, saving a TCP and TLS handshake per login."""
        for attempt in (1, 2):
            # anonymous until the first rebind
            conn = self._conns.get("auth_conn", lambda: self._open(None, None))
            try:
                return bool(conn.rebind(user=dn, password=secret))
            except ldap_errors.LDAPBindError:
                return False
            except _CONNECTION_ERRORS:
                self._conns.drop("auth_conn")
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _check_secret(self, entry: _Entry, secret: str) -> bool:
        if self.auth_by_bind:
            return self._bind_as(entry.dn, secret)
        return any(verify_password(stored, secret, allow_plaintext=self.allow_plaintext)
                   for stored in entry.values(self.a_secret))

    def _authenticate(self, login: str, secret: str) -> Principal | None:
        entry = self._login_entry(login)
        if entry is None or self._is_group(entry) or (
                not self.auth_by_bind and not entry.values(self.a_secret)):
            if not self.auth_by_bind:
                dummy_verify()      # as long as comparing a hash here; a bind is quick
            return None
        if not self._check_secret(entry, secret):
            return None
        return self._principal(entry)

    # -- the Directory protocol ----------------------------------------------------------

    async def authenticate(self, login: str, secret: str) -> Principal | None:
        # RFC 4513 section 5.1.2: a bind with an empty password is an unauthenticated bind
        # that servers accept; it must never count as a login.
        if not login or not secret:
            return None
        return await self._run(lambda: self._authenticate(login, secret))

    async def get_principal(self, name: str) -> Principal | None:
        def get() -> Principal | None:
            entries = self._find_name(name)
            return self._principal(entries[0]) if len(entries) == 1 else None
        return await self._run(get)

    async def resolve_recipient(self, address: str) -> list[Principal]:
        parsed = parse_address(address, fold_local=self.fold_local)
        if parsed is None:
            return []
        seen: dict[str, _Entry] = {}

        def owners(keys: Sequence[str]) -> list[str]:
            entries = self._find_address(keys)
            for e in entries:
                seen[e.dn.lower()] = e
            return [e.dn.lower() for e in entries]

        async def find_owners(keys: Sequence[str]) -> list[str]:
            return await self._run(lambda: owners(keys))

        return await resolve_recipient(parsed, self.separator, find_owners, self._loader(seen))

    async def is_local_domain(self, domain: str) -> bool:
        canon = canonical_domain(domain)
        if canon is None:
            return False
        template = str(self.s.ldap_filter_domains)

        def check() -> bool:
            return any(self._search(fill_filter(template, form), attributes=["1.1"],
                                    size_limit=1)
                       for form in domain_forms(canon))
        return await self._run(check)

    async def list_domains(self) -> list[str]:
        def collect() -> list[str]:
            domains: set[str] = set()
            entries = self._search_paged(str(self.s.ldap_filter_domain_list),
                                         [*self.a_email, *self.a_alias])
            for entry in entries:
                for value in entry.values(self.a_email) + entry.values(self.a_alias):
                    canon = canonical_domain(value.rpartition("@")[2])
                    if canon:
                        domains.add(canon)
            return sorted(domains)
        return await self._run(collect)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._conns.close_all()

    # -- SMTP VRFY / EXPN (outside the Directory protocol) -------------------------------

    async def verify_address(self, text: str) -> list[str]:
        def verify() -> list[str]:
            try:
                search_filter = fill_filter(str(self.s.ldap_filter_verify), text)
            except ValueError:
                return []
            entries = self._search(search_filter, size_limit=5)
            return [e for entry in entries for e in self._emails(entry)[:1]]
        return await self._run(verify)

    async def expand_list(self, address: str) -> list[str]:
        """Primary addresses of the members of the list (group) found by ldap_filter_expand."""
        parsed = parse_address(address, fold_local=self.fold_local)
        if parsed is None:
            return []
        seen: dict[str, _Entry] = {}

        def lists() -> list[str]:
            found: list[str] = []
            for key in lookup_stages(parsed, "")[0]:
                search_filter = fill_filter(str(self.s.ldap_filter_expand), key)
                for entry in self._search(search_filter):
                    seen[entry.dn.lower()] = entry
                    found.append(entry.dn.lower())
            return found

        refs = await self._run(lists)
        principals = await expand(refs, self._loader(seen))
        return [p.emails[0] for p in principals if p.emails]
