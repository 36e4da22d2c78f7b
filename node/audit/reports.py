"""``dxl audit report``: a period (optionally one department) exported as JSON and CSV.

Every row carries its chain location (tx hash, block number, block hash, log index) and the event's decoded
fields, so ``dxl audit verify`` can re-check it against any node. ``report.json`` is the verifiable document;
``report.csv`` holds the same document for spreadsheets and is verifiable too: the report's own fields as
``# key: JSON`` lines above the header row (``pandas.read_csv(path, comment="#")`` skips them), then one
row per event (RFC 4180, CRLF line ends, empty cell for null, ``fields`` as a JSON column).

Anchored receipt batches are rows (``ReceiptBatchAnchored``: grant, first sequence, leaf count, root) like
deliveries; :func:`attach_receipts` adds the receipts themselves (``receipt_batches``, a header line in the
CSV file) for the verifier to recompute their roots.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from node.audit import models as m
from node.audit.errors import AuditError, InvalidQueryError, ReportWriteError
from node.audit.events import BATCH_ANCHORED
from node.audit.indexer import read_progress
from node.audit.queries import departments
from node.audit.verify import REPORT_COLUMNS, REPORT_FORMAT, REPORT_HEADER
from verifier.receipts import Receipt
from verifier.text import iso_time


def build_report(
    engine: Engine,
    *,
    period_from: int,
    period_to: int,
    block_time: Callable[[int], int],
    department: int | None = None,
) -> dict[str, Any]:
    """The report document for events with block time in ``[period_from, period_to)`` (of ``department``
    as provider, consumer or subject, if given), within the indexed block range.

    A report holds every event of its period: a period that runs past the last block indexed ends a second
    after that block's time (``block_time(number)`` reads it from the node), and says so in ``period``, so
    that ``dxl audit verify`` can name any event of the period the report lacks, however the report was cut.

    Raises:
        InvalidQueryError: an empty period, or one that starts after the last block indexed.
        AuditError: nothing indexed yet.
        NodeError: the node does not answer ``block_time``.
    """
    if period_from >= period_to:
        raise InvalidQueryError("period", "from must be before to")
    progress = read_progress(engine)
    if progress is None:
        raise AuditError("the audit database is empty: run `dxl audit index` first")
    indexed_to = block_time(progress.last_block) + 1
    if period_from >= indexed_to:
        raise InvalidQueryError(
            "period",
            f"it starts after the last block indexed ({progress.last_block}, of {iso_time(indexed_to - 1)})",
        )
    period_to = min(period_to, indexed_to)
    e = m.events.c
    q = select(m.events).where(e.block_time >= period_from, e.block_time < period_to).order_by(e.seq)
    if department is not None:
        q = q.where(
            (e.provider_id == department) | (e.consumer_id == department) | (e.subject_id == department)
        )
    rows = []
    with engine.connect() as conn:
        for i, r in enumerate(conn.execute(q)):
            rows.append(
                {
                    "row": i,
                    "event": r.event,
                    "time": iso_time(r.block_time),
                    "block_time": r.block_time,
                    "block_number": r.block_number,
                    "block_hash": r.block_hash,
                    "tx_hash": r.tx_hash,
                    "tx_index": r.tx_index,
                    "log_index": r.log_index,
                    "address": r.address,
                    "request_id": r.request_id,
                    "agreement_id": r.agreement_id,
                    "grant_id": r.grant_id,
                    "resource_id": r.resource_id,
                    "provider_id": r.provider_id,
                    "consumer_id": r.consumer_id,
                    "subject_id": r.subject_id,
                    "delivery_id": r.delivery_id,
                    "commitment": r.commitment,
                    "fields": json.loads(r.fields),
                }
            )
    dept = None
    if department is not None:
        known = departments(engine).get(department, {"id": department, "code": None})
        dept = {"id": department, "code": known.get("code")}
    return {
        "format": REPORT_FORMAT,
        "generated_at": iso_time(int(time.time())),
        "chain_id": progress.chain_id,
        "contract": progress.contract,
        "period": {
            "from": period_from,
            "to": period_to,
            "from_iso": iso_time(period_from),
            "to_iso": iso_time(period_to),
        },
        "department": dept,
        # The rows are complete for this block range: from the contract's deployment (lineage of department
        # filters starts there) to the last block indexed when the report was made.
        "block_range": {"from": progress.start_block, "to": progress.last_block},
        "row_count": len(rows),
        # The receipt anchors contract whose batches are among the rows (null: none indexed).
        "anchors": progress.anchors,
        "rows": rows,
    }


def attach_receipts(report: dict[str, Any], lookup: Callable[[int, int], list[Receipt] | None]) -> int:
    """Carry the receipts of every anchored batch among ``report``'s rows (``receipt_batches``: grant, first
    sequence and the receipts' leaf fields in leaf order), so that ``dxl audit verify`` recomputes each
    batch's root. ``lookup(grant, first_sequence)`` answers a batch's receipts, or None if it does not know
    them (the chain holds only roots; the receipts are the provider's): such a batch is listed with
    ``"receipts": null``, declared not carried, which the verifier counts and says. Returns the number of
    batches whose receipts are carried.
    """
    entries: list[dict[str, Any]] = []
    for row in report["rows"]:
        if row["event"] != BATCH_ANCHORED:
            continue
        grant, first = row["fields"]["grantId"], row["fields"]["firstSequence"]
        receipts = lookup(grant, first)
        entries.append(
            {
                "grant_id": grant,
                "first_sequence": first,
                "receipts": None if receipts is None else [r.to_json() for r in receipts],
            }
        )
    report["receipt_batches"] = entries
    return sum(e["receipts"] is not None for e in entries)


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.csv`` into ``out_dir`` (created if needed).

    Raises:
        ReportWriteError: the directory cannot be made or a file in it cannot be written.
    """
    try:
        return _write_report(report, out_dir)
    except OSError as exc:
        raise ReportWriteError(exc.filename or out_dir, exc.strerror or str(exc)) from exc


def _write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "report.json", out_dir / "report.csv"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        for key in (k for k in REPORT_HEADER if k in report):
            fh.write(f"# {key}: {json.dumps(report[key], separators=(',', ':'))}\r\n")
        writer = csv.writer(fh)
        writer.writerow(REPORT_COLUMNS)
        for row in report["rows"]:
            writer.writerow(
                [
                    json.dumps(row[c], separators=(",", ":"))
                    if c == "fields"
                    else ("" if row[c] is None else row[c])
                    for c in REPORT_COLUMNS
                ]
            )
    return json_path, csv_path
