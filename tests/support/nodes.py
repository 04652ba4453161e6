"""The store engine of the in-process nodes the protocol suites start (IMAP, JMAP).

A test's node runs on the embedded sqlite engine, or on FoundationDB: this pytest-xdist
worker's test cluster (tests/support/engines.py picks it), its key space cleared when the
test starts (the tests of one worker run one after another).  Which one:

- a module that names ``NODE_ENGINES = ("sqlite", "foundationdb")`` runs each of its tests
  on both (ids ``sqlite`` / ``foundationdb``; the FoundationDB one skipped with the reason
  when there is no cluster), and a FoundationDB run fails if its test left nothing in the
  cluster, so no test claims an engine it never used;
- every other test runs on ``$FDBMAIL_TEST_NODE_ENGINE`` (``sqlite`` when unset): set it to
  ``foundationdb`` to sweep the whole IMAP and JMAP suites on FoundationDB.

The node config writers (``tests/server/imap/conftest.py`` ``write_config``,
``tests/server/jmap/test_mail.py`` ``_config``) add :func:`store_section` to the config."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support.engines import FDB_SKIP_REASON

NODE_ENGINE_ENV = "FDBMAIL_TEST_NODE_ENGINE"
KINDS = ("sqlite", "foundationdb")

NODE_ENGINE_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "foundationdb",
        id="foundationdb",
        marks=pytest.mark.skipif(FDB_SKIP_REASON is not None, reason=FDB_SKIP_REASON or ""),
    ),
]


class _Current:
    """The engine of the running test's nodes (set by :func:`node_engine`)."""

    kind = "sqlite"


def default_kind() -> str:
    kind = os.environ.get(NODE_ENGINE_ENV, "") or "sqlite"
    if kind not in KINDS:
        raise RuntimeError(f"{NODE_ENGINE_ENV}={kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def store_section() -> str:
    """The ``[store]`` section of a node config for the running test (empty for sqlite,
    the default engine)."""
    if _Current.kind == "sqlite":
        return ""
    return ('[store]\nengine = "foundationdb"\n'
            f'cluster_file = "{os.environ["FDB_CLUSTER_FILE"]}"\n')


async def _clear_cluster() -> None:
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    engine = await FoundationDbEngine.open()
    try:
        tr = engine.create_transaction()
        tr.clear_range(b"", b"\xff")  # a test cluster only (ops/test starts it)
        await tr.commit()
    finally:
        await engine.close()


async def _cluster_is_empty() -> bool:
    from fdb_layers.engine.foundationdb import FoundationDbEngine

    engine = await FoundationDbEngine.open()
    try:
        tr = engine.create_transaction()
        return not await tr.get_range(b"", b"\xff", limit=1)
    finally:
        await engine.close()


def parametrize(metafunc: pytest.Metafunc) -> None:
    """From tests/conftest.py's ``pytest_generate_tests``: the tests of a module with
    ``NODE_ENGINES`` run once per engine named there; not those that take no ``tmp_path``
    (every node's config and data live there), which start no node."""
    kinds = getattr(metafunc.module, "NODE_ENGINES", None)
    if kinds is None or not {"node_engine", "tmp_path"} <= set(metafunc.fixturenames):
        return
    metafunc.parametrize("node_engine", [p for p in NODE_ENGINE_PARAMS if p.id in kinds],
                         indirect=True)


@pytest.fixture(autouse=True)
async def node_engine(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The engine the nodes of this test run on (autouse in the IMAP and JMAP suites)."""
    parametrized = hasattr(request, "param")
    kind: str = request.param if parametrized else default_kind()
    if kind == "foundationdb":
        if FDB_SKIP_REASON is not None:
            pytest.skip(FDB_SKIP_REASON)
        await _clear_cluster()
    _Current.kind = kind
    try:
        yield kind
    finally:
        _Current.kind = "sqlite"
    if parametrized and kind == "foundationdb":
        assert not await _cluster_is_empty(), (
            "this test ran as [foundationdb] but wrote nothing to the cluster: it started "
            "no node on it (exclude it from NODE_ENGINES' parametrization)")
