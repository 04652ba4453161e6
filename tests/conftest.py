"""Fixtures every test may use.

``engine``: one store engine per kind (:data:`tests.support.engines.ENGINE_PARAMS`:
sqlite, sqlite under fault injection, sqlite through a commit server, and
FoundationDB plain and under faults where a test cluster is configured).  A
module restricts it to some kinds with ``ENGINE_KINDS = [...]``.
``plain_engine``: the same without injected faults, for raw (non-idempotent)
behaviour.
``cheap_bcrypt`` (every test): new bcrypt hashes at the lowest cost.
``node_engine`` (every test of the IMAP and JMAP suites, tests/support/nodes.py): the
engine of the nodes a test starts, sqlite or FoundationDB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fdb_layers.engine.base import Engine
from server.directory import passwords
from tests.support import nodes
from tests.support.engines import ENGINE_PARAMS, make_engine


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """New bcrypt hashes (``fdbmail directory add`` run in the test process, the dummy check
    of an unknown login) at the lowest cost, 4 instead of 12: the tests check behaviour, not
    hashing time, and at cost 12 each hash, and each login checking one, took 0.3-0.5 s here.
    A check reads the cost from the stored hash, so the logins of these accounts are cheap
    too."""
    monkeypatch.setattr(passwords, "BCRYPT_ROUNDS", 4)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that asks for ``engine`` (or ``plain_engine``) runs once per engine
    kind; a module may name the kinds it runs on in ``ENGINE_KINDS``.  The tests of a
    module with ``NODE_ENGINES`` run their nodes once per engine named there
    (tests/support/nodes.py)."""
    nodes.parametrize(metafunc)
    kinds = getattr(metafunc.module, "ENGINE_KINDS", None)
    params = [p for p in ENGINE_PARAMS if kinds is None or p.id in kinds]
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", params, indirect=True)
    if "plain_engine" in metafunc.fixturenames:
        metafunc.parametrize("plain_engine",
                             [p for p in params if not str(p.id).endswith("+faults")],
                             indirect=True)


@pytest.fixture
async def engine(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Engine]:
    e = await make_engine(request.param, tmp_path)
    try:
        yield e
    finally:
        await e.close()


@pytest.fixture
async def plain_engine(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Engine]:
    """An engine without injected faults, for tests of raw (non-idempotent) behaviour."""
    e = await make_engine(request.param, tmp_path)
    try:
        yield e
    finally:
        await e.close()
