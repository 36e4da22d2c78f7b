"""``dxl audit check``: re-derive the whole audit trail from the chain's logs and list every database row that
differs (changed, missing or extra). The chain is the reference; a hand-edited database is caught here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from node.audit import models as m
from node.audit.derive import chunks, derive_range, record_row
from node.audit.errors import AuditError
from node.audit.events import EventCodec, Lineage, seq_of
from node.audit.indexer import read_progress
from node.audit.rpc import JsonRpc


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


def check_store(engine: Engine, rpc: JsonRpc, codec: EventCodec, *, batch_blocks: int = 2000) -> CheckResult:
    """Compare the database with the chain over everything indexed so far, one block range at a time.

    Raises:
        AuditError: nothing has been indexed yet.
        NodeError: the node fails.
    """
    progress = read_progress(engine)
    if progress is None:
        raise AuditError("the audit database is empty: run `dxl audit index` first")
    result = CheckResult(progress.start_block, progress.last_block)
    lineage = Lineage(remember_deliveries=10**9)
    for first, last in (
        chunks(progress.start_block, progress.last_block, batch_blocks)
        if (progress.last_block >= progress.start_block)
        else []
    ):
        derived = derive_range(
            rpc,
            codec,
            lineage,
            progress.contract,
            first,
            last,
            scan_refusals=progress.scan_refusals,
            anchors=progress.anchors,
        )
        lo, hi = seq_of(first, 0), seq_of(last + 1, 0)
        with engine.connect() as c:
            db_events = {
                r.seq: dict(r._mapping)
                for r in c.execute(select(m.events).where(m.events.c.seq >= lo, m.events.c.seq < hi))
            }
            db_blocks = {
                r.number: dict(r._mapping)
                for r in c.execute(
                    select(m.blocks).where(m.blocks.c.number >= first, m.blocks.c.number <= last)
                )
            }
            db_refusals = {
                r.tx_hash: dict(r._mapping)
                for r in c.execute(
                    select(m.refusals).where(
                        m.refusals.c.block_number >= first, m.refusals.c.block_number <= last
                    )
                )
            }
        chain_events = {r.seq: record_row(r) for r in derived.records}
        result.events_checked += len(chain_events)
        result.differences += _diff_table("audit_events", "seq", db_events, chain_events, _event_label)
        result.differences += _diff_table(
            "audit_blocks",
            "number",
            db_blocks,
            {b.number: dict(b.__dict__) for b in derived.blocks},
            lambda k, _r: f"block {k}",
        )
        result.differences += _diff_table(
            "audit_refusals",
            "tx_hash",
            db_refusals,
            {r.tx_hash: r.row() for r in derived.refusals},
            lambda k, r: f"tx {k} (block {r['block_number']})",
        )
    with engine.connect() as c:
        beyond = (
            c.execute(
                select(m.events.c.seq).where(m.events.c.seq >= seq_of(progress.last_block + 1, 0)).limit(20)
            )
            .scalars()
            .all()
        )
    result.differences += [
        Difference("audit_events", f"seq {s} (beyond the indexed range)", "extra") for s in beyond
    ]
    return result
