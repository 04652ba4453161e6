"""``fdbmail directory``: run through server.cli.main like an operator would."""

from __future__ import annotations

import getpass
import io
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from server.cli import main
from server.config import Config
from server.directory.passwords import verify_password

from .conftest import run_cli

Env = Callable[..., tuple[Path, Config]]


def secret_of(config: Config, name: str) -> str:
    db = sqlite3.connect(config.data_dir / "directory.sqlite3")
    return str(db.execute("SELECT secret FROM accounts WHERE name = ?", (name,)).fetchone()[0])


def test_init_creates_the_database(sql_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, config = sql_env()
    assert run_cli(cfg, "init") == 0
    assert (config.data_dir / "directory.sqlite3").exists()
    assert "schema ready" in capsys.readouterr().out


def test_passwords_are_stored_hashed(sql_env: Env) -> None:
    cfg, config = sql_env()
    assert run_cli(cfg, "add", "a", "--password-stdin", stdin="pw-one\n") == 0
    stored = secret_of(config, "a")
    assert stored.startswith("$2b$") and "pw-one" not in stored
    assert verify_password(stored, "pw-one")
    assert run_cli(cfg, "passwd", "a", "--password-stdin", "--scheme", "argon2",
                   stdin="pw-two\n") == 0
    stored = secret_of(config, "a")
    assert stored.startswith("$argon2id$") and verify_password(stored, "pw-two")


def test_password_scheme_setting(sql_env: Env) -> None:
    cfg, config = sql_env(password_scheme="argon2")
    assert run_cli(cfg, "add", "a", "--password-stdin", stdin="pw\n") == 0
    assert secret_of(config, "a").startswith("$argon2id$")


def test_password_never_from_argv(sql_env: Env) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a") == 0
    with pytest.raises(SystemExit):
        main(["-c", str(cfg), "directory", "passwd", "a", "--password", "secret"])
    with pytest.raises(SystemExit):
        main(["-c", str(cfg), "directory", "passwd", "a", "secret"])


def test_password_prompt_needs_a_terminal(sql_env: Env,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a") == 0
    assert run_cli(cfg, "passwd", "a", stdin="") == 1
    assert "--password-stdin" in capsys.readouterr().err
    assert run_cli(cfg, "passwd", "a", "--password-stdin", stdin="\n") == 1   # empty


def test_list_show_and_remove(sql_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a", "--email", "A@Example.com", "--description", "Ann") == 0
    assert run_cli(cfg, "add", "g", "--type", "group", "--email", "g@example.com") == 0
    assert run_cli(cfg, "add-member", "g", "a") == 0
    capsys.readouterr()
    assert run_cli(cfg, "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["a\tindividual\t0\ta@example.com\tAnn", "g\tgroup\t0\tg@example.com\t"]
    assert run_cli(cfg, "show", "a") == 0
    shown = capsys.readouterr().out
    assert "emails: a@example.com" in shown and "member_of: g" in shown
    assert run_cli(cfg, "resolve", "g@example.com") == 0
    assert capsys.readouterr().out == "a\ta@example.com\n"
    assert run_cli(cfg, "remove", "a") == 0
    assert run_cli(cfg, "resolve", "g@example.com") == 1
    assert run_cli(cfg, "show", "a") == 1
    capsys.readouterr()
    assert run_cli(cfg, "list") == 0
    assert capsys.readouterr().out == "g\tgroup\t0\tg@example.com\t\n"


def test_addresses(sql_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a", "--email", "a@example.com") == 0
    assert run_cli(cfg, "add-address", "a", "Alias@Example.com") == 0
    assert run_cli(cfg, "add-address", "a", "alias@example.com") == 1      # already there
    assert run_cli(cfg, "add-address", "a", "new@example.com", "--type", "primary") == 0
    assert run_cli(cfg, "add-address", "a", "not an address") == 1
    assert run_cli(cfg, "add-address", "nobody", "x@example.com") == 1
    capsys.readouterr()
    assert run_cli(cfg, "show", "a") == 0
    assert "emails: new@example.com, a@example.com, alias@example.com" in \
        capsys.readouterr().out
    assert run_cli(cfg, "remove-address", "a", "ALIAS@example.com") == 0
    assert run_cli(cfg, "remove-address", "a", "alias@example.com") == 1


def test_groups(sql_env: Env) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a") == 0
    assert run_cli(cfg, "add", "g", "--type", "group") == 0
    assert run_cli(cfg, "add-member", "a", "g") == 1      # a is not a group
    assert run_cli(cfg, "add-member", "g", "nobody") == 1
    assert run_cli(cfg, "add-member", "g", "a") == 0
    assert run_cli(cfg, "add-member", "g", "a") == 1
    assert run_cli(cfg, "remove-member", "g", "a") == 0
    assert run_cli(cfg, "remove-member", "g", "a") == 1
    assert run_cli(cfg, "add", "a") == 1                  # exists


def test_domains(sql_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = sql_env()
    assert run_cli(cfg, "add", "a", "--email", "a@Mail.Example") == 0
    assert run_cli(cfg, "add-domain", "XN--BCHER-KVA.example") == 0
    assert run_cli(cfg, "add-domain", "bücher.example") == 1
    assert run_cli(cfg, "add-domain", "not a domain") == 1
    capsys.readouterr()
    assert run_cli(cfg, "domains") == 0
    assert capsys.readouterr().out == "bücher.example\nmail.example\n"
    assert run_cli(cfg, "remove-domain", "bücher.example") == 0
    assert run_cli(cfg, "remove-domain", "bücher.example") == 1


def test_ldap_directories_are_not_managed_here(sql_env: Env,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = sql_env(type="ldap")
    assert run_cli(cfg, "add", "a") == 1
    assert "LDAP" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_password_prompt(sql_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, config = sql_env()
    answers = iter(["typed-pw", "typed-pw", "one", "other"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", _Tty())
    assert main(["-c", str(cfg), "directory", "add", "a", "--password"]) == 0
    assert verify_password(secret_of(config, "a"), "typed-pw")
    assert main(["-c", str(cfg), "directory", "passwd", "a"]) == 1     # the two differ
    assert verify_password(secret_of(config, "a"), "typed-pw")
