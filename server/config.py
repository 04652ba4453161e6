"""Configuration: one TOML file plus ``FDBMAIL_<SECTION>_<KEY>`` environment overrides.

Every setting is defined once, with its default and its documentation, in a
:class:`Section` that its package declares (``server/<package>/settings.py``,
listed in :data:`SECTION_MODULES`).  A section is a frozen dataclass whose fields
are made with :func:`setting` and registered with :func:`section`; code reads it
typed, ``config.get(SmtpSettings).max_recipients``, so a misspelt name fails mypy.
``fdbmail config show`` prints the effective configuration with every default and
its documentation; unknown keys (in the file or in the environment) are an error
that names the key.
"""

from __future__ import annotations

import importlib
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, cast

ENV_PREFIX = "FDBMAIL_"
CONFIG_ENV = "FDBMAIL_CONFIG"  # path of the TOML file (not a setting)
# Variables under our prefix that are not settings: the ops scripts' venv folder,
# and FDBMAIL_TEST_* which only the test suite reads.
NON_SETTING_ENV = frozenset({CONFIG_ENV, "FDBMAIL_VENV"})
NON_SETTING_ENV_PREFIX = "FDBMAIL_TEST_"

SettingValue = str | int | float | bool | list[str]
V = TypeVar("V", str, int, float, bool, list[str])
S = TypeVar("S")

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: SettingValue
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | float | None = None  # for numbers: the smallest value allowed
    # Where this setting was before ("section.key"): still read, with a deprecation
    # warning logged once per process.
    formerly: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        return type(self.default)

    def convert(self, raw: object, where: str, *, from_env: bool = False) -> SettingValue:
        """Check a value from TOML, or parse one from an environment string."""
        kind = self.kind
        if from_env and isinstance(raw, str) and kind is not str:
            raw = _parse_env(raw, kind, where)
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            raw = float(raw)
        if kind is list:
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise ConfigError(f"{where}: expected a list of strings, got {raw!r}")
        elif not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
            raise ConfigError(f"{where}: expected {kind.__name__}, got {raw!r}")
        if self.choices and raw not in self.choices:
            raise ConfigError(f"{where}: {raw!r} is not one of {', '.join(self.choices)}")
        if self.minimum is not None and isinstance(raw, int | float) and raw < self.minimum:
            raise ConfigError(f"{where}: {raw!r} is less than {self.minimum}")
        return raw  # type: ignore[return-value]


