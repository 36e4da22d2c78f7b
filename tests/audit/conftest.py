"""Fixtures of the audit trail tests: one scripted scenario per module on the module's embedded node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from node.audit.events import EventCodec
from node.audit.service import ledger_abi
from node.audit.store import open_store
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario, make_indexer, run_scenario

# The contract tests' consortium on this module's node, for the audit tests that drive the ledger directly.
# Taken by name into this directory only: a `pytest_plugins` entry would register them for the whole session.
from tests.contracts.conftest import founded, ledger  # noqa: F401


@pytest.fixture(scope="session")
def abi() -> list[dict[str, Any]]:
    return ledger_abi()


@pytest.fixture(scope="session")
def codec(abi: list[dict[str, Any]]) -> EventCodec:
    return EventCodec(abi)


@pytest.fixture(scope="module")
def scenario(node_endpoint: NodeEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return run_scenario(node_endpoint, tmp_path_factory.mktemp("audit-home"))


@pytest.fixture
def rpc(node_endpoint: NodeEndpoint) -> Iterator[JsonRpc]:
    with JsonRpc(node_endpoint.rpc_url) as client:
        yield client


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}")


@pytest.fixture
def indexed(engine: Engine, rpc: JsonRpc, codec: EventCodec, scenario: Scenario) -> Engine:
    make_indexer(engine, rpc, codec, scenario).sync(to_block=scenario.client.block_number())
    return engine


@pytest.fixture(scope="module")
def indexed_for_reading(
    node_endpoint: NodeEndpoint,
    codec: EventCodec,
    scenario: Scenario,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Engine]:
    """The scenario indexed once for a module whose tests only read the index (queries, routes, reports): a
    database migrated and the scenario indexed again for each such test was most of its CPU. A module that
    takes it says so by naming it ``indexed`` (see tests/audit/test_queries.py)."""
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('audit-index') / 'audit.sqlite3'}")
    with JsonRpc(node_endpoint.rpc_url) as rpc:
        make_indexer(engine, rpc, codec, scenario).sync(to_block=scenario.client.block_number())
    yield engine
    engine.dispose()
