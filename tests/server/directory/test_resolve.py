"""Group expansion on arbitrary membership graphs (cycles, self-membership, shared members,
dangling references): the result is exactly the reachable individuals, each once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from server.directory.address import Address
from server.directory.base import Principal
from server.directory.resolve import expand, resolve_recipient

N = 12
# entry i: is it a group, and the refs of its members (refs >= N are dangling)
graphs = st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, N + 2), max_size=6)),
                  min_size=N, max_size=N)


def _principal(i: int, group: bool) -> Principal:
    return Principal(id=f"id{i}", name=f"p{i}", type="group" if group else "individual",
                     emails=(f"p{i}@example.com",))


def _reachable(graph: list[tuple[bool, list[int]]], start: list[int]) -> set[int]:
    seen: set[int] = set()
    stack = list(start)
    while stack:
        i = stack.pop()
        if i in seen or i >= N:
            continue
        seen.add(i)
        if graph[i][0]:
            stack.extend(graph[i][1])
    return {i for i in seen if not graph[i][0]}


@given(graphs, st.lists(st.integers(0, N + 2), min_size=1, max_size=4))
def test_expand_returns_each_reachable_individual_once(
        graph: list[tuple[bool, list[int]]], start: list[int]) -> None:
    loads: list[int] = []

    async def load(ref: int) -> tuple[Principal, list[int]] | None:
        loads.append(ref)
        if ref >= N:
            return None
        group, members = graph[ref]
        return _principal(ref, group), (members if group else [])

    result = asyncio.run(expand(start, load))
    ids = [p.id for p in result]
    assert len(ids) == len(set(ids))
    assert all(p.type == "individual" for p in result)
    assert {int(p.name[1:]) for p in result} == _reachable(graph, start)
    assert len(loads) == len(set(loads))          # nothing is loaded twice


def test_first_matching_stage_wins() -> None:
    asked: list[tuple[str, ...]] = []
    owners: dict[tuple[str, ...], list[str]] = {("@example.com",): ["catchall"],
                                                ("user@example.com",): ["user"]}

    async def find_owners(keys: Sequence[str]) -> list[str]:
        asked.append(tuple(keys))
        return owners.get(tuple(keys), [])

    async def load(ref: str) -> tuple[Principal, list[str]] | None:
        return Principal(id=ref, name=ref, type="individual", emails=()), []

    found = asyncio.run(resolve_recipient(Address("user+tag", "example.com"), "+",
                                          find_owners, load))
    assert [p.name for p in found] == ["user"]
    assert asked == [("user+tag@example.com",), ("user@example.com",)]
    found = asyncio.run(resolve_recipient(Address("other", "example.com"), "+",
                                          find_owners, load))
    assert [p.name for p in found] == ["catchall"]
