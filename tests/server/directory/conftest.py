"""Fixtures of the directory tests: a SQL directory in a temporary data folder (driven through
``fdbmail directory``), and one real slapd for the whole session (tests/support/slapd.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from passlib.hash import sha256_crypt

from server.cli import main
from server.config import Config, SettingValue, load_config
from server.directory import Directory, open_directory
from tests.support import slapd as slapd_support

SUFFIX = "dc=example,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
READER_DN = f"cn=reader,ou=services,{SUFFIX}"
READER_PW = "reader-secret"

# login -> password of the LDAP test users
LDAP_PASSWORDS = {
    "alice": "alice-pw",     # {SSHA} made by slappasswd
    "bob": "bob-pw",         # {CRYPT}$6$ made by openssl passwd -6
    "carol": "carol-pw",     # {SSHA512} (hashlib)
    "dave": "dave-pw",       # {CRYPT}$5$ with rounds= (libpass)
    "erin": "erin-pw",       # {CRYPT}$2b$ (bcrypt)
    "frank": "frank-pw",     # {SSHA}, changed by a test
    "star*)(uid=*": "star-pw",   # a user whose uid holds filter characters
}


def run_cli(config_file: Path, *args: str, stdin: str | None = None) -> int:
    """``fdbmail -c config_file directory ...`` in this process."""
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        return main(["-c", str(config_file), "directory", *args])
    finally:
        sys.stdin = old


def write_config(path: Path, data_dir: Path, directory: dict[str, SettingValue]) -> Path:
    lines = ["[server]", f'data_dir = "{data_dir}"', "", "[directory]"]
    for key, value in directory.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(_toml_str(v) for v in value)}]")
        else:
            lines.append(f"{key} = {_toml_str(str(value))}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def sql_env(tmp_path: Path) -> Callable[..., tuple[Path, Config]]:
    """A factory: a config file for a SQLite directory in tmp_path, and its Config."""

    def make(**directory: SettingValue) -> tuple[Path, Config]:
        directory.setdefault("cache_ttl", 0.0)
        path = write_config(tmp_path / "fdbmail.toml", tmp_path / "data", directory)
        return path, load_config(path, env={})

    return make


@pytest.fixture
async def sql_directory(sql_env: Callable[..., tuple[Path, Config]]
                        ) -> AsyncIterator[tuple[Path, Directory]]:
    path, config = sql_env()
    directory = await open_directory(config)
    yield path, directory
    await directory.close()


# -- LDAP ----------------------------------------------------------------------------------------

def _ssha(secret: str) -> str:
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(secret.encode() + salt).digest() + salt
                                      ).decode()


def _ssha512(secret: str) -> str:
    salt = os.urandom(16)
    return "{SSHA512}" + base64.b64encode(
        hashlib.sha512(secret.encode() + salt).digest() + salt).decode()


def _slappasswd(secret: str) -> str:
    out = subprocess.run(["/usr/sbin/slappasswd", "-h", "{SSHA}", "-s", secret],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _openssl_sha512_crypt(secret: str) -> str:
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=secret + "\n",
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _user(uid: str, password_hash: str, mail: str, *, aliases: tuple[str, ...] = (),
          quota: int | None = None, description: str = "") -> str:
    lines = [f"dn: uid={uid},{PEOPLE}", "objectClass: inetOrgPerson",
             "objectClass: fdbmailRecipient", f"uid: {uid}", f"cn: {uid.title()}",
             f"sn: {uid.title()}", f"mail: {mail}"]
    lines += [f"mailAlternateAddress: {a}" for a in aliases]
    if quota is not None:
        lines.append(f"mailQuota: {quota}")
    if description:
        lines.append(f"description: {description}")
    lines.append("userPassword:: " + base64.b64encode(password_hash.encode()).decode())
    return "\n".join(lines) + "\n"


def _group(cn: str, members: list[str], mail: str | None = None) -> str:
    lines = [f"dn: cn={cn},{GROUPS}", "objectClass: groupOfNames", f"cn: {cn}"]
    if mail:
        lines += ["objectClass: fdbmailRecipient", f"mail: {mail}"]
    lines += [f"member: {m}" for m in members]
    return "\n".join(lines) + "\n"


def _people(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def _groups(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def make_ldif() -> str:
    pw = LDAP_PASSWORDS
    star_hash = _ssha(pw["star*)(uid=*"])
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: reader\nuserPassword: {READER_PW}\n",
        _user("alice", _slappasswd(pw["alice"]), "alice@example.test",
              aliases=("ally@example.test", "alice@xn--bcher-kva.test"), quota=1000000,
              description="Alice Example"),
        _user("bob", "{CRYPT}" + _openssl_sha512_crypt(pw["bob"]), "bob@example.test"),
        _user("carol", _ssha512(pw["carol"]), "carol@example.test"),
        _user("dave", "{CRYPT}" + sha256_crypt.using(rounds=6000).hash(pw["dave"]),
              "dave@example.test", aliases=("@catchall.test",)),
        _user("erin", "{CRYPT}" + bcrypt.hashpw(pw["erin"].encode(), bcrypt.gensalt(rounds=4)
                                                ).decode(), "erin@example.test"),
        _user("frank", _ssha(pw["frank"]), "frank@example.test"),
        _user("star*)(uid=*", star_hash, "star@example.test"),
        _user("nomail", _ssha("nomail-pw"), "nomail@other.test"),
        _group("team", [_people("alice"), _people("bob"), _groups("sub")],
               mail="team@example.test"),
        _group("sub", [_people("carol"), _people("alice"), _groups("team"), _people("ghost")],
               mail="sub@example.test"),
        _group("movers", [_people("alice")], mail="movers@example.test"),
        f"dn: cn=devs,{GROUPS}\nobjectClass: posixGroup\nobjectClass: fdbmailRecipient\n"
        "cn: devs\ngidNumber: 5000\nmemberUid: bob\nmemberUid: erin\nmemberUid: ghost\n"
        "mail: devs@example.test\n",
    ]
    return "\n".join(entries)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slapd_support.Slapd]:
    if not os.path.exists(slapd_support.SLAPD):
        pytest.skip(f"{slapd_support.SLAPD} is absent (install the slapd package)")
    server = slapd_support.Slapd(tmp_path_factory.mktemp("slapd"), suffix=SUFFIX)
    server.start(make_ldif())
    yield server
    server.cleanup()


@pytest.fixture
def ldap_settings(slapd: slapd_support.Slapd) -> dict[str, SettingValue]:
    return {
        "type": "ldap",
        "cache_ttl": 0.0,
        "ldap_url": [slapd.url],
        "ldap_base_dn": SUFFIX,
        "ldap_bind_dn": READER_DN,
        "ldap_bind_password": READER_PW,
    }


@pytest.fixture
def ldap_config(tmp_path: Path, ldap_settings: dict[str, SettingValue]
                ) -> Callable[..., Config]:
    def make(**overrides: SettingValue) -> Config:
        settings = {**ldap_settings, **overrides}
        path = write_config(tmp_path / "fdbmail-ldap.toml", tmp_path / "data", settings)
        return load_config(path, env={})
    return make
