"""Indexer: resume after a restart with no gap and no duplicate; `audit check` names tampered rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from node.audit import models as m
from node.audit.check import check_store
from node.audit.derive import DerivedRange
from node.audit.errors import IndexMismatchError
from node.audit.events import EventCodec
from node.audit.indexer import Indexer, IndexerConfig
from node.audit.store import open_store
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario, make_indexer


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(select(m.events).order_by(m.events.c.seq))]


def test_restart_mid_stream_has_no_gap_and_no_duplicate(
    tmp_path: Path, rpc: JsonRpc, codec: EventCodec, scenario: Scenario
) -> None:
    head = scenario.client.block_number()
    first = open_store(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    done = make_indexer(first, rpc, codec, scenario, batch_blocks=4).sync(to_block=head, max_ranges=2)
    assert done.ranges == 2 and done.to_block == scenario.start_block + 7
    # A new process: fresh indexer and lineage, same database.
    make_indexer(first, rpc, codec, scenario, batch_blocks=4).sync(to_block=head)
    again = make_indexer(first, rpc, codec, scenario, batch_blocks=4).sync(to_block=head)
    assert again.events == 0
    once = open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    make_indexer(once, rpc, codec, scenario).sync(to_block=head)
    on_chain = rpc.logs(scenario.contract, scenario.start_block, head)
    assert _rows(first) == _rows(once)
    assert len(_rows(first)) == len(on_chain)
    with first.connect() as c:
        assert c.execute(select(func.count()).select_from(m.refusals)).scalar_one() == 2


def test_refusals_are_classified(indexed: Engine, scenario: Scenario) -> None:
    with indexed.connect() as c:
        rows = c.execute(
            select(m.refusals.c.tx_hash, m.refusals.c.reason).order_by(m.refusals.c.block_number)
        )
        assert [(h, r) for h, r in rows] == list(
            zip(scenario.refused, ["grant_revoked", "grant_expired"], strict=True)
        )


def test_database_of_another_contract_is_refused(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, scenario: Scenario
) -> None:
    other = Indexer(
        indexed,
        rpc,
        codec,
        contract="0x" + "11" * 20,
        chain_id=scenario.client.chain_id,
        start_block=0,
        config=IndexerConfig(),
    )
    with pytest.raises(IndexMismatchError):
        other.sync()


def test_check_passes_on_an_untouched_database(indexed: Engine, rpc: JsonRpc, codec: EventCodec) -> None:
    result = check_store(indexed, rpc, codec)
    assert result.ok, [d.describe() for d in result.differences]
    assert result.events_checked > 30


def test_check_names_changed_missing_and_extra_rows(indexed: Engine, rpc: JsonRpc, codec: EventCodec) -> None:
    e = m.events.c
    with indexed.begin() as c:
        delivery = (
            c.execute(select(e.seq).where(e.event == "DeliveryRecorded").order_by(e.seq)).scalars().first()
        )
        ack = c.execute(select(e.seq).where(e.event == "DeliveryAcknowledged")).scalar_one()
        extra = dict(c.execute(select(m.events).where(e.seq == ack)).one()._mapping)
        c.execute(update(m.events).where(e.seq == delivery).values(commitment="0x" + "ab" * 32))
        c.execute(delete(m.events).where(e.seq == ack))
        c.execute(
            insert(m.events).values(
                {**extra, "seq": extra["seq"] + 500, "log_index": extra["log_index"] + 500}
            )
        )
        c.execute(update(m.refusals).values(reason="other"))
    result = check_store(indexed, rpc, codec)
    found = {(d.table, d.kind, d.key.split(" (")[0]) for d in result.differences}
    assert ("audit_events", "changed", f"seq {delivery}") in found
    assert ("audit_events", "missing", f"seq {ack}") in found
    assert ("audit_events", "extra", f"seq {ack + 500}") in found
    changed = next(d for d in result.differences if d.key.startswith(f"seq {delivery} "))
    assert changed.columns["commitment"][0] == "0x" + "ab" * 32
    assert sum(d.table == "audit_refusals" and d.kind == "changed" for d in result.differences) == 2


def test_last_block_hash_not_on_chain_rewinds_to_the_fork_point(
    indexed: Engine,
    rpc: JsonRpc,
    codec: EventCodec,
    scenario: Scenario,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The chain no longer has the last indexed block: what follows the last shared block is re-indexed,
    and the result is the index a fresh run builds."""
    with indexed.begin() as c:
        c.execute(update(m.progress).values(last_block_hash="0x" + "ee" * 32))
    head = scenario.client.block_number()
    indexer = make_indexer(indexed, rpc, codec, scenario)
    with caplog.at_level("WARNING", logger="dxl.audit.indexer"):
        indexer.sync(to_block=head)
    assert "the chain diverged from the audit index" in caplog.text
    reference = open_store(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    make_indexer(reference, rpc, codec, scenario).sync(to_block=head)
    assert _rows(indexed) == _rows(reference)
    caplog.clear()
    with caplog.at_level("WARNING", logger="dxl.audit.indexer"):
        assert indexer.heal() is None  # healed: nothing diverges any more
    assert not caplog.text


def test_range_stored_by_another_indexer_first_is_dropped_not_duplicated(
    tmp_path: Path, rpc: JsonRpc, codec: EventCodec, scenario: Scenario
) -> None:
    from node.audit.derive import derive_range
    from node.audit.indexer import load_lineage, write_range

    head = scenario.client.block_number()
    engine = open_store(f"sqlite:///{tmp_path / 'race.sqlite3'}")
    slow = make_indexer(engine, rpc, codec, scenario)
    first = slow._progress().last_block + 1
    # The slow writer reads a range, then another indexer of the same database stores it first.
    stale = derive_range(rpc, codec, load_lineage(engine), scenario.contract, first, head, scan_refusals=True)
    make_indexer(engine, rpc, codec, scenario).sync(to_block=head)
    before = _rows(engine)
    assert write_range(engine, stale) is False
    assert _rows(engine) == before
    # A sync that loses the race mid-way (another indexer stores everything after its first range) carries on
    # after the other writer's rows: no gap, no duplicate.
    engine2 = open_store(f"sqlite:///{tmp_path / 'race2.sqlite3'}")
    other = make_indexer(engine2, rpc, codec, scenario)
    racing = make_indexer(engine2, rpc, codec, scenario, batch_blocks=3)

    def other_stores_the_rest(_: DerivedRange) -> None:
        other.sync(to_block=head)

    done = racing.sync(to_block=head, on_range=other_stores_the_rest)
    assert done.ranges == 1  # its later ranges were stored by the other indexer
    reference = open_store(f"sqlite:///{tmp_path / 'once.sqlite3'}")
    make_indexer(reference, rpc, codec, scenario).sync(to_block=head)
    assert _rows(engine) == _rows(reference) == _rows(engine2)
