"""``dxl audit`` end to end through the CLI: index, check (exit 1 naming a tampered row), report and verify
(exit 0 / 1 / 2), scorecard --json."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dxl.app import app
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from node.types import ShareType
from tests.audit.audit_scenario import Scenario, _resource, period_end, run_scenario
from tests.cli import dxl
from tests.hostile_node import answering, silent
from tests.rpc_proxy import RpcProxy


@pytest.fixture
def env(
    scenario: Scenario, node_endpoint: NodeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    db = tmp_path / "cli-audit.sqlite3"
    monkeypatch.setenv("DXL_HOME", str(scenario.home))
    monkeypatch.setenv("DXL_RPC_URL", node_endpoint.rpc_url)
    monkeypatch.setenv("DXL_CHAIN_ID", str(node_endpoint.chain_id))
    monkeypatch.setenv("DXL_DATABASE_URL", f"sqlite:///{db}")
    return db


def run(*args: str) -> tuple[int, str]:
    """``dxl audit ARGS...`` as its entry point runs it (the command tree built once a process, where typer's
    ``CliRunner`` built it again for each of the module's 42 runs): the exit status and stdout then stderr."""
    code, out, err = dxl("audit", *args)
    return code, out + err


def test_index_check_tamper(env: Path) -> None:
    code, out = run("index", "--json")
    assert code == 0 and json.loads(out)["events"] > 30
    indexed = json.loads(out)["to_block"]
    # Run again with no new block: said so, not "indexed blocks N+1..N".
    code, out = run("index", "--to-block", str(indexed))
    assert (code, out) == (0, f"nothing new to index: the index is at block {indexed}\n"), out
    assert run("check")[0] == 0
    with sqlite3.connect(env) as db:
        seq = db.execute("SELECT seq FROM audit_events WHERE event = 'DeliveryAcknowledged'").fetchone()[0]
        db.execute("UPDATE audit_events SET fields = '{}' WHERE seq = ?", (seq,))
    code, out = run("check")
    assert code == 1
    assert f"audit_events seq {seq} (DeliveryAcknowledged" in out and "changed (fields:" in out
    assert out.rstrip().endswith(": 1 row differs"), out  # "1 row(s) differ" before
    code, out = run("index", "--rebuild", "--json")
    assert code == 0 and json.loads(out)["events"] > 30
    assert run("check")[0] == 0


def test_check_holds_the_progress_row_to_the_deployment(env: Path) -> None:
    """A start block raised in the database would leave the first blocks' rows unread: the CLI checks the row
    against the deployment record, not against itself."""
    assert run("index")[0] == 0
    with sqlite3.connect(env) as db:
        db.execute("UPDATE audit_progress SET start_block = start_block + 1")
    code, out = run("check")
    assert code == 1 and "audit_progress row 1: changed (start_block: database " in out, out


def test_report_and_verify_exit_codes(env: Path, node_endpoint: NodeEndpoint, tmp_path: Path) -> None:
    assert run("index")[0] == 0
    out_dir = tmp_path / "report"
    code, out = run("report", "--from", "2000-01-01", "--to", "2100-01-01", "--department", "TAX", "--out",
                    str(out_dir))  # fmt: skip
    assert code == 0, out
    code, out = run("verify", str(out_dir), "--rpc", node_endpoint.rpc_url, "--json")
    head = node_endpoint.verify()
    assert code == 0 and json.loads(out)["node"]["rpc_url"] == node_endpoint.rpc_url, out
    assert json.loads(out)["node"]["block"] == head  # the node read and its head, to read it again there
    code, out = run("verify", str(out_dir), "--rpc", node_endpoint.rpc_url)
    assert code == 0 and f"read from {node_endpoint.rpc_url} at block {head} " in out, out
    doc = json.loads((out_dir / "report.json").read_text())
    doc["rows"][2]["tx_hash"] = "0x" + "00" * 32
    (out_dir / "report.json").write_text(json.dumps(doc))
    code, out = run("verify", str(out_dir), "--rpc", node_endpoint.rpc_url)
    assert code == 1 and "row 2: tx_hash" in out
    assert run("verify", str(out_dir / "report.csv"), "--rpc", node_endpoint.rpc_url)[0] == 0
    csv_path = out_dir / "report.csv"
    forged = csv_path.read_bytes().replace(doc["rows"][3]["tx_hash"].encode(), b"0x" + b"00" * 32)
    csv_path.write_bytes(forged)
    code, out = run("verify", str(out_dir / "report.csv"), "--rpc", node_endpoint.rpc_url)
    assert code == 1 and "row 3: tx_hash" in out
    assert run("verify", str(tmp_path / "nothing.json"), "--rpc", node_endpoint.rpc_url)[0] == 2
    assert run("verify", str(out_dir), "--rpc", "http://127.0.0.1:9")[0] == 2


def test_verify_reads_the_configured_node_at_the_head_it_names(
    node_endpoint: NodeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --rpc the report is re-checked against the node every reading command reads (DXL_RPC_URL
    here), at the head it names: a resource registered just after that head was read, inside a period that
    runs past the report's last block, is not in the answer. Read at the head of each read, it was a
    missing row of a block after the one named: exit 1 for a report that was whole at that block."""
    scenario = run_scenario(node_endpoint, tmp_path / "home")  # a ledger of its own: one event is added
    monkeypatch.setenv("DXL_HOME", str(scenario.home))
    monkeypatch.setenv("DXL_RPC_URL", node_endpoint.rpc_url)
    monkeypatch.setenv("DXL_CHAIN_ID", str(node_endpoint.chain_id))
    monkeypatch.setenv("DXL_DATABASE_URL", f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    assert run("index")[0] == 0
    code, out = run("report", "--out", str(tmp_path / "report"), "--json")
    assert code == 0, out
    last = json.loads((tmp_path / "report" / "report.json").read_text())["block_range"]["to"]
    assert json.loads(out)["node"]["block"] == last
    path = tmp_path / "report" / "report.json"
    doc = json.loads(path.read_text())
    doc["period"]["to"] = 4_102_444_800  # 2100-01-01: every later block's events belong in the report
    del doc["period"]["to_iso"]
    path.write_text(json.dumps(doc))
    registered: list[int] = []
    with RpcProxy(node_endpoint.rpc_url) as proxy:
        monkeypatch.setenv("DXL_RPC_URL", proxy.url)

        def register_resource() -> None:
            # Stamped seconds after the report's last block: a block sharing its second came after the
            # report, which need not hold it (node.audit.verify._Scan.due).
            scenario.client.w3.provider.make_request("evm_increaseTime", [5])  # type: ignore[arg-type]
            _resource(scenario, "TAX", "r_late", ShareType.UNCONDITIONAL)
            registered.append(scenario.client.block_number())

        proxy.after_head = register_resource
        code, out = run("verify", str(path), "--json")
    node = json.loads(out)["node"]
    assert registered and (node["rpc_url"], node["block"]) == (proxy.url, registered[0] - 1), out
    assert code == 0 and json.loads(out)["problems"] == [], out
    # At the head now the resource is there, and the report lacks it.
    monkeypatch.setenv("DXL_RPC_URL", node_endpoint.rpc_url)
    code, out = run("verify", str(path))
    assert code == 1 and f"missing row: ResourceRegistered at block {registered[0]} " in out, out
    assert f"read from {node_endpoint.rpc_url} at block {registered[0]} " in out


def test_scorecard_and_bad_input(env: Path, scenario: Scenario, node_endpoint: NodeEndpoint) -> None:
    assert run("index")[0] == 0
    end = period_end(scenario)
    code, out = run("scorecard", "--department", "HEALTH", "--to", end, "--json")
    assert code == 0 and json.loads(out)["requests"]["received"] == 4
    # The node read and the block the card holds at (the index's last, here the head: no confirmation depth).
    head = node_endpoint.verify()
    assert {k: json.loads(out)["node"][k] for k in ("rpc_url", "block")} == {
        "rpc_url": node_endpoint.rpc_url,
        "block": head,
    }, out
    # Without --json, lines to read, one a value (it printed the JSON either way).
    code, text = run("scorecard", "--department", "HEALTH", "--to", end)
    assert code == 0 and "requests.received: 4" in text.splitlines()
    # The period as people read it (it said "period.to: 1796424610"); --json keeps the Unix seconds.
    card = json.loads(out)
    to = datetime.fromisoformat(end).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert card["period"]["to"] == int(datetime.fromisoformat(end).timestamp())
    assert {"period.from: 1970-01-01T00:00:00Z", f"period.to: {to}"} <= set(text.splitlines()), text
    # Its department by code and id, asked for by either (it said the id alone).
    assert card["department"]["code"] == "HEALTH" and f"department.id: {card['department']['id']}" in text
    code, by_id = run("scorecard", "--department", str(card["department"]["id"]), "--to", end)
    # The same card, but the node's line (the head may have moved on).
    assert code == 0 and by_id.splitlines()[:-1] == text.splitlines()[:-1], by_id
    assert "department.code: HEALTH" in text.splitlines(), text
    assert f"read from {node_endpoint.rpc_url} at block {head}" in text.splitlines()
    assert text.strip() != out.strip() and not text.lstrip().startswith("{")
    code, out = run("history", "--cursor", "bogus", "--json")
    assert code == 2 and json.loads(out)["error"] == "INVALID_QUERY"
    code, out = run("provenance", "0x" + "11" * 32, "--json")
    assert code == 2 and json.loads(out)["error"] == "COMMITMENT_NOT_FOUND"


def test_open_period_ends_at_the_chain_clock(env: Path, rpc: JsonRpc, tmp_path: Path) -> None:
    # The node's clock an hour ahead of this machine's, as after a deadline test or on a skewed node: a
    # scorecard or report with no end covers what the chain holds up to its head, not up to time.time().
    rpc.call("evm_increaseTime", 3600)
    rpc.call("evm_mine")
    head = int(rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    assert run("index")[0] == 0
    code, out = run("scorecard", "--department", "HEALTH", "--json")
    assert code == 0, out
    card = json.loads(out)
    assert card["period"]["evaluated_at"] >= head and card["period"]["to"] > head
    assert card["requests"]["received"] == 4
    code, out = run("report", "--out", str(tmp_path / "report"))
    assert code == 0, out
    assert json.loads((tmp_path / "report" / "report.json").read_text())["period"]["to"] > head


@pytest.mark.parametrize(
    ("value", "default", "want"),
    [
        (None, 99, 99),
        ("1970-01-01", 99, 0),
        ("2026-01-31", 0, 1_769_817_600),
        ("2026-01-31T08:00:00+08:00", 0, 1_769_817_600),
    ],
)
def test_period_bound_keeps_a_given_epoch(value: str | None, default: int, want: int) -> None:
    from dxl.commands.audit import period_bound

    assert period_bound(value, "to", default) == want


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: _nested(200_000), "nested more than 256 levels"),
        (lambda doc: json.dumps({**doc, "contract": 5}), "contract must be an address"),
        (lambda doc: json.dumps({**doc, "chain_id": str(doc["chain_id"])}), "chain_id must be an integer"),
        (lambda doc: json.dumps({**doc, "block_range": {"from": -1, "to": 3}}), "negative block"),
        # A forged value before the true one: a reader may show the first; the check read the last and passed.
        (lambda doc: '{"row_count": 0, ' + json.dumps(doc)[1:], "names the key 'row_count' twice"),
        # The text "1" selected no department's rows: a report cut to none verified as department 1's.
        (
            lambda doc: json.dumps({**doc, "department": {"id": "1"}, "rows": [], "row_count": 0}),
            "department must be null or an object with an integer id",
        ),
        (
            lambda doc: json.dumps({**doc, "department": {"id": [1], "code": "PSB"}}),
            "department must be null or an object with an integer id",
        ),
        (
            lambda doc: json.dumps({**doc, "department": {"id": 1, "code": ["PSB"]}}),
            "department must be null or an object with an integer id and a code",
        ),
    ],
    ids=[
        "nested-too-deeply",
        "contract-not-text",
        "chain-id-text",
        "negative-block",
        "key-twice",
        "department-id-text",
        "department-id-list",
        "department-code-list",
    ],
)
def test_verify_of_a_report_it_cannot_read_is_exit_2_naming_why(
    env: Path,
    node_endpoint: NodeEndpoint,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], str],
    message: str,
) -> None:
    """A report whose header cannot be what ``dxl audit report`` writes is a usage error (exit 2) that says
    why; it ended with a traceback (a number for the contract, JSON nested past the parser's recursion) or
    the node's error about a negative block."""
    assert run("index")[0] == 0
    out_dir = tmp_path / "report"
    assert run("report", "--out", str(out_dir))[0] == 0
    path = tmp_path / "edited.json"
    path.write_text(edit(json.loads((out_dir / "report.json").read_text())))
    result = CliRunner().invoke(app, ["audit", "verify", str(path), "--rpc", node_endpoint.rpc_url])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert message in result.output and "Traceback" not in result.output


def test_report_that_cannot_be_written_is_exit_2_naming_where(env: Path, tmp_path: Path) -> None:
    """An --out under a regular file cannot be made: exit 2 with one line (a FileExistsError traceback and
    exit 1 before)."""
    assert run("index")[0] == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["audit", "report", "--out", str(blocker / "report")])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"cannot write the audit report to {blocker / 'report'}" in result.output
    code, out = run("report", "--out", str(blocker / "report"), "--json")
    assert code == 2 and json.loads(out)["error"] == "REPORT_UNWRITABLE"


def test_verify_against_a_node_answering_json_nested_too_deeply_is_exit_2(env: Path, tmp_path: Path) -> None:
    """The report is checked against any node the auditor names: an answer nested past the parser's
    recursion ended the verification in a RecursionError traceback (exit 1, "problems found")."""
    assert run("index")[0] == 0
    out_dir = tmp_path / "report"
    assert run("report", "--out", str(out_dir))[0] == 0
    with answering(b"[" * 200_000) as url:
        result = CliRunner().invoke(app, ["audit", "verify", str(out_dir), "--rpc", url])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"no usable JSON-RPC answer from {url}" in result.output


@pytest.mark.parametrize(
    ("column", "cell", "code", "message"),
    [
        # Past the csv module's bound on a field (128 KiB): a _csv.Error traceback before.
        ("tx_hash", "0x" + "00" * 100_000, 2, "field larger than field limit"),
        # Past the interpreter's 4,300 digits for int(): a ValueError traceback before; compared as written.
        ("block_number", "9" * 5_000, 1, "do not locate a log"),
    ],
    ids=["cell-too-large", "integer-too-long"],
)
def test_csv_report_with_a_cell_no_report_holds_is_named(
    env: Path, node_endpoint: NodeEndpoint, tmp_path: Path, column: str, cell: str, code: int, message: str
) -> None:
    assert run("index")[0] == 0
    out_dir = tmp_path / "report"
    assert run("report", "--out", str(out_dir))[0] == 0
    lines = (out_dir / "report.csv").read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader(io.StringIO("".join(lines[len(header) :]), newline="")))
    rows[1][rows[0].index(column)] = cell
    edited = io.StringIO()
    csv.writer(edited, lineterminator="\r\n").writerows(rows)
    path = tmp_path / "edited.csv"
    path.write_text("".join(header) + edited.getvalue())
    result = CliRunner().invoke(app, ["audit", "verify", str(path), "--rpc", node_endpoint.rpc_url])
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and message in result.output


def test_verify_waits_for_a_node_that_never_answers_as_dxl_rpc_timeout_says(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dxl audit verify's reader waits DXL_RPC_TIMEOUT for the node, as the service's audit trail does: a node
    that takes the connection and never answers ends the re-check after that long (exit 2, naming the wait),
    where it waited a fixed 30 s."""
    assert run("index")[0] == 0
    out_dir = tmp_path / "report"
    assert run("report", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out_dir))[0] == 0
    monkeypatch.setenv("DXL_RPC_TIMEOUT", "1")
    with silent() as url:
        began = time.monotonic()
        code, out = run("verify", str(out_dir), "--rpc", url)
        waited = time.monotonic() - began
    assert waited < 5.0, f"dxl audit verify waited {waited:.1f} s"
    assert code == 2, out
    assert f"no usable JSON-RPC answer from {url} to eth_getBlockByNumber: no answer within 1 s" in out, out
