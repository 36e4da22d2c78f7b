"""Audit reports: exported rows verify against the node alone; edits, drops and reorders are named."""

from __future__ import annotations

import copy
import csv
import json

import pytest

from node.audit.queries import department_id
from node.audit.reports import build_report, write_report
from node.audit.verify import load_report, verify_report


@pytest.fixture
def report(indexed, rpc, tmp_path, scenario):
    doc = build_report(
        indexed, period_from=0, period_to=4_000_000_000, department=department_id(indexed, "HEALTH"),
        block_time=rpc.block_time,
    )  # fmt: skip
    write_report(doc, tmp_path / "out")
    return load_report(tmp_path / "out")


def test_report_rows_carry_location_and_fields(report, tmp_path) -> None:
    assert report["row_count"] == len(report["rows"]) > 10
    for row in report["rows"]:
        assert {"tx_hash", "block_number", "block_hash", "log_index", "fields"} <= row.keys()
    with (tmp_path / "out" / "report.csv").open() as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert len(rows) == report["row_count"]
    assert json.loads(rows[0]["fields"]) == report["rows"][0]["fields"]


def test_untouched_report_verifies(report, rpc, abi) -> None:
    result = verify_report(report, rpc, abi)
    assert result.ok, result.problems
    assert result.chain_events == len(report["rows"])


def _changed_commitment(doc):
    row = next(r for r in doc["rows"] if r["event"] == "DeliveryRecorded")
    row["fields"]["commitment"] = "0x" + "00" * 32
    return [f"row {row['row']}: field commitment"]


def _dropped(doc):
    row = doc["rows"].pop(5)
    return ["row 6: stands at position 5", f"missing row: {row['event']} at block {row['block_number']} log "]


def _reordered(doc):
    rows = doc["rows"]
    rows[3], rows[4] = rows[4], rows[3]
    return ["row 3: out of chain order", "row 4: stands at position 3"]


def _duplicated(doc):
    rows = doc["rows"]
    rows.insert(4, copy.deepcopy(rows[3]))
    doc["row_count"] += 1
    return ["row 3: out of chain order", "row 4: stands at position 5"]


def _end_cut_off(doc):
    """The last rows dropped and the block range lowered to end before them, as if the report ended there."""
    rows = doc["rows"]
    cut = rows[-3]
    doc["rows"] = [r for r in rows if r["block_number"] < cut["block_number"]]
    doc["row_count"] = len(doc["rows"])
    doc["block_range"]["to"] = cut["block_number"] - 1
    return [
        f"missing row: {r['event']} at block {r['block_number']} log {r['log_index']} (tx {r['tx_hash']}) is "
        f"on chain but not in the report, in its period after its last block {cut['block_number'] - 1}"
        for r in rows
        if r["block_number"] >= cut["block_number"]
    ]


def _start_cut_off(doc):
    """The first rows dropped and the block range raised to start after them: their lineage is lost too."""
    rows = doc["rows"]
    start = rows[3]["block_number"]
    doc["rows"] = [{**r, "row": i} for i, r in enumerate(r for r in rows if r["block_number"] >= start)]
    doc["row_count"] = len(doc["rows"])
    doc["block_range"]["from"] = start
    return [f"block_range starts at block {start}, but the ledger "] + [
        f"missing row: {r['event']} at block {r['block_number']} log {r['log_index']} "
        for r in rows
        if r["block_number"] < start
    ]


def _extra_field(doc):
    """A claim added beside the rows, which the chain cannot back: not silently passed as verified."""
    doc["summary"] = {"deliveries_acknowledged": "100%"}
    return ["summary: not a field of a report, and nothing in it is verified"]


@pytest.mark.parametrize(
    "tamper",
    [_changed_commitment, _dropped, _reordered, _duplicated, _end_cut_off, _start_cut_off, _extra_field],
    ids=["commitment", "drop", "reorder", "duplicate", "end-cut-off", "start-cut-off", "extra-field"],
)
def test_tampered_report_fails_naming_rows(report, rpc, abi, tamper) -> None:
    doc = copy.deepcopy(report)
    expected = tamper(doc)
    result = verify_report(doc, rpc, abi)
    assert not result.ok
    for fragment in expected:
        assert any(p.startswith(fragment) for p in result.problems), (fragment, result.problems)


def test_verifier_loads_nothing_of_the_service_or_its_database() -> None:
    import subprocess
    import sys

    code = (
        "import sys, node.audit.verify, node.compiler; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('api', 'sqlalchemy', 'alembic') "
        "or m in ('node.audit.store', 'node.audit.indexer', 'node.audit.models')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
