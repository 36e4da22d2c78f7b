"""The PostgreSQL path for real (``DXL_TEST_POSTGRES_URL``, see scripts/ci-postgres.sh): migrations, resumed
indexing, chain check, queries and scorecards give what SQLite gives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from node.audit import models as m
from node.audit.check import check_store
from node.audit.events import EventCodec
from node.audit.queries import HistoryFilter, department_id, history, provenance
from node.audit.scorecard import compute_scorecard, load_facts
from node.audit.store import open_store
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario, make_indexer
from tests.postgres import schema_url

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group(name="postgres")]


@pytest.fixture
def pg() -> Iterator[Engine]:
    """A fresh schema per test, so parallel workers and other suites never share audit tables."""
    with schema_url("audit_test") as url:
        engine = open_store(url)
        assert engine.dialect.name == "postgresql"
        try:
            yield engine
        finally:
            engine.dispose()


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(select(m.events).order_by(m.events.c.seq))]


def test_postgres_matches_sqlite(
    pg: Engine, indexed: Engine, rpc: JsonRpc, codec: EventCodec, scenario: Scenario
) -> None:
    head = scenario.client.block_number()
    make_indexer(pg, rpc, codec, scenario, batch_blocks=5).sync(to_block=head, max_ranges=2)
    make_indexer(pg, rpc, codec, scenario, batch_blocks=5).sync(to_block=head)
    assert _rows(pg) == _rows(indexed)
    assert check_store(pg, rpc, codec).ok
    health = department_id(pg, "HEALTH")
    flt = HistoryFilter(department=health)
    assert (
        history(pg, flt, known_events=codec.event_names, limit=500).items
        == history(indexed, flt, known_events=codec.event_names, limit=500).items
    )
    commitment = "0x" + scenario.commitments["d2"].hex()
    assert provenance(pg, commitment) == provenance(indexed, commitment)
    now = 4_000_000_000
    assert compute_scorecard(load_facts(pg), department=health, period_from=0, period_to=now, now=now) == (
        compute_scorecard(load_facts(indexed), department=health, period_from=0, period_to=now, now=now)
    )


def test_postgres_tamper_is_detected(pg: Engine, rpc: JsonRpc, codec: EventCodec, scenario: Scenario) -> None:
    make_indexer(pg, rpc, codec, scenario).sync(to_block=scenario.client.block_number())
    with pg.begin() as c:
        c.execute(text("UPDATE audit_events SET consumer_id = 99 WHERE event = 'GrantIssued'"))
    result = check_store(pg, rpc, codec)
    assert [d.kind for d in result.differences] == ["changed", "changed"]
    assert all(set(d.columns) == {"consumer_id"} for d in result.differences)


def test_two_indexers_starting_on_an_empty_database_at_once_both_index_it(
    pg: Engine, indexed: Engine, rpc: JsonRpc, codec: EventCodec, scenario: Scenario
) -> None:
    """The API's follower and a `dxl audit index` run (or two services' followers) start at the same moment on
    a database nothing indexed yet: both write the progress marker's first row, neither fails on the other's,
    and the index is the one a single indexer builds."""
    url = pg.url.render_as_string(hide_password=False)
    engines = [open_store(url) for _ in range(2)]
    head = scenario.client.block_number()
    try:
        for _ in range(8):  # several rounds: more moments to collide
            with pg.begin() as c:
                for table in (m.events, m.blocks, m.refusals, m.progress):
                    c.execute(table.delete())
            start = threading.Barrier(2)

            def index(engine: Engine, start: threading.Barrier = start) -> None:
                indexer = make_indexer(engine, rpc, codec, scenario, batch_blocks=5)
                start.wait()
                indexer.sync(to_block=head)

            with ThreadPoolExecutor(2) as pool:
                for done in [pool.submit(index, e) for e in engines]:
                    done.result()
            assert _rows(pg) == _rows(indexed)
    finally:
        for e in engines:
            e.dispose()
