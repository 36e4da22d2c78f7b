"""``dxl audit check``: re-derive the whole audit trail from the chain's logs and list every database row that
differs (changed, missing or extra). The chain is the reference; a hand-edited database is caught here.

The progress row is stored bytes too, and the range the check reads is taken from it: a raised ``start_block``
would have left the first blocks' rows unread, and a row stored before it or after ``last_block`` unseen. So
its ``chain_id`` is compared with the node's, its ``last_block_hash`` with the chain's hash of that block, its
ledger, anchors and first block with the deployment's (:class:`IndexedContracts`, from a trusted source), and
every row of every table outside the range is named as extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from node.audit import models as m
from node.audit.derive import chunks, derive_range, record_row
from node.audit.errors import AuditError
from node.audit.events import EventCodec, Lineage, seq_of
from node.audit.indexer import Progress, read_progress
from node.rpc import JsonRpc


@dataclass(frozen=True)
class Difference:
    """One row that differs: ``kind`` is ``changed``, ``missing`` (on chain, not in the database) or ``extra``
    (in the database, not on chain); ``columns`` maps each changed column to ``(database, chain)``."""

    table: str
    key: str
    kind: str
    columns: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind != "changed":
            return f"{self.table} {self.key}: {self.kind}"
        cols = "; ".join(f"{c}: database {d!r} != chain {ch!r}" for c, (d, ch) in self.columns.items())
        return f"{self.table} {self.key}: changed ({cols})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "kind": self.kind,
            "columns": {c: {"database": d, "chain": ch} for c, (d, ch) in self.columns.items()},
        }


@dataclass
class CheckResult:
    from_block: int
    to_block: int
    events_checked: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from_block": self.from_block,
            "to_block": self.to_block,
            "events_checked": self.events_checked,
            "differences": [d.to_dict() for d in self.differences],
        }


@dataclass(frozen=True)
class IndexedContracts:
    """What the audit database must index, from a trusted source (the deployment record), not from the
    database itself."""

    chain_id: int
    contract: str
    start_block: int
    #: The receipt anchors beside the ledger (None: the deployment names none).
    anchors: str | None = None
    #: The sharing practice contract beside the ledger (None: the deployment names none).
    practice: str | None = None
    #: Whether refused deliveries are indexed (``DXL_AUDIT_SCAN_REFUSALS``; None: as the database says).
    scan_refusals: bool | None = None


def _progress_differences(
    progress: Progress, chain_id: int, last_block_hash: str | None, expected: IndexedContracts | None
) -> list[Difference]:
    """The progress row's columns that the node or the deployment contradict."""
    changed: dict[str, tuple[Any, Any]] = {}
    if progress.chain_id != chain_id:
        changed["chain_id"] = (progress.chain_id, chain_id)
    # NULL while a range is to be re-read (receipt anchors adopted); the next sync writes it.
    if progress.last_block_hash is not None and progress.last_block_hash != last_block_hash:
        changed["last_block_hash"] = (progress.last_block_hash, last_block_hash)
    if expected is not None:
        if progress.contract.lower() != expected.contract.lower():
            changed["contract"] = (progress.contract, expected.contract)
        if progress.start_block != expected.start_block:
            changed["start_block"] = (progress.start_block, expected.start_block)
        # NULL says the database never indexed the contract, which its next sync adopts; until then its
        # answers lack that contract's events, as they would if its rows had been deleted and the column
        # emptied to pass for a database made before it: named either way, with each event it lacks.
        for column in ("anchors", "practice"):
            stored, trusted = progress.companion(column), getattr(expected, column)
            if (stored or "").lower() != (trusted or "").lower():
                changed[column] = (stored, trusted)
        # Turned off with the refusals deleted, the database passed for one that never scanned them, and its
        # scorecards counted none.
        if expected.scan_refusals is not None and progress.scan_refusals != expected.scan_refusals:
            changed["scan_refusals"] = (progress.scan_refusals, expected.scan_refusals)
    return [Difference("audit_progress", "row 1", "changed", changed)] if changed else []


def _diff_table(
    table: str,
    keyname: str,
    db_rows: dict[Any, dict[str, Any]],
    chain_rows: dict[Any, dict[str, Any]],
    describe_key: Any,
) -> list[Difference]:
    out = []
    for key in sorted(set(db_rows) | set(chain_rows)):
        d, c = db_rows.get(key), chain_rows.get(key)
        label = describe_key(key, d or c)
        if d is None:
            out.append(Difference(table, label, "missing"))
        elif c is None:
            out.append(Difference(table, label, "extra"))
        else:
            changed = {col: (d[col], c[col]) for col in c if d.get(col) != c[col]}
            if changed:
                out.append(Difference(table, label, "changed", changed))
    return out


