from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from server.cli import main
from dataclasses import FrozenInstanceError, dataclass

from server.config import (
    ConfigError,
    ServerSettings,
    StoreSettings,
    all_sections,
    load_config,
    render_config,
    section,
    setting,
)
from server.directory.settings import DirectorySettings


def test_defaults_without_a_file() -> None:
    config = load_config(None, env={})
    assert config.store.engine == "sqlite"
    assert config.server.http_listen == "127.0.0.1:8080"
    assert config.server.sources["data_dir"] == "default"


def test_ops_and_test_variables_are_not_settings() -> None:
    config = load_config(None, env={"FDBMAIL_VENV": "/opt/venv",
                                    "FDBMAIL_TEST_POSTGRES_DSN": "postgresql://x"})
    assert config.store.engine == "sqlite"


def test_file_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "fdbmail.toml"
    path.write_text('[server]\nhostname = "mx.example.test"\nhttp_listen = "127.0.0.1:9000"\n')
    config = load_config(path, env={"FDBMAIL_SERVER_HTTP_LISTEN": "127.0.0.1:9100",
                                    "FDBMAIL_STORE_FAULT_NOT_COMMITTED_RATE": "0.5"})
    assert config.server.hostname == "mx.example.test"
    assert config.server.http_listen == "127.0.0.1:9100"
    assert config.store.fault_not_committed_rate == 0.5
    assert config.server.sources["http_listen"] == "FDBMAIL_SERVER_HTTP_LISTEN"


def test_sections_read_typed(tmp_path: Path) -> None:
    path = tmp_path / "fdbmail.toml"
    path.write_text('[directory]\ncache_ttl = 3\nldap_url = ["ldap://a", "ldap://b"]\n')
    config = load_config(path, env={"FDBMAIL_SERVER_WORKERS": "2"})
    directory = config.get(DirectorySettings)
    assert isinstance(directory, DirectorySettings)
    assert directory.cache_ttl == 3.0 and isinstance(directory.cache_ttl, float)
    assert directory.ldap_url == ["ldap://a", "ldap://b"]
    assert directory.type == "sql"  # a default
    assert config.get(ServerSettings).workers == 2
    assert config.get(DirectorySettings) is directory  # built once
    with pytest.raises(FrozenInstanceError):
        directory.type = "ldap"  # type: ignore[misc]
    overridden = config.with_overrides({"store": {"engine": "foundationdb"}})
    assert overridden.get(StoreSettings).engine == "foundationdb"
    assert config.get(StoreSettings).engine == "sqlite"


def test_a_list_default_is_not_shared() -> None:
    one = load_config(None, env={}).get(DirectorySettings)
    two = load_config(None, env={}).get(DirectorySettings)
    one.ldap_url.append("ldap://changed")
    assert two.ldap_url == ["ldap://127.0.0.1:389"]


def test_a_section_is_made_of_settings_only() -> None:
    @dataclass(frozen=True)
    class Plain:
        name: str = "x"

    with pytest.raises(TypeError, match="setting"):
        section("plain", "A section whose field has no documentation.", Plain)

    @dataclass(frozen=True)
    class Unregistered:
        name: str = setting("x", "A setting of a section no module declares.")

    with pytest.raises(ConfigError, match="Unregistered"):
        load_config(None, env={}).get(Unregistered)


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ('[server]\nhostnme = "x"\n', {}, "hostnme"),
        ('[nosuch]\nx = 1\n', {}, "nosuch"),
        ('[store]\nengine = "redis"\n', {}, "engine"),
        ('[store]\nfdb_api_version = "730"\n', {}, "fdb_api_version"),
        ("", {"FDBMAIL_STORE_ENGIN": "sqlite"}, "FDBMAIL_STORE_ENGIN"),
        ("", {"FDBMAIL_STORE_FDB_API_VERSION": "seven"}, "FDBMAIL_STORE_FDB_API_VERSION"),
        ("[server\n", {}, "fdbmail.toml"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str],
                                  named: str) -> None:
    path = tmp_path / "fdbmail.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_config(path, env=env)


def test_every_setting_is_documented_and_config_show_is_valid_toml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for sec in all_sections():
        assert sec.doc
        for one in sec.settings:
            assert len(one.doc) > 10, f"[{sec.name}] {one.name} lacks documentation"
    monkeypatch.delenv("FDBMAIL_CONFIG", raising=False)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    parsed = tomllib.loads(out)
    for sec in all_sections():
        for one in sec.settings:
            assert parsed[sec.name][one.name] == one.default
    assert "# (env FDBMAIL_STORE_ENGINE" in out
    assert render_config(load_config(None, env={})) == out


def test_cli_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[store]\nwhat = 1\n")
    assert main(["-c", str(path), "config", "show"]) == 2
    assert "unknown setting [store] what" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("fdbmail ")


def test_moved_smtp_keys_are_read_into_their_sections_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """[smtp] tls_cert, tls_key and the connection limits moved to [tls] and [limits]:
    the old keys still work, and say so once per process."""
    from server import config as config_module

    config_module._WARNED.clear()
    path = tmp_path / "fdbmail.toml"
    path.write_text('[smtp]\ntls_cert = "/etc/cert.pem"\nmax_connections_per_ip = 3\n'
                    '[limits]\nmax_connections = 7\n')
    with caplog.at_level("WARNING", logger="server.config"):
        config = load_config(path, env={"FDBMAIL_SMTP_IPV6_PREFIX": "56"})
        load_config(path, env={})
        config.with_overrides({"smtp": {"max_connections_per_ip": 4}})
    assert config.tls.certificate == "/etc/cert.pem"
    assert config.limits.max_connections_per_ip == 3 and config.limits.max_connections == 7
    assert config.limits.ipv6_prefix == 56
    assert config.limits.sources["max_connections_per_ip"] == str(path)
    assert "max_connections_per_ip" not in config.smtp
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 3, warnings  # one per moved key, however often it is read
    assert any("[smtp] tls_cert is deprecated, write [tls] certificate" in w
               for w in warnings)
    moved = config.with_overrides({"smtp": {"max_connections_per_ip": 4}})
    assert moved.limits.max_connections_per_ip == 4
    # the new name wins over the old one
    path.write_text('[smtp]\nmax_connections = 5\n[limits]\nmax_connections = 9\n')
    assert load_config(path, env={}).limits.max_connections == 9
    # config show says where a setting was before
    assert "formerly [smtp] tls_cert" in render_config(config)
