"""Audit reports: exported rows verify against the node alone; edits, drops and reorders are named."""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from node.audit.errors import InvalidQueryError
from node.audit.queries import department_id
from node.audit.reports import build_report, write_report
from node.audit.verify import load_report, verify_report
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from tests.audit.audit_scenario import Scenario


@pytest.fixture(scope="module")
def report_dir(
    indexed_for_reading: Engine, node_endpoint: NodeEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """HEALTH's report of the scenario, written once; each test loads its own copy of the document."""
    out = tmp_path_factory.mktemp("audit-report") / "out"
    with JsonRpc(node_endpoint.rpc_url) as rpc:
        doc = build_report(
            indexed_for_reading, period_from=0, period_to=4_000_000_000,
            department=department_id(indexed_for_reading, "HEALTH"), block_time=rpc.block_time,
        )  # fmt: skip
    write_report(doc, out)
    return out


@pytest.fixture
def report(report_dir: Path) -> dict[str, Any]:
    return load_report(report_dir)


def test_report_rows_carry_location_and_fields(report: dict[str, Any], report_dir: Path) -> None:
    assert report["row_count"] == len(report["rows"]) > 10
    for row in report["rows"]:
        assert {"tx_hash", "block_number", "block_hash", "log_index", "fields"} <= row.keys()
    with (report_dir / "report.csv").open() as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert len(rows) == report["row_count"]
    assert json.loads(rows[0]["fields"]) == report["rows"][0]["fields"]


def test_untouched_report_verifies(report: dict[str, Any], rpc: JsonRpc, abi: list[dict[str, Any]]) -> None:
    result = verify_report(report, rpc, abi)
    assert result.ok, result.problems
    assert result.chain_events == len(report["rows"])


def test_a_period_after_the_index_is_refused_naming_its_last_blocks_time(
    indexed_for_reading: Engine, report: dict[str, Any], rpc: JsonRpc
) -> None:
    """Refused, naming the last block indexed and its time as people read it (it said Unix seconds)."""
    last = report["block_range"]["to"]
    at = rpc.block_time(last)
    with pytest.raises(InvalidQueryError) as refused:
        build_report(indexed_for_reading, period_from=at + 1, period_to=at + 100, block_time=rpc.block_time)
    spelled = f"{datetime.fromtimestamp(at, UTC):%Y-%m-%dT%H:%M:%SZ}"
    said = f"invalid period: it starts after the last block indexed ({last}, of {spelled})"
    assert refused.value.message == said


def _changed_commitment(doc: dict[str, Any]) -> list[str]:
    row = next(r for r in doc["rows"] if r["event"] == "DeliveryRecorded")
    row["fields"]["commitment"] = "0x" + "00" * 32
    return [f"row {row['row']}: field commitment"]


def _dropped(doc: dict[str, Any]) -> list[str]:
    row = doc["rows"].pop(5)
    return ["row 6: stands at position 5", f"missing row: {row['event']} at block {row['block_number']} log "]


def _reordered(doc: dict[str, Any]) -> list[str]:
    rows = doc["rows"]
    rows[3], rows[4] = rows[4], rows[3]
    return ["row 3: out of chain order", "row 4: stands at position 3"]


def _duplicated(doc: dict[str, Any]) -> list[str]:
    rows = doc["rows"]
    rows.insert(4, copy.deepcopy(rows[3]))
    doc["row_count"] += 1
    # Named as what it is, as a practice row given twice is: "out of chain order" sent the reader looking
    # for a row moved.
    at = f"block {rows[3]['block_number']} log {rows[3]['log_index']}"
    return [f"row 3: given twice ({at} is an earlier row's too)", "row 4: stands at position 5"]


def _start_cut_off(doc: dict[str, Any]) -> list[str]:
    """The first rows dropped and the block range raised to start after them: their lineage is lost too.
    (Where the node still keeps the state of the block before, "block_range starts at block N, but the ledger
    has code" is said too; the module's node keeps 64 blocks of state, so that line is not asserted.)"""
    rows = doc["rows"]
    start = rows[3]["block_number"]
    doc["rows"] = [{**r, "row": i} for i, r in enumerate(r for r in rows if r["block_number"] >= start)]
    doc["row_count"] = len(doc["rows"])
    doc["block_range"]["from"] = start
    return [
        f"missing row: {r['event']} at block {r['block_number']} log {r['log_index']} "
        for r in rows
        if r["block_number"] < start
    ]


def _extra_field(doc: dict[str, Any]) -> list[str]:
    """A claim added beside the rows, which the chain cannot back: not silently passed as verified."""
    doc["summary"] = {"deliveries_acknowledged": "100%"}
    return ["summary: not a field of a report, and nothing in it is verified"]


@pytest.mark.parametrize(
    "tamper",
    [_changed_commitment, _dropped, _reordered, _duplicated, _start_cut_off, _extra_field],
    ids=["commitment", "drop", "reorder", "duplicate", "start-cut-off", "extra-field"],
)
def test_tampered_report_fails_naming_rows(
    report: dict[str, Any],
    rpc: JsonRpc,
    abi: list[dict[str, Any]],
    tamper: Callable[[dict[str, Any]], list[str]],
) -> None:
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


def test_report_ended_within_its_last_second_is_the_report_of_that_block(
    report: dict[str, Any], rpc: JsonRpc, abi: list[dict[str, Any]]
) -> None:
    """Blocks of the scenario that share one second (a node stamps several blocks with one second): a report
    ended at the first of them, its period ending a second after it, is the report made at that block, and
    holds every event it must. Events after it in that second came after the report (the end cut at a later
    second is named: tests/api/test_report_tamper.py)."""
    doc = copy.deepcopy(report)
    rows = doc["rows"]
    by_second: dict[int, list[int]] = {}
    for r in rows:
        by_second.setdefault(r["block_time"], []).append(r["block_number"])
    # The second with the most blocks (all of them on an idle machine; a loaded one spreads them).
    second, blocks = max(by_second.items(), key=lambda kv: len(set(kv[1])))
    if len(set(blocks)) < 2:
        pytest.skip("no two blocks of the scenario share a second on this run (a very slow machine)")
    end = min(blocks)
    doc["rows"] = [r for r in rows if r["block_number"] <= end]
    doc["row_count"] = len(doc["rows"])
    doc["block_range"]["to"] = end
    doc["period"]["to"] = second + 1
    doc["period"]["to_iso"] = f"{datetime.fromtimestamp(second + 1, UTC):%Y-%m-%dT%H:%M:%SZ}"
    result = verify_report(doc, rpc, abi)
    assert result.ok, result.problems


def _plain(value: object) -> object:
    """A web3-decoded event argument as a report's ``fields`` spell it (bytes as lower-case hex, addresses
    EIP-55 as web3 gives them)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def test_every_report_column_is_what_the_chain_holds_read_with_web3(
    report: dict[str, Any], scenario: Scenario
) -> None:
    """Each row of HEALTH's report against the node read with web3 alone, not the audit codec that wrote the
    report and re-derives it in `dxl audit verify`: location, address, time, event and every decoded field
    of its log; its grant, agreement, request, resource and parties as the ledger's views answer them; and
    every ledger log naming HEALTH's exchanges is a row."""
    from node.types import Agreement, Grant

    client = scenario.client
    w3, contract = client.w3, client.w3.eth.contract(address=scenario.contract, abi=client.abi)
    events = {e["name"]: getattr(contract.events, e["name"])() for e in client.abi if e["type"] == "event"}
    by_location = {(r["block_number"], r["log_index"]): r for r in report["rows"]}
    health = scenario.depts["HEALTH"]
    seen = 0
    for log in w3.eth.get_logs({"address": scenario.contract, "fromBlock": scenario.start_block}):
        row = by_location.get((log["blockNumber"], log["logIndex"]))
        if row is None:
            name = next(n for n, e in events.items() if "0x" + bytes(log["topics"][0]).hex() == e.topic)
            args = events[name].process_log(log)["args"]
            agreement = args.get("agreementId") or (
                Grant.read(client, args["grantId"]).agreement_id if "grantId" in args else None
            )
            if agreement:
                left_out = Agreement.read(client, agreement)
                assert health not in (left_out.provider, left_out.consumer), (name, args)
            continue
        seen += 1
        decoded = events[row["event"]].process_log(log)
        block = w3.eth.get_block(log["blockNumber"])
        location = (
            row["block_hash"],
            row["tx_hash"],
            row["tx_index"],
            row["address"].lower(),
            row["block_time"],
        )
        assert location == (
            "0x" + bytes(block["hash"]).hex(), "0x" + bytes(log["transactionHash"]).hex(),
            log["transactionIndex"], scenario.contract.lower(), block["timestamp"],
        ), row  # fmt: skip
        assert row["fields"] == {k: _plain(v) for k, v in decoded["args"].items()}, row
        if row["grant_id"] is not None:
            assert Grant.read(client, row["grant_id"]).agreement_id == row["agreement_id"], row
        if row["agreement_id"] is not None:
            a = Agreement.read(client, row["agreement_id"])
            assert (a.resource_id, a.provider, a.consumer) == (
                row["resource_id"], row["provider_id"], row["consumer_id"]
            ), row  # fmt: skip
            assert health in (a.provider, a.consumer), row
    assert seen == len(report["rows"])
