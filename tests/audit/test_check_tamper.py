"""Every stored byte of the audit index, edited in the database, is named by ``dxl audit check``: each column
of an event, a block and a refused delivery, the progress row that says what was indexed and how far, and
rows stored outside the indexed range."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, Table, insert, select, update

from node.audit import models as m
from node.audit.check import CheckResult, IndexedContracts, check_store
from node.audit.events import EventCodec, seq_of
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario


def _other(value: Any) -> Any:
    """A different value of the same kind (hex stays hex, an address an address)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 7
    return value[:-1] + ("0" if value[-1] != "0" else "1")


@pytest.fixture
def deployment(scenario: Scenario) -> IndexedContracts:
    return IndexedContracts(
        scenario.client.chain_id, scenario.contract, scenario.start_block, scan_refusals=True
    )


def _check(indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts) -> CheckResult:
    return check_store(indexed, rpc, codec, expected=deployment)


def _edit_first(indexed: Engine, table: Table, column: str, *where: Any) -> Any:
    """Change ``column`` of ``table``'s first row (in key order, among ``where``); the row's key."""
    key = next(iter(table.primary_key.columns))
    with indexed.begin() as c:
        row = c.execute(select(table).where(*where).order_by(key)).first()
        assert row is not None
        c.execute(
            update(table).where(key == row._mapping[key.name]).values({column: _other(row._mapping[column])})
        )
    return row._mapping[key.name]


def test_untouched_index_passes_with_the_deployment_given(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts
) -> None:
    result = _check(indexed, rpc, codec, deployment)
    assert result.ok, [d.describe() for d in result.differences]


@pytest.mark.parametrize("column", [c for c in m.EVENT_COLUMNS if c != "seq"])
def test_edit_of_any_event_column_is_named(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts, column: str
) -> None:
    seq = _edit_first(indexed, m.events, column, m.events.c.event == "DeliveryRecorded")
    changed = [d for d in _check(indexed, rpc, codec, deployment).differences if d.kind == "changed"]
    assert [(d.table, d.key.split(" (")[0], list(d.columns)) for d in changed] == [
        ("audit_events", f"seq {seq}", [column])
    ]


@pytest.mark.parametrize(
    ("table", "column"),
    [(m.blocks, c.name) for c in m.blocks.columns if c.name != "number"]
    + [(m.refusals, c) for c in m.REFUSAL_COLUMNS if c != "tx_hash"],
)
def test_edit_of_any_block_or_refusal_column_is_named(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts, table: Table, column: str
) -> None:
    _edit_first(indexed, table, column)
    result = _check(indexed, rpc, codec, deployment)
    assert [(d.table, d.kind, list(d.columns)) for d in result.differences] == [
        (table.name, "changed", [column])
    ]


@pytest.mark.parametrize(
    "column", ["chain_id", "contract", "start_block", "last_block_hash", "anchors", "scan_refusals"]
)
def test_edit_of_the_progress_row_is_named(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts, column: str
) -> None:
    """A raised start_block left the first blocks' rows unread, and an edited last block hash, chain id or
    anchors passed: the check took its range and identity from the row it was checking."""
    with indexed.begin() as c:
        current = c.execute(select(m.progress.c[column])).scalar_one()
        value = "0x" + "12" * 20 if column == "anchors" else _other(current)
        c.execute(update(m.progress).values({column: value}))
    differences = _check(indexed, rpc, codec, deployment).differences
    assert differences[0].table == "audit_progress" and column in differences[0].columns, [
        d.describe() for d in differences
    ]


@pytest.mark.parametrize("where", ["before the first block", "after the last block"])
def test_rows_stored_outside_the_indexed_range_are_extra(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts, where: str
) -> None:
    """Rows below start_block (or past last_block) were never compared: an event, a block or a refusal stored
    there passed."""
    with indexed.begin() as c:
        progress = c.execute(select(m.progress)).one()
        number = progress.start_block - 1 if where.startswith("before") else progress.last_block + 5
        first_event = c.execute(select(m.events).order_by(m.events.c.seq)).first()
        first_refusal = c.execute(select(m.refusals)).first()
        assert first_event is not None and first_refusal is not None  # the scenario has both
        event, refusal = dict(first_event._mapping), dict(first_refusal._mapping)
        c.execute(insert(m.events).values({**event, "seq": seq_of(number, 3), "block_number": number}))
        c.execute(insert(m.blocks).values(number=number, hash="0x" + "34" * 32, timestamp=1))
        c.execute(insert(m.refusals).values({**refusal, "tx_hash": "0x" + "56" * 32, "block_number": number}))
    extra = {(d.table, d.kind) for d in _check(indexed, rpc, codec, deployment).differences}
    assert extra == {("audit_events", "extra"), ("audit_blocks", "extra"), ("audit_refusals", "extra")}


def test_refusals_deleted_with_their_scan_turned_off_are_named(
    indexed: Engine, rpc: JsonRpc, codec: EventCodec, deployment: IndexedContracts
) -> None:
    """The refused deliveries deleted and the progress row's scan_refusals turned off, as if they had never
    been scanned: the check read the chain as the row said, found none to compare, and the scorecards counted
    no refused delivery. Held to the settings' scan (DXL_AUDIT_SCAN_REFUSALS), the row and each refusal it
    lacks are named."""
    with indexed.begin() as c:
        refused = set(c.execute(select(m.refusals.c.tx_hash)).scalars())
        c.execute(m.refusals.delete())
        c.execute(update(m.progress).values(scan_refusals=False))
    differences = _check(indexed, rpc, codec, deployment).differences
    assert refused and differences[0].describe() == (
        "audit_progress row 1: changed (scan_refusals: database False != chain True)"
    )
    assert {
        d.key.split()[1] for d in differences[1:] if (d.table, d.kind) == ("audit_refusals", "missing")
    } == (refused), [d.describe() for d in differences]
