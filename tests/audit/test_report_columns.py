"""Every column of every kind of report row is checked against the chain, in the JSON and the CSV report."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from node.audit.errors import ReportFormatError
from node.audit.events import EventCodec
from node.audit.reports import build_report, write_report
from node.audit.store import open_store
from node.audit.verify import REPORT_COLUMNS, load_report, verify_report
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario, make_indexer
from tests.audit.report_tamper import assert_each_named, changed, one_row_per_kind, rewrite_csv


@pytest.fixture(scope="module")
def report_dir(
    node_endpoint: NodeEndpoint,
    codec: EventCodec,
    scenario: Scenario,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """One report of the whole scenario, written once; tests edit copies of it."""
    base = tmp_path_factory.mktemp("report-columns")
    engine = open_store(f"sqlite:///{base / 'audit.sqlite3'}")
    with JsonRpc(node_endpoint.rpc_url) as rpc:
        make_indexer(engine, rpc, codec, scenario).sync(to_block=scenario.client.block_number())
        report = build_report(engine, period_from=0, period_to=4_000_000_000, block_time=rpc.block_time)
    write_report(report, base / "out")
    engine.dispose()
    return base / "out"


@pytest.fixture
def written(report_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(report_dir, tmp_path / "out"))


def test_report_holds_every_row_kind(written: Path) -> None:
    kinds = {r["event"] for r in load_report(written)["rows"]}
    assert {
        "DepartmentAdmitted",
        "ResourceRegistered",
        "AccessRequested",
        "RequestApproved",
        "RequestRejected",
        "AgreementConcluded",
        "GrantIssued",
        "GrantRevoked",
        "DeliveryRecorded",
        "DeliveryAcknowledged",
        "DeliveryDisputed",
    } <= kinds


@pytest.mark.parametrize("column", REPORT_COLUMNS)
def test_json_report_edit_of_any_column_is_named(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]], column: str
) -> None:
    doc = load_report(written)
    targets = one_row_per_kind(doc["rows"])
    for row in targets:
        row[column] = changed(column, row)
    result = verify_report(doc, rpc, abi)
    assert not result.ok
    assert_each_named(result.problems, targets, column)


def test_csv_report_verifies_like_the_json_one(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]]
) -> None:
    from_json, from_csv = load_report(written / "report.json"), load_report(written / "report.csv")
    assert from_csv["rows"] == from_json["rows"]
    assert {k: from_csv[k] for k in from_csv if k != "rows"} == {
        k: from_json[k] for k in from_json if k != "rows"
    }
    assert verify_report(from_csv, rpc, abi).ok


@pytest.mark.parametrize("column", REPORT_COLUMNS)
def test_csv_report_edit_of_any_column_is_named(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]], column: str
) -> None:
    edited = rewrite_csv(written / "report.csv", column)
    result = verify_report(load_report(written / "report.csv"), rpc, abi)
    assert not result.ok
    assert_each_named(result.problems, edited, column)


@pytest.mark.parametrize(
    ("cell", "why"),
    [("07", "leading zero"), ("7.0", "float"), ("true", "boolean"), (" 7", "space")],
)
def test_csv_integer_cells_only_in_canonical_spelling(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]], cell: str, why: str
) -> None:
    path = written / "report.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    header_at = next(i for i, line in enumerate(lines) if line.startswith("row,"))
    cells = next(csv.reader([lines[header_at + 1]]))
    cells[REPORT_COLUMNS.index("tx_index")] = cell
    out = io.StringIO(newline="")
    csv.writer(out).writerow(cells)
    lines[header_at + 1] = out.getvalue().rstrip("\r\n")
    path.write_text("\r\n".join(lines), encoding="utf-8", newline="")
    result = verify_report(load_report(path), rpc, abi)
    assert any(p.startswith("row 0: tx_index is ") for p in result.problems), (why, result.problems)


def test_report_header_contradictions_are_named(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]]
) -> None:
    doc = load_report(written)
    doc["row_count"] += 1
    doc["period"]["to_iso"] = "2099-01-01T00:00:00Z"
    result = verify_report(doc, rpc, abi)
    assert any(p.startswith("row_count is ") for p in result.problems), result.problems
    assert any(p.startswith("period to_iso is ") for p in result.problems), result.problems


def test_csv_report_giving_a_header_field_twice_is_refused(written: Path) -> None:
    """A forged period (or department, or contract) written above the true one: a person reading the file
    sees the first line, the re-check read the last and verified the rows of another selection. Refused as
    a manifest naming a key twice is, rather than one of the two taken."""
    path = written / "report.csv"
    lines = path.read_bytes().decode("utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("# period:"))
    lines.insert(at, '# period: {"from": 0, "to": 1}\r\n')
    path.write_text("".join(lines), encoding="utf-8", newline="")
    with pytest.raises(ReportFormatError) as refused:
        load_report(path)
    assert str(refused.value) == f"{path}: line {at + 2} gives period again (first on line {at + 1})"


@pytest.mark.parametrize(
    ("section", "extra"),
    [("period", {"label": "the whole year 2026"}), ("block_range", {"complete": True}),
     ("department", {"id": 1, "code": None, "name": "Public Security Bureau"})],
)  # fmt: skip
def test_report_header_claim_beside_a_sections_fields_is_named(
    written: Path, rpc: JsonRpc, abi: list[dict[str, Any]], section: str, extra: dict[str, Any]
) -> None:
    """A claim written inside the period, the block range or the department, which the chain cannot back:
    one beside the report's fields was named, one inside them passed as verified."""
    doc = load_report(written)
    doc[section] = {**(doc[section] or {}), **extra}
    key = next(k for k in extra if k not in ("id", "code"))
    result = verify_report(doc, rpc, abi)
    assert f"{section}: {key} is not a field of a report's {section}, and nothing in it is verified" in (
        result.problems
    ), result.problems
