"""Recipient resolution shared by the backends: try the lookup stages of an address in order
(exact, sub-address stripped, catch-all), then expand groups and lists to their individual
members breadth-first, each member once, cycles ignored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from .address import Address, lookup_stages
from .base import Principal

Ref = TypeVar("Ref", bound=Hashable)   # how a backend names an entry: SQL name, LDAP DN

# Find the entries owning any of these addresses.
FindOwners = Callable[[Sequence[str]], Awaitable[list[Ref]]]
# Load an entry: its principal and, for a group, the refs of its members.
LoadEntry = Callable[[Ref], Awaitable[tuple[Principal, list[Ref]] | None]]

MAX_EXPANDED = 10_000   # stop expanding a group past this many entries (a runaway directory)


async def resolve_recipient(
    address: Address,
    separator: str,
    find_owners: FindOwners[Ref],
    load: LoadEntry[Ref],
) -> list[Principal]:
    for keys in lookup_stages(address, separator):
        owners = await find_owners(keys)
        if owners:
            return await expand(owners, load)
    return []


async def expand(refs: Sequence[Ref], load: LoadEntry[Ref]) -> list[Principal]:
    """The individual principals reachable from ``refs`` through group membership."""
    result: list[Principal] = []
    seen_refs: set[Ref] = set()
    seen_ids: set[str] = set()
    queue = list(refs)
    while queue and len(seen_refs) < MAX_EXPANDED:
        ref = queue.pop(0)
        if ref in seen_refs:
            continue
        seen_refs.add(ref)
        loaded = await load(ref)
        if loaded is None:
            continue
        principal, members = loaded
        if principal.type == "group":
            queue.extend(m for m in members if m not in seen_refs)
        elif principal.id not in seen_ids:
            seen_ids.add(principal.id)
            result.append(principal)
    return result