def _parse_env(raw: str, kind: type, where: str) -> object:
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is list:
            return [x.strip() for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{where}: cannot read {raw!r} as {kind.__name__}") from None
    return raw


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    doc: str
    settings: tuple[Setting, ...]
    kind: type | None = None  # the typed view (see section()); None for an untyped section

    def setting(self, name: str) -> Setting | None:
        for s in self.settings:
            if s.name == name:
                return s
        return None


def setting(default: V, doc: str, *, choices: tuple[str, ...] = (),
            minimum: int | float | None = None, formerly: tuple[str, ...] = ()) -> V:
    """A field of a settings dataclass: its default, documentation and checks;
    ``formerly``: where it was before ("section.key", still read; see :class:`Setting`)."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "formerly": formerly}
    if isinstance(default, list):
        items = list(default)
        made: Any = field(default_factory=lambda: list(items), metadata=meta)
        return made  # type: ignore[no-any-return]
    return field(default=default, metadata=meta)


def section(name: str, doc: str, kind: type[Any]) -> Section:
    """The section ``[name]`` whose settings are the fields of the frozen dataclass
    ``kind`` (each made with :func:`setting`)."""
    settings = []
    for f in fields(kind):
        if "doc" not in f.metadata:
            raise TypeError(f"{kind.__name__}.{f.name} is not made with setting()")
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{kind.__name__}.{f.name} has no default")
        settings.append(Setting(f.name, default, f.metadata["doc"], f.metadata["choices"],
                                f.metadata["minimum"], f.metadata["formerly"]))
    return Section(name, doc, tuple(settings), kind)


# Sections of the core node; packages declare theirs in their own settings module.
@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The ``[server]`` settings."""

    data_dir: str = setting("./data",
        "Folder for the embedded store, local blobs, the SQLite directory and generated TLS "
        "certificates (created if missing).")
    hostname: str = setting("localhost",
        "The node's mail host name: EHLO/greeting name, Received headers, generated "
        "certificate subject.")
    http_listen: str = setting("127.0.0.1:8080",
        "host:port of the HTTP listener that serves JMAP, /crypto, /healthz and /metrics.")
    log_level: str = setting("INFO", "Lowest level logged.",
                             choices=("TRACE", "DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = setting("json",
        "Log line format: one JSON object per line, or logfmt-style key=value text for a "
        "terminal.",
        choices=("json", "text"))
    workers: int = setting(0,
        "Worker processes that serve the connections of every service (SMTP, LMTP, IMAP: "
        "the main process accepts them and hands each to a worker; HTTP for "
        "JMAP: each worker serves a listening socket of its own on the port) and run a "
        "delivery worker each, so that a node uses more than one core (0: all in one "
        "process). The main process keeps the embedded store's writer, blob GC and "
        "maintenance, and serves no connection itself. About one per core.",
        minimum=0)


SERVER = section("server", "The node itself.", ServerSettings)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The ``[store]`` settings."""

    engine: str = setting("sqlite",
        "Store engine: 'sqlite' (embedded, one node) or 'foundationdb' (a cluster).",
        choices=("sqlite", "foundationdb"))
    sqlite_path: str = setting("",
        "File of the sqlite engine; empty means <data_dir>/store.sqlite3.")
    cluster_file: str = setting("",
        "FoundationDB cluster file; empty means $FDB_CLUSTER_FILE or the client library's "
        "default.")
    fdb_api_version: int = setting(730, "FoundationDB API version to select (730 or newer).")
    fault_not_committed_rate: float = setting(0.0,
        "Testing only: share of commits that fail with not_committed (a conflict) before "
        "writing.")
    fault_unknown_result_rate: float = setting(0.0,
        "Testing only: share of commits that write and then report commit_unknown_result.")


STORE = section(
    "store",
    "The metadata store (FoundationDB, or the embedded SQLite engine with the same contract).",
    StoreSettings,
)

# Modules that declare a ``SECTION`` (or ``SECTIONS``) for their package.
SECTION_MODULES: tuple[str, ...] = (
    "server.directory.settings",
    "server.blobs.settings",
    "server.net.settings",
    "server.smtp.settings",
    "server.smtp.lmtp.settings",
    "server.imap.settings",
    "server.jmap.settings",
    "server.maintenance_settings",
    "server.outbound.settings",
    "server.mailauth.settings",
)


def all_sections() -> list[Section]:
    sections = [SERVER, STORE]
    for module_name in SECTION_MODULES:
        module = importlib.import_module(module_name)
        found = getattr(module, "SECTIONS", None) or (module.SECTION,)
        sections.extend(found)
    return sections


@dataclass(frozen=True)
class SectionValues(Mapping[str, SettingValue]):
    section: Section
    settings: dict[str, SettingValue] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("section", "settings", "sources"):
            raise AttributeError(name)  # not set yet (unpickling, copying)
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(f"[{self.section.name}] has no setting {name!r}") from None

    def __getitem__(self, name: str) -> SettingValue:
        return self.settings[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)


@dataclass(frozen=True)
class Config:
    sections: dict[str, SectionValues]
    path: Path | None = None
    _typed: dict[type, object] = field(default_factory=dict, compare=False, repr=False)

    def get(self, kind: type[S]) -> S:
        """The typed settings of the section declared with ``kind`` (see :func:`section`)."""
        found = self._typed.get(kind)
        if found is None:
            for sv in self.sections.values():
                if sv.section.kind is kind:
                    values = {k: list(v) if isinstance(v, list) else v
                              for k, v in sv.settings.items()}  # not shared with defaults
                    found = self._typed[kind] = kind(**values)
                    break
            else:
                raise ConfigError(f"no config section is read as {kind.__name__}")
        return cast(S, found)

    def __getattr__(self, name: str) -> SectionValues:
        if name.startswith("__") or name in ("sections", "path", "_typed"):
            raise AttributeError(name)  # not set yet (unpickling, copying)
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(f"no config section {name!r}") from None

    @property
    def data_dir(self) -> Path:
        return Path(str(self.sections["server"]["data_dir"])).expanduser()

    def with_overrides(self, overrides: Mapping[str, Mapping[str, SettingValue]]) -> Config:
        """A copy with some values replaced (tests use it to pick ports and folders)."""
        overrides = _move_deprecated(
            {n: dict(v) for n, v in overrides.items()},
            [sv.section for sv in self.sections.values()], "override")
        new: dict[str, SectionValues] = {}
        for name, sv in self.sections.items():
            values = dict(sv.settings)
            sources = dict(sv.sources)
            for key, value in overrides.get(name, {}).items():
                setting = sv.section.setting(key)
                if setting is None:
                    raise ConfigError(f"unknown setting [{name}] {key}")
                values[key] = setting.convert(value, f"[{name}] {key}")
                sources[key] = "override"
            new[name] = SectionValues(sv.section, values, sources)
        unknown = set(overrides) - set(self.sections)
        if unknown:
            raise ConfigError(f"unknown config section [{sorted(unknown)[0]}]")
        return Config(new, self.path)


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Defaults, then the TOML file (``path`` or $FDBMAIL_CONFIG), then the environment."""
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    file_values: dict[str, Any] = {}
    config_path = Path(path) if path is not None else None
    if config_path is not None:
        try:
            with open(config_path, "rb") as f:
                file_values = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {config_path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {config_path}: {e}") from None

    sections = all_sections()
    by_name = {s.name: s for s in sections}
    file_values = _move_deprecated(file_values, sections, str(config_path))
    env = _move_deprecated_env(env, sections)
    for name, table in file_values.items():
        if name not in by_name:
            raise ConfigError(f"{config_path}: unknown section [{name}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{config_path}: {name} must be a table ([{name}])")
        for key in table:
            if by_name[name].setting(key) is None:
                raise ConfigError(f"{config_path}: unknown setting [{name}] {key}")

    env_map = {env_name(s.name, k.name): (s, k) for s in sections for k in s.settings}
    for var in env:
        if (var.startswith(ENV_PREFIX) and var not in env_map and var not in NON_SETTING_ENV
                and not var.startswith(NON_SETTING_ENV_PREFIX)):
            raise ConfigError(f"unknown environment setting {var}")

    result: dict[str, SectionValues] = {}
    for section in sections:
        values: dict[str, SettingValue] = {}
        sources: dict[str, str] = {}
        table = file_values.get(section.name, {})
        for s in section.settings:
            value: SettingValue = s.default
            source = "default"
            if s.name in table:
                value = s.convert(table[s.name], f"{config_path}: [{section.name}] {s.name}")
                source = str(config_path)
            var = env_name(section.name, s.name)
            if var in env:
                value = s.convert(env[var], var, from_env=True)
                source = var
            values[s.name] = value
            sources[s.name] = source
        result[section.name] = SectionValues(section, values, sources)
    return Config(result, config_path)


def _formerly(sections: list[Section]) -> dict[tuple[str, str], tuple[str, str]]:
    """(old section, old key) -> (section, key) of every moved setting."""
    moves = {}
    for section in sections:
        for s in section.settings:
            for old in s.formerly:
                old_section, _, old_key = old.partition(".")
                moves[(old_section, old_key)] = (section.name, s.name)
    return moves


_WARNED: set[tuple[str, str]] = set()


def _deprecated(old: tuple[str, str], new: tuple[str, str], where: str) -> None:
    if old in _WARNED:
        return
    _WARNED.add(old)
    log.warning("%s: [%s] %s is deprecated, write [%s] %s instead (it is read as such)",
                where, *old, *new)


def _move_deprecated(values: dict[str, Any], sections: list[Section],
                     where: str) -> dict[str, Any]:
    """``values`` (section -> table) with settings under their former names moved to
    their sections; a value given under the new name wins."""
    moves = _formerly(sections)
    if not any((name, key) in moves for name, table in values.items()
               if isinstance(table, dict) for key in table):
        return values
    out = {name: dict(table) if isinstance(table, dict) else table
           for name, table in values.items()}
    for (old_section, old_key), (section, key) in moves.items():
        table = out.get(old_section)
        if not isinstance(table, dict) or old_key in _setting_names(sections, old_section):
            continue
        if old_key in table:
            _deprecated((old_section, old_key), (section, key), where)
            value = table.pop(old_key)
            out.setdefault(section, {}).setdefault(key, value)
    return out


def _move_deprecated_env(env: Mapping[str, str], sections: list[Section]) -> Mapping[str, str]:
    moves = _formerly(sections)
    found = {env_name(*old): env_name(*new) for old, new in moves.items()
             if env_name(*old) in env}
    if not found:
        return env
    out = {k: v for k, v in env.items() if k not in found}
    for old_var, new_var in found.items():
        old = next(o for o in moves if env_name(*o) == old_var)
        _deprecated(old, moves[old], old_var)
        out.setdefault(new_var, env[old_var])
    return out


def _setting_names(sections: list[Section], name: str) -> set[str]:
    return {s.name for section in sections if section.name == name for s in section.settings}


def _toml_value(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_config(config: Config) -> str:
    """The effective configuration as TOML, each setting with its documentation,
    environment variable and where its value came from."""
    lines: list[str] = []
    for name, sv in config.sections.items():
        lines.append(f"# {sv.section.doc}")
        lines.append(f"[{name}]")
        for s in sv.section.settings:
            for doc_line in _wrap(s.doc):
                lines.append(f"# {doc_line}")
            extra = f"env {env_name(name, s.name)}; default {_toml_value(s.default)}"
            if s.choices:
                extra += f"; one of {', '.join(s.choices)}"
            for old in s.formerly:
                extra += "; formerly [{}] {}".format(*old.split(".", 1))
            lines.append(f"# ({extra}; from {sv.sources[s.name]})")
            lines.append(f"{s.name} = {_toml_value(sv.settings[s.name])}")
        lines.append("")
    return "\n".join(lines)


def _wrap(text: str, width: int = 96) -> list[str]:
    words = text.split()
    lines: list[str] = []
    current = ""
    for w in words:
        if current and len(current) + 1 + len(w) > width:
            lines.append(current)
            current = w
        else:
            current = f"{current} {w}" if current else w
    if current:
        lines.append(current)
    return lines