def _event_label(seq: int, row: dict[str, Any]) -> str:
    return (
        f"seq {seq} ({row['event']} block {row['block_number']} log {row['log_index']} tx {row['tx_hash']})"
    )


def check_store(
    engine: Engine,
    rpc: JsonRpc,
    codec: EventCodec,
    *,
    batch_blocks: int = 2000,
    expected: IndexedContracts | None = None,
) -> CheckResult:
    """Compare the database with the chain over everything indexed so far, one block range at a time, and
    its progress row with the node and ``expected`` (the deployment's contracts; without it only with the
    node). Rows outside the indexed range are extra.

    Raises:
        AuditError: nothing has been indexed yet.
        NodeError: the node fails.
    """
    progress = read_progress(engine)
    if progress is None:
        raise AuditError("the audit database is empty: run `dxl audit index` first")
    # The trusted first block, when given: a raised start_block must not leave the first blocks unread.
    start = progress.start_block if expected is None else min(progress.start_block, expected.start_block)
    result = CheckResult(start, progress.last_block)
    lineage = Lineage(remember_deliveries=10**9)
    contract, anchors, practice = progress.contract, progress.anchors, progress.practice
    scan_refusals = progress.scan_refusals
    if expected is not None:
        contract, anchors, practice = expected.contract, expected.anchors, expected.practice
        if expected.scan_refusals is not None:
            scan_refusals = expected.scan_refusals
    ranges = chunks(start, progress.last_block, batch_blocks) if progress.last_block >= start else []
    last_block_hash: str | None = None
    # The first range also holds every row stored before it, and the last every row after it; with nothing
    # indexed, one empty range holds them all.
    for position, (first, last) in enumerate(ranges or [(start, start - 1)]):
        if ranges:
            derived = derive_range(
                rpc,
                codec,
                lineage,
                contract,
                first,
                last,
                scan_refusals=scan_refusals,
                anchors=anchors,
                practice=practice,
            )
            last_block_hash = derived.last_block_hash
            records, blocks, refusals = derived.records, derived.blocks, derived.refusals
            practice_records = derived.practice
        else:
            records, blocks, refusals, practice_records = [], [], [], []
        low = position == 0
        high = position == max(len(ranges) - 1, 0)
        lo, hi = seq_of(first, 0), seq_of(last + 1, 0)
        with engine.connect() as c:
            e, b, r, p = m.events.c, m.blocks.c, m.refusals.c, m.practice_events.c
            db_events = {
                row.seq: dict(row._mapping)
                for row in c.execute(select(m.events).where(*_bounds(e.seq, lo, hi - 1, low=low, high=high)))
            }
            db_practice = {
                row.seq: dict(row._mapping)
                for row in c.execute(
                    select(m.practice_events).where(*_bounds(p.seq, lo, hi - 1, low=low, high=high))
                )
            }
            db_blocks = {
                row.number: dict(row._mapping)
                for row in c.execute(
                    select(m.blocks).where(*_bounds(b.number, first, last, low=low, high=high))
                )
            }
            db_refusals = {
                row.tx_hash: dict(row._mapping)
                for row in c.execute(
                    select(m.refusals).where(*_bounds(r.block_number, first, last, low=low, high=high))
                )
            }
        chain_events = {rec.seq: record_row(rec) for rec in records}
        chain_practice = {rec.seq: rec.row() for rec in practice_records}
        result.events_checked += len(chain_events) + len(chain_practice)
        result.differences += _diff_table("audit_events", "seq", db_events, chain_events, _event_label)
        result.differences += _diff_table(
            "audit_practice_events", "seq", db_practice, chain_practice, _event_label
        )
        result.differences += _diff_table(
            "audit_blocks",
            "number",
            db_blocks,
            {block.number: dict(block.__dict__) for block in blocks},
            lambda k, _r: f"block {k}",
        )
        result.differences += _diff_table(
            "audit_refusals",
            "tx_hash",
            db_refusals,
            {refusal.tx_hash: refusal.row() for refusal in refusals},
            lambda k, r: f"tx {k} (block {r['block_number']})",
        )
    result.differences[:0] = _progress_differences(progress, rpc.chain_id(), last_block_hash, expected)
    return result


def _bounds(column: Any, first: int, last: int, *, low: bool, high: bool) -> list[Any]:
    """``first <= column <= last``, open below for the first range and above for the last."""
    return [*([] if low else [column >= first]), *([] if high else [column <= last])]
