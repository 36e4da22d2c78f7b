"""Re-checking an audit report against any node, without the dxl service or its database.

This module imports only the pure decoder (:mod:`node.audit.events`) and the bare JSON-RPC client
(:mod:`node.audit.rpc`): an auditor can run it against their own node. It re-derives, from the chain's logs
alone, every event the report's period and department select over the report's block range, then checks:

* each row exists on chain at its block number and log index, in the stated block (hash) and transaction, from
  the ledger's address, with the same event name, decoded fields and block time;
* rows are in chain order (a reordered row is named);
* completeness: every event the chain has for the selection is in the report (a dropped row is named by its
  chain location, and by the gap in row numbers).

Cost: one ``eth_getLogs`` per 2,000 blocks from the deployment block to the report's last block (department
filters need the lineage from the start), plus one header per block holding events.

Callers MUST take the contract address from a trusted source (``--contract``) rather than the report itself
when the report's author is not trusted: a forged report could name a forged contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.audit.errors import AuditError, ReportFormatError
from node.audit.events import EventCodec, EventRecord, Lineage, seq_of
from node.audit.rpc import JsonRpc, quantity

REPORT_FORMAT = "dxl-audit-report/1"
_ROW_FIELDS = (
    "event",
    "block_time",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
    "address",
    "fields",
)


@dataclass
class VerifyResult:
    rows: int
    chain_events: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "chain_events": self.chain_events,
            "problems": self.problems,
        }


def load_report(path: str | Path) -> dict[str, Any]:
    """Read ``report.json`` (or the directory holding it).

    Raises:
        ReportFormatError: unreadable, not JSON, or not a dxl audit report.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportFormatError(f"cannot read audit report {p}: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise ReportFormatError(f"{p} is not a {REPORT_FORMAT} document")
    for key in ("chain_id", "contract", "period", "block_range", "rows"):
        if key not in report:
            raise ReportFormatError(f"{p} lacks {key!r}")
    if not isinstance(report["rows"], list) or not all(isinstance(r, dict) for r in report["rows"]):
        raise ReportFormatError(f"{p}: rows must be a list of objects")
    for i, row in enumerate(report["rows"]):
        missing = [k for k in (*_ROW_FIELDS, "row") if k not in row]
        if missing:
            raise ReportFormatError(f"{p}: row at position {i} lacks {', '.join(missing)}")
    return report


def _selected(record: EventRecord, period: dict[str, Any], department: int | None) -> bool:
    if not period["from"] <= record.block_time < period["to"]:
        return False
    return department is None or department in record.departments()


def verify_report(
    report: dict[str, Any],
    rpc: JsonRpc,
    abi: list[dict[str, Any]],
    *,
    contract: str | None = None,
    batch_blocks: int = 2000,
) -> VerifyResult:
    """Check ``report`` against the chain behind ``rpc`` (see the module docstring).

    Raises:
        AuditError: the node serves another chain than the report's, or the block range is beyond its head.
        NodeError: the node fails.
    """
    chain_id = rpc.chain_id()
    if chain_id != report["chain_id"]:
        raise AuditError(f"the report is for chain {report['chain_id']}, the node serves chain {chain_id}")
    address = (contract or report["contract"]).lower()
    first, last = int(report["block_range"]["from"]), int(report["block_range"]["to"])
    if last > rpc.block_number():
        raise AuditError(f"the report covers blocks up to {last}, beyond the node's head")
    department = (report.get("department") or {}).get("id")
    codec = EventCodec(abi)
    lineage = Lineage(remember_deliveries=10**9)
    chain: dict[int, EventRecord] = {}
    for start in range(first, last + 1, batch_blocks):
        end = min(start + batch_blocks - 1, last)
        logs = [log for log in rpc.logs(address, start, end) if not log.get("removed")]
        numbers = sorted({quantity(log["blockNumber"]) for log in logs})
        headers = {quantity(b["number"]): b for b in rpc.blocks(numbers)} if numbers else {}
        for log in logs:
            number = quantity(log["blockNumber"])
            name, fields = codec.decode(log["topics"], log["data"])
            record = lineage.resolve(
                EventRecord(
                    block_number=number,
                    block_hash=str(headers[number]["hash"]).lower(),
                    block_time=quantity(headers[number]["timestamp"]),
                    tx_hash=str(log["transactionHash"]).lower(),
                    tx_index=quantity(log["transactionIndex"]),
                    log_index=quantity(log["logIndex"]),
                    address=str(log["address"]),
                    event=name,
                    fields=fields,
                )
            )
            if _selected(record, report["period"], department):
                chain[record.seq] = record

    result = VerifyResult(rows=len(report["rows"]), chain_events=len(chain))
    problems = result.problems
    seen: set[int] = set()
    previous: int | None = None
    for position, row in enumerate(report["rows"]):
        label = f"row {row.get('row')}"
        if row.get("row") != position:
            problems.append(
                f"{label}: stands at position {position} (rows dropped, added or renumbered before it)"
            )
        try:
            seq = seq_of(int(row["block_number"]), int(row["log_index"]))
        except (TypeError, ValueError):
            problems.append(f"{label}: block number / log index are not integers")
            continue
        if previous is not None and seq <= previous:
            problems.append(
                f"{label}: out of chain order (block {row['block_number']} log {row['log_index']} "
                "comes before or equals the previous row's)"
            )
        previous = seq if previous is None else max(previous, seq)
        found = chain.get(seq)
        if found is None:
            problems.append(
                f"{label}: no {row['event']} of the report's selection at block {row['block_number']} "
                f"log {row['log_index']} on chain"
            )
            continue
        seen.add(seq)
        record = found
        expected: dict[str, Any] = {
            "event": record.event,
            "block_time": record.block_time,
            "block_number": record.block_number,
            "block_hash": record.block_hash,
            "tx_hash": record.tx_hash,
            "log_index": record.log_index,
            "address": record.address.lower(),
            "fields": record.fields,
        }
        actual: dict[str, Any] = {k: row[k] for k in _ROW_FIELDS}
        actual["address"] = str(actual["address"]).lower()
        for key in ("block_hash", "tx_hash"):
            actual[key] = str(actual[key]).lower()
        for key in _ROW_FIELDS:
            if key == "fields" and isinstance(actual["fields"], dict):
                for fname in sorted(set(expected["fields"]) | set(actual["fields"])):
                    if actual["fields"].get(fname) != expected["fields"].get(fname):
                        problems.append(
                            f"{label}: field {fname} is {actual['fields'].get(fname)!r} in the report, "
                            f"{expected['fields'].get(fname)!r} on chain"
                        )
            elif actual[key] != expected[key]:
                problems.append(
                    f"{label}: {key} is {actual[key]!r} in the report, {expected[key]!r} on chain"
                )
    for seq in sorted(set(chain) - seen):
        r = chain[seq]
        problems.append(
            f"missing row: {r.event} at block {r.block_number} log {r.log_index} (tx {r.tx_hash}) is on "
            "chain but not in the report"
        )
    return result
