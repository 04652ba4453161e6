"""Settings kept in the store: small named values that every node reads at run time
and an operator changes with the CLI (DKIM signing keys, first of all).  They are
grouped by ``scope`` (the component that owns them, e.g. ``"dkim"``) and named by a
tuple of strings within it.  Values are bytes of at most :data:`MAX_VALUE` octets;
their meaning is the owner's.  Every write takes ``tr`` first and never commits; a
set repeated under ``commit_unknown_result`` writes the same value again."""

from __future__ import annotations

from dataclasses import dataclass

from .engine.base import Transaction
from .keys import Subspace

# --- layout: every key of this layer -------------------------------------------------
LAYOUT = (1, 0)  # layout["settings"] (see fdb_layers.layout)
ROOT = Subspace(("settings",))
VALUE = ROOT["v"]  # [scope, *name] -> the value's bytes

MAX_VALUE = 10_000  # inside FoundationDB's value limit with room to spare
MAX_NAME = 500  # octets of scope and name together: keys stay well under 1 KB
MAX_LISTED = 10_000


class SettingError(ValueError):
    """A setting that cannot be stored (name or value too long)."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: tuple[str, ...]
    value: bytes


def _key(scope: str, name: tuple[str, ...]) -> bytes:
    if not scope or not name or sum(len(p.encode()) for p in (scope, *name)) > MAX_NAME:
        raise SettingError("a setting needs a scope and a name of at most "
                           f"{MAX_NAME} octets together")
    return VALUE.pack((scope, *name))


async def get_setting(tr: Transaction, scope: str, name: tuple[str, ...]) -> bytes | None:
    return await tr.get(_key(scope, name))


async def set_setting(tr: Transaction, scope: str, name: tuple[str, ...],
                      value: bytes) -> None:
    if len(value) > MAX_VALUE:
        raise SettingError(f"a setting's value is at most {MAX_VALUE} octets")
    tr.set(_key(scope, name), value)


async def delete_setting(tr: Transaction, scope: str, name: tuple[str, ...]) -> bool:
    """Remove a setting; whether it was there."""
    key = _key(scope, name)
    found = await tr.get(key) is not None
    tr.clear(key)
    return found


async def list_settings(tr: Transaction, scope: str,
                        prefix: tuple[str, ...] = ()) -> list[Setting]:
    """The settings of ``scope`` whose name starts with ``prefix``, in name order."""
    begin, end = VALUE.range((scope, *prefix))
    out = []
    for kv in await tr.get_range(begin, end, limit=MAX_LISTED):
        name = VALUE.unpack(kv.key)[1:]
        out.append(Setting(tuple(str(p) for p in name), kv.value))
    return out
