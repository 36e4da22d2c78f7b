"""An auditor's report of every kind of row — deliveries, anchored receipt batches with their receipts,
demands, evaluations and a sampling inspection — tampered with as a forger would, in its JSON document and in
its CSV file: every edit is named by ``dxl audit verify``, against the node alone. Receipt proofs taken out of
the report are checked against the chain the same way (``dxl verify-receipt``)."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from node.audit.practice_report import PRACTICE_COLUMNS
from node.audit.reports import write_report
from node.audit.verify import REPORT_COLUMNS, VerifyResult, audit_abi, load_report, verify_report
from node.deploy import anchors_client, load_deployment, practice_client
from node.rpc import JsonRpc
from node.types import MIN_PRESENT_WITHIN_S, InspectionOutcome
from tests.api.api_helpers import (
    ApiEnv,
    anchored_batch,
    closed_period,
    delivery_between,
    grant_between,
    mine,
    ok,
    own_period,
    pass_past,
    pass_time,
    register,
)
from tests.audit.report_tamper import assert_each_named, changed, one_row_per_kind, other, rewrite_csv
from tests.cli import invoke
from verifier.codes import ReceiptVerdictStatus
from verifier.delivery_ids import new_delivery_id
from verifier.errors import ProofError
from verifier.receipt_check import AnchorsReader, check_receipt
from verifier.receipts import BatchTree, Receipt, ReceiptProof

pytestmark = pytest.mark.xdist_group("api-report-tamper")
#: The deployment's evaluation period: its inspections cover whole periods of the tests' own deliveries, over,
#: and a day passes on the shared node where 30 days could not (``api_helpers.own_period``).
EVALUATION_PERIOD = 86400

PRACTICE_EVENTS = {"DemandPublished", "DemandAnswered", "DemandAnswerRejected", "DemandWithdrawn",
                   "EvaluationRecorded", "InspectionOpened", "InspectionDrawn",
                   "InspectionOutcomeRecorded"}  # fmt: skip


def _inspection(env: ApiEnv, period: tuple[int, int]) -> dict[str, Any]:
    """An inspection of ``period`` (``own_period``'s, over), drawn, with the outcome of its one sampled
    delivery."""
    body = {"period_from": period[0], "period_to": period[1], "sample_size": 1, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    mine(env, 2)
    drawn: dict[str, Any] = ok(env.call("POST", f"/inspections/{inspection['id']}/draw", "auditor"))["record"]
    pass_past(env, drawn["present_by"])  # the sampled delivery was not presented
    sampled = drawn["sample"][0]["delivery_id"]
    path = f"/inspections/{inspection['id']}/outcomes"
    ok(env.call("POST", path, "auditor", json={"delivery_id": sampled}))
    return drawn


@pytest.fixture(scope="module")
def exchange(api_env: ApiEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One exchange of every kind on the module's ledger, and the consortium's report of it with receipts:
    its directory, the anchored batches' receipts by (grant, first sequence), the anchors' address."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as period:
        deliveries = [delivery_between(env, "hrss", "psb", grant) for _ in range(2)]
        ok(env.call("POST", f"/agreements/{grant['agreement_id']}/evaluations", "psb", json={
            "delivery_id": deliveries[0]["delivery_id"], "timeliness": 5, "completeness": 4,
            "accuracy": 3}), 201)  # fmt: skip
    text = {"title": "婚姻登记信息", "description": "核对婚姻状况", "purpose": "住房保障资格审核",
            "legal_basis": "《城镇住房保障条例》", "fields": ["身份证号"]}  # fmt: skip
    demands = [
        ok(env.call("POST", "/demands", "psb", json={
            "document": text, "due_by": env.setup.client.next_block_time() + 30 * 86400,
            "addressee": "HRSS"}), 201)["record"]
        for _ in range(3)
    ]  # fmt: skip
    ok(env.call("POST", f"/demands/{demands[0]['id']}/answer", "hrss",
                json={"answer": "declined", "decline_reason": "not_held"}))  # fmt: skip
    # An answer rejected by the publisher, and a demand withdrawn: every kind of practice row.
    ok(env.call("POST", f"/demands/{demands[1]['id']}/answer", "hrss",
                json={"answer": "new_resource", "resource_id": register(env, "hrss")}))  # fmt: skip
    ok(env.call("POST", f"/demands/{demands[1]['id']}/reject", "psb", json={"reason": "incomplete"}))
    ok(env.call("POST", f"/demands/{demands[2]['id']}/withdraw", "psb"))
    _inspection(env, period)
    # Two batches of one grant and one of another: receipts can be moved between batches of either kind.
    gid, first = anchored_batch(env, 3)
    _, second = anchored_batch(env, 2, gid)
    other_gid, third = anchored_batch(env, 2)
    ok(env.call("POST", f"/receipts/{first[1]['delivery_id']}/dispute", "hrss",
                json={"consumer_commitment": "0x" + "ab" * 32}))  # fmt: skip
    ok(env.call("POST", f"/receipts/batches/{gid}/{first[0]['batch']['first_sequence']}/acknowledge", "hrss"))
    ok(env.call("POST", "/audit/index", "auditor"))
    out = tmp_path_factory.mktemp("tamper-report")
    # Up to a far end: tests sharing the module's node move its clock past the wall clock, the default end.
    made = invoke(["audit", "report", "--receipts", "--out", str(out), "--to", "2200-01-01",
                   "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    deployment = load_deployment(env.settings.home)
    assert deployment.receipt_anchors is not None and deployment.sharing_practice is not None
    return {
        "dir": out,
        "batches": [(gid, first), (gid, second), (other_gid, third)],
        "anchors": deployment.receipt_anchors.address,
        "practice": deployment.sharing_practice.address,
    }


def _verify(
    env: ApiEnv, doc: dict[str, Any], *, anchors: str | None = None, practice: str | None = None
) -> VerifyResult:
    with JsonRpc(str(env.settings.rpc_url)) as rpc:
        return verify_report(
            doc, rpc, audit_abi(), contract=env.setup.deployment.address, anchors=anchors, practice=practice
        )


def _as_read(doc: dict[str, Any], fmt: str, tmp: Path) -> dict[str, Any]:
    """``doc`` as the verifier reads it back from its JSON or its CSV file."""
    write_report(doc, tmp / "rewritten")
    return load_report(tmp / "rewritten" / f"report.{fmt}")


@pytest.fixture
def doc(exchange: dict[str, Any]) -> dict[str, Any]:
    return load_report(exchange["dir"] / "report.json")


def test_report_holds_every_kind_and_verifies_as_json_and_csv(
    api_env: ApiEnv, exchange: dict[str, Any], doc: dict[str, Any]
) -> None:
    kinds = {r["event"] for r in doc["rows"]}
    assert {"DeliveryRecorded", "ReceiptBatchAnchored", "ReceiptBatchAcknowledged", "ReceiptDisputed",
            "GrantIssued", "AgreementConcluded"} <= kinds  # fmt: skip
    assert {r["event"] for r in doc["practice"]["rows"]} == PRACTICE_EVENTS
    assert sum(b["receipts"] is not None for b in doc["receipt_batches"]) >= 3
    for fmt in ("json", "csv"):
        result = _verify(api_env, load_report(exchange["dir"] / f"report.{fmt}"))
        assert result.ok, (fmt, result.problems)
        assert result.receipts_checked >= 7


@pytest.mark.parametrize("column", REPORT_COLUMNS)
def test_edit_of_any_column_of_any_row_kind_is_named(
    api_env: ApiEnv, exchange: dict[str, Any], tmp_path: Path, column: str
) -> None:
    doc = load_report(exchange["dir"] / "report.json")
    targets = one_row_per_kind(doc["rows"])
    for row in targets:
        row[column] = changed(column, row)
    assert_each_named(_verify(api_env, doc).problems, targets, column)
    path = tmp_path / "report.csv"
    path.write_bytes((exchange["dir"] / "report.csv").read_bytes())
    edited = rewrite_csv(path, column)
    assert {r["event"] for r in edited} == {r["event"] for r in targets}
    assert_each_named(_verify(api_env, load_report(path)).problems, edited, column)


def test_edit_of_any_decoded_field_of_any_row_kind_is_named(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """Every field of every row kind's decoded event (a batch's root and leaf count, a delivery's commitment
    and sizes, a dispute's two commitments...), each edited in one row of its kind, all at once: each is named
    (the column test edits one field of each kind)."""
    doc = load_report(exchange["dir"] / "report.json")
    targets = one_row_per_kind(doc["rows"])
    for row in targets:
        row["fields"] = {name: other(value) for name, value in row["fields"].items()}
    problems = _verify(api_env, doc).problems
    missed = [
        (row["event"], name)
        for row in targets
        for name in row["fields"]
        if not any(p.startswith(f"row {row['row']}: field {name} is ") for p in problems)
    ]
    assert not missed, problems


def _practice_kinds(doc: dict[str, Any]) -> list[int]:
    """The position of the first practice row of each kind."""
    firsts: dict[str, int] = {}
    for i, row in enumerate(doc["practice"]["rows"]):
        firsts.setdefault(row["event"], i)
    return list(firsts.values())


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("column", PRACTICE_COLUMNS)
def test_edit_of_any_column_of_any_practice_row_is_named(
    api_env: ApiEnv, doc: dict[str, Any], tmp_path: Path, column: str, fmt: str
) -> None:
    rows = doc["practice"]["rows"]
    targets = _practice_kinds(doc)
    kinds = {i: rows[i]["event"] for i in targets}
    for i in targets:
        row = rows[i]
        if column == "event":
            row[column] = "DemandWithdrawn" if row[column] != "DemandWithdrawn" else "DemandPublished"
        else:
            row[column] = changed(column, row)
    problems = _verify(api_env, _as_read(doc, fmt, tmp_path)).problems
    for i in targets:
        # A row moved to another log names what the chain has there (another event, or none).
        moved = column in ("block_number", "log_index")
        want = f"practice row {i}" if moved else f"practice row {i} ({kinds[i]}): {column} is "
        assert any(p.startswith(want) for p in problems), (kinds[i], column, problems)


def _practice_duplicated(doc: dict[str, Any]) -> str:
    rows = doc["practice"]["rows"]
    rows.insert(2, copy.deepcopy(rows[1]))
    return f"practice row 2 ({rows[1]['event']}): given twice"


def _practice_reordered(doc: dict[str, Any]) -> str:
    rows = doc["practice"]["rows"]
    rows[0], rows[1] = rows[1], rows[0]
    return f"practice row 1 ({rows[1]['event']}): out of chain order"


def _practice_retyped(doc: dict[str, Any]) -> str:
    """A number given as a float: the same value, another JSON type."""
    row = doc["practice"]["rows"][0]
    row["block_time"] = float(row["block_time"])
    return f"practice row 0 ({row['event']}): block_time is "


def _practice_extra_key(doc: dict[str, Any]) -> str:
    row = doc["practice"]["rows"][0]
    row["outcome_note"] = "passed"
    return f"practice row 0 ({row['event']}): outcome_note not a column"


def _practice_section_claim(doc: dict[str, Any]) -> str:
    """A claim beside the section's address and rows, which the chain cannot back: it passed as verified."""
    doc["practice"]["inspections_passed"] = "100%"
    return "practice: inspections_passed is not a field of a report's practice, and nothing in it is verified"


def _practice_dropped(doc: dict[str, Any]) -> str:
    dropped = next(r for r in doc["practice"]["rows"] if r["event"] == "InspectionOutcomeRecorded")
    doc["practice"]["rows"].remove(dropped)
    return f"missing practice row: InspectionOutcomeRecorded at block {dropped['block_number']} "


def _practice_section_left_out(doc: dict[str, Any]) -> str:
    del doc["practice"]
    return "missing practice row: DemandPublished"


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    "tamper",
    [_practice_duplicated, _practice_reordered, _practice_retyped, _practice_extra_key, _practice_dropped,
     _practice_section_left_out, _practice_section_claim],
    ids=["duplicated", "reordered", "retyped", "extra-key", "dropped", "section-left-out", "section-claim"],
)  # fmt: skip
def test_practice_rows_tampered_are_named(
    api_env: ApiEnv,
    exchange: dict[str, Any],
    doc: dict[str, Any],
    tmp_path: Path,
    tamper: Callable[..., str],
    fmt: str,
) -> None:
    expected = tamper(doc)
    read = _as_read(doc, fmt, tmp_path)
    # The practice contract's address from a trusted source: a report without the section is checked too.
    problems = _verify(api_env, read, practice=exchange["practice"]).problems
    assert any(p.startswith(expected) for p in problems), (expected, problems)


def _carried(doc: dict[str, Any], grant: int, first: int) -> list[dict[str, Any]]:
    entry = next(b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == (grant, first))
    receipts: list[dict[str, Any]] = entry["receipts"]
    return receipts


def _batch_keys(exchange: dict[str, Any]) -> list[tuple[int, int]]:
    return [(g, rs[0]["batch"]["first_sequence"]) for g, rs in exchange["batches"]]


def _dropped(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    _carried(doc, *keys[0]).pop(1)
    return [f"receipts of batch (grant {keys[0][0]}, first sequence {keys[0][1]}): RECEIPTS_OMITTED"]


def _duplicated(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """One receipt given twice in place of another: the count holds, the root does not."""
    receipts = _carried(doc, *keys[0])
    receipts[2] = copy.deepcopy(receipts[0])
    return [f"receipts of batch (grant {keys[0][0]}, first sequence {keys[0][1]}): RECEIPT_ALTERED"]


def _swapped_within_grant(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """A receipt of each of two batches of one grant swapped: both counts hold, both roots do not."""
    a, b = _carried(doc, *keys[0]), _carried(doc, *keys[1])
    a[0], b[0] = b[0], a[0]
    return [f"receipts of batch (grant {g}, first sequence {f}): RECEIPT_ALTERED" for g, f in keys[:2]]


def _swapped_across_grants(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    a, b = _carried(doc, *keys[0]), _carried(doc, *keys[2])
    a[0], b[0] = b[0], a[0]
    (g1, f1), (g2, f2) = keys[0], keys[2]
    one = f"receipts of batch (grant {g1}, first sequence {f1}):"
    two = f"receipts of batch (grant {g2}, first sequence {f2}):"
    return [
        f"{one} RECEIPT_OTHER_GRANT: receipt 0 names grant {g2}",
        f"{two} RECEIPT_OTHER_GRANT: receipt 0 names grant {g1}",
        f"{one} RECEIPT_ALTERED",
    ]


def _moved_to_other_grant(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """A batch's receipts presented for the batch of another grant at the same first sequence."""
    (g1, f1), (g2, f2) = keys[0], keys[2]
    entry = next(b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == (g1, f1))
    entry["grant_id"], entry["first_sequence"] = g2, f2
    return [
        f"receipts of batch (grant {g2}, first sequence {f2}): RECEIPT_BATCH_DUPLICATED",
        f"receipts of batch (grant {g1}, first sequence {f1}): RECEIPTS_MISSING",
    ]


def _edited_field(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    receipts = _carried(doc, *keys[1])
    receipts[1]["commitment"] = other(receipts[1]["commitment"])
    return [f"receipts of batch (grant {keys[1][0]}, first sequence {keys[1][1]}): RECEIPT_ALTERED"]


def _moved_to_another_namespace(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """A receipt's delivery id moved into another department's namespace: besides the root, the receipt is
    named as no receipt of the batch's provider (as a batch anchored past the service with such a leaf, whose
    root holds, is named by this alone)."""
    receipt = _carried(doc, *keys[1])[1]
    theirs = int(receipt["delivery_id"][2:10], 16) + 1
    receipt["delivery_id"] = f"0x{theirs:08x}" + receipt["delivery_id"][10:]
    where = f"receipts of batch (grant {keys[1][0]}, first sequence {keys[1][1]}):"
    return [
        f"{where} RECEIPT_NOT_PROVIDERS: receipt 1's delivery id {receipt['delivery_id']}",
        f"{where} RECEIPT_ALTERED",
    ]


def _batch_duplicated(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    entry = next(b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == keys[1])
    doc["receipt_batches"].append(copy.deepcopy(entry))
    return [f"receipts of batch (grant {keys[1][0]}, first sequence {keys[1][1]}): RECEIPT_BATCH_DUPLICATED"]


def _receipt_with_a_claim(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """A key no receipt has, which the root cannot vouch for, carried beside one receipt."""
    entry = next(b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == keys[0])
    entry["receipts"][0]["acknowledged"] = True
    position = doc["receipt_batches"].index(entry)
    return [f"receipts of batch (grant #{position}, first sequence ?): RECEIPT_BATCH_MALFORMED: "]


def _receipts_key_left_out(doc: dict[str, Any], keys: list[tuple[int, int]]) -> list[str]:
    """A batch's receipts left out with their key, as if the report declared them not carried."""
    entry = next(b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == keys[1])
    del entry["receipts"]
    position = doc["receipt_batches"].index(entry)
    return [f"receipts of batch (grant #{position}, first sequence ?): RECEIPT_BATCH_MALFORMED: "]


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    "tamper",
    [_dropped, _duplicated, _swapped_within_grant, _swapped_across_grants, _moved_to_other_grant,
     _edited_field, _moved_to_another_namespace, _batch_duplicated, _receipt_with_a_claim,
     _receipts_key_left_out],
    ids=["dropped", "duplicated", "swapped-within-grant", "swapped-across-grants", "moved-to-other-grant",
         "edited", "another-namespace", "batch-duplicated", "receipt-with-a-claim", "receipts-key-left-out"],
)  # fmt: skip
def test_carried_receipts_tampered_are_named(
    api_env: ApiEnv,
    exchange: dict[str, Any],
    doc: dict[str, Any],
    tmp_path: Path,
    tamper: Callable[..., list[str]],
    fmt: str,
) -> None:
    expected = tamper(doc, _batch_keys(exchange))
    code = invoke(["audit", "verify", str(_written(doc, fmt, tmp_path)), "--rpc",
                   str(api_env.settings.rpc_url), "--contract", api_env.setup.deployment.address,
                   "--anchors", exchange["anchors"], "--json"])  # fmt: skip
    assert code.exit_code == 1, code.output
    problems = json.loads(code.stdout)["problems"]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)


def _civil_report(exchange: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """CIVIL's report with receipts, over the module's exchanges: CIVIL is a party to none of its batches."""
    made = invoke(["audit", "report", "--department", "CIVIL", "--receipts", "--out", str(tmp),
                   "--to", "2200-01-01", "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    return load_report(tmp / "report.json")


def _padded_with_a_batch(civil: dict[str, Any], theirs: dict[str, Any], key: tuple[int, int]) -> str:
    """PSB -> HRSS's batch carried, its receipts as anchored: correct, and not CIVIL's."""
    civil["receipt_batches"] = [
        *(civil.get("receipt_batches") or []),
        next(b for b in theirs["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == key),
    ]
    return f"receipts of batch (grant {key[0]}, first sequence {key[1]}): NOT_THE_DEPARTMENTS: "


def _padded_with_a_row(civil: dict[str, Any], theirs: dict[str, Any], key: tuple[int, int]) -> str:
    """The PSB -> HRSS batch's row, as the chain holds it, among CIVIL's rows in chain order."""
    row = next(r for r in theirs["rows"] if r["event"] == "ReceiptBatchAnchored"
               and (r["fields"]["grantId"], r["fields"]["firstSequence"]) == key)  # fmt: skip
    rows = sorted([*civil["rows"], copy.deepcopy(row)], key=lambda r: (r["block_number"], r["log_index"]))
    for number, r in enumerate(rows):
        r["row"] = number
    civil["rows"], civil["row_count"] = rows, len(rows)
    return f"row {rows.index(next(r for r in rows if r['tx_hash'] == row['tx_hash']))}: NOT_THE_DEPARTMENTS: "


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("pad", [_padded_with_a_batch, _padded_with_a_row], ids=["batch", "row"])
def test_a_departments_report_padded_with_anothers_exchange_is_named(
    api_env: ApiEnv,
    exchange: dict[str, Any],
    doc: dict[str, Any],
    tmp_path: Path,
    pad: Callable[..., str],
    fmt: str,
) -> None:
    """A department's report holds its own exchanges: another's batch or row, correct on chain, padded in is
    named by one line with its code (the batch verified; the row was named as one the chain lacks)."""
    civil = _civil_report(exchange, tmp_path / "civil")
    assert civil["department"]["code"] == "CIVIL"
    args = ["--rpc", str(api_env.settings.rpc_url), "--contract", api_env.setup.deployment.address,
            "--anchors", exchange["anchors"], "--practice", exchange["practice"], "--json"]  # fmt: skip
    clean = invoke(["audit", "verify", str(_written(civil, fmt, tmp_path / "clean")), *args])
    assert clean.exit_code == 0, clean.output
    expected = pad(civil, doc, _batch_keys(exchange)[2])
    padded = invoke(["audit", "verify", str(_written(civil, fmt, tmp_path)), *args])
    assert padded.exit_code == 1, padded.output
    problems = json.loads(padded.stdout)["problems"]
    assert [p for p in problems if p.startswith(expected)] == problems, (expected, problems)


@pytest.mark.parametrize("kind", sorted(PRACTICE_EVENTS))
def test_a_departments_report_padded_with_anothers_practice_row_is_named(
    api_env: ApiEnv, exchange: dict[str, Any], doc: dict[str, Any], tmp_path: Path, kind: str
) -> None:
    """A practice row of PSB's and HRSS's (a demand, its answer, rejection or withdrawal, an evaluation, an
    inspection's outcome) or of no department (an inspection's opening and draw), as the chain holds it,
    padded into CIVIL's report is named by one line with the code a ledger row or a batch is named by; it
    was named as a practice event the chain lacks."""
    civil = _civil_report(exchange, tmp_path / "civil")
    row = next(r for r in doc["practice"]["rows"] if r["event"] == kind)
    rows = sorted([*civil["practice"]["rows"], copy.deepcopy(row)],
                  key=lambda r: (r["block_number"], r["log_index"]))  # fmt: skip
    civil["practice"]["rows"] = rows
    d = api_env.departments
    parties = {"InspectionOpened": [], "InspectionDrawn": [], "InspectionOutcomeRecorded": [d["HRSS"]]}.get(
        kind, sorted([d["HRSS"], d["PSB"]])
    )
    named = " and ".join(str(p) for p in parties) or "none"
    expected = (
        f"practice row {rows.index(row)}: NOT_THE_DEPARTMENTS: an exchange of departments {named}, not of "
        f"the report's department {d['CIVIL']}"
    )
    args = ["--rpc", str(api_env.settings.rpc_url), "--contract", api_env.setup.deployment.address,
            "--anchors", exchange["anchors"], "--practice", exchange["practice"], "--json"]  # fmt: skip
    for fmt in ("json", "csv"):
        padded = invoke(["audit", "verify", str(_written(civil, fmt, tmp_path / fmt)), *args])
        assert padded.exit_code == 1, padded.output
        assert json.loads(padded.stdout)["problems"] == [expected], fmt


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_leaves_anchored_past_the_service_that_no_delivery_could_be_are_named(
    api_env: ApiEnv, tmp_path: Path, fmt: str
) -> None:
    """Two batches a provider anchored with its own key, past the service, whose leaves its report carries
    (the service's journal holds none of them, so the report declares them not carried; the provider, who
    holds the leaves, fills them in): each root holds, and each leaf no single delivery could be is named —
    a hash algorithm the ledger does not accept, a zero commitment, an id in another department's
    namespace, an id twice in one batch, in the next batch, and that of a single delivery recorded on the
    ledger. Before, only the namespace was named, and the rest verified."""
    env = api_env
    gid, psb_id = grant_between(env, "psb", "hrss")["id"], env.departments["PSB"]
    psb = env.keystore.unlock("dept-psb")

    def leaf(delivery_id: bytes | None = None, **fields: Any) -> Receipt:
        r = Receipt(delivery_id or new_delivery_id(psb_id), gid, os.urandom(32), 1, 2048, 16)
        return r._replace(**fields)

    single = leaf()
    env.setup.client.transact(psb, "recordDelivery", *single.as_tuple())
    fine = leaf()
    first = [fine, leaf(hash_algorithm=0), leaf(commitment=bytes(32)),
             leaf(new_delivery_id(env.departments["CIVIL"])), leaf(fine.delivery_id, byte_size=1),
             leaf(single.delivery_id)]  # fmt: skip
    second = [leaf(fine.delivery_id, hash_algorithm=2)]
    anchors = anchors_client(env.setup.client.endpoint, env.settings.home)
    mined = []
    pass_time(env, 2)  # the scorecard's window below, of whole seconds, holds no earlier block
    for start, leaves in ((0, first), (len(first), second)):
        root = BatchTree([r.leaf_hash() for r in leaves]).root
        mined.append(anchors.transact(psb, "anchorBatch", gid, start, len(leaves), root).block_number)
    ok(env.call("POST", "/audit/index", "auditor"))
    # The scorecard counts leaves as anchored, from the chain, which never sees them: the id anchored three
    # times counts three times (README, *anchored receipts*). Only the report's verification below tells.
    begins, ends = (int(env.setup.client.w3.eth.get_block(b)["timestamp"]) for b in mined)
    window = {"department": "PSB", "from": _iso(begins), "to": _iso(ends + 1)}
    card = ok(env.call("GET", "/audit/scorecard", "auditor", params=window))["deliveries"]
    assert (card["receipt_batches_sent"], card["receipts_sent"]) == (2, len(first) + len(second)), card
    out = tmp_path / "report"
    made = invoke(["audit", "report", "--receipts", "--out", str(out), "--to", "2200-01-01",
                   "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    doc = load_report(out / "report.json")
    mine = [b for b in doc["receipt_batches"] if b["grant_id"] == gid]
    assert [(b["first_sequence"], b["receipts"]) for b in mine] == [(0, None), (len(first), None)]
    for entry, leaves in zip(mine, (first, second), strict=True):
        entry["receipts"] = [r.to_json() for r in leaves]
    recorded = next(r["row"] for r in doc["rows"] if r["delivery_id"] == "0x" + single.delivery_id.hex()
                    and r["event"] == "DeliveryRecorded")  # fmt: skip

    problems = _verify(env, _as_read(doc, fmt, tmp_path)).problems

    batch, next_batch = (f"receipts of batch (grant {gid}, first sequence {f}):" for f in (0, len(first)))
    fine_id, fine_at = "0x" + fine.delivery_id.hex(), f"receipt 0 of batch (grant {gid}, first sequence 0)"
    expected = [
        f"{batch} RECEIPT_UNKNOWN_HASH_ALGORITHM: receipt 1's hash algorithm 0 ",
        f"{batch} RECEIPT_ZERO_COMMITMENT: receipt 2's commitment is zero",
        f"{batch} RECEIPT_NOT_PROVIDERS: receipt 3's delivery id 0x{first[3].delivery_id.hex()} ",
        f"{batch} RECEIPT_DUPLICATE: receipt 4's delivery id {fine_id} is also {fine_at}:",
        f"{batch} RECEIPT_DUPLICATE: receipt 5's delivery id 0x{single.delivery_id.hex()} is also the "
        f"delivery of row {recorded}:",
        f"{next_batch} RECEIPT_DUPLICATE: receipt 0's delivery id {fine_id} is also {fine_at}:",
    ]
    # The report covers the whole deployment: what it names of the module's other tests' records (an
    # inspection's outcome a test recorded outside its sample) is not this test's concern.
    ours = [p for p in problems if f"(grant {gid}, " in p]
    assert len(ours) == len(expected), problems  # the roots hold: nothing else is named
    for fragment in expected:
        assert any(p.startswith(fragment) for p in ours), (fragment, problems)


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _written(doc: dict[str, Any], fmt: str, tmp: Path) -> Path:
    write_report(doc, tmp / "written")
    return tmp / "written" / f"report.{fmt}"


def _proof_node_changed(proof: dict[str, Any], _other: dict[str, Any]) -> dict[str, Any]:
    proof["proof"][0] = other(proof["proof"][0])
    return proof


def _leaf_index_changed(proof: dict[str, Any], _other: dict[str, Any]) -> dict[str, Any]:
    proof["index"] = (proof["index"] + 1) % proof["batch"]["leaf_count"]
    proof["sequence"] = proof["batch"]["first_sequence"] + proof["index"]  # as a careful forger would
    return proof


def _batch_of_other_grant(proof: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """The receipt claimed as a leaf of another grant's batch, with that batch's own path and root: the
    receipt names its grant, so its leaf is not that batch's."""
    return {**theirs, "receipt": {**proof["receipt"], "grant_id": theirs["receipt"]["grant_id"]}}


@pytest.mark.parametrize(
    "tamper", [_proof_node_changed, _leaf_index_changed, _batch_of_other_grant],
    ids=["proof-node", "leaf-index", "batch-of-other-grant"],
)  # fmt: skip
def test_receipt_proof_tampered_is_a_mismatch_on_chain(
    api_env: ApiEnv, exchange: dict[str, Any], tmp_path: Path, tamper: Callable[..., dict[str, Any]]
) -> None:
    (_, first), _, (_, third) = exchange["batches"]
    mine_, theirs = copy.deepcopy(first[2]["proof"]), copy.deepcopy(third[1]["proof"])
    reader = AnchorsReader(str(api_env.settings.rpc_url), exchange["anchors"])
    assert check_receipt(ReceiptProof.from_json(mine_), reader).status.ok
    forged = tamper(mine_, theirs)
    verdict = check_receipt(ReceiptProof.from_json(forged), reader)
    assert verdict.status is ReceiptVerdictStatus.MISMATCH, verdict
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(forged))
    result = invoke(["verify-receipt", str(path), "--rpc", str(api_env.settings.rpc_url),
                     "--anchors", exchange["anchors"], "--json"])  # fmt: skip
    assert (result.exit_code, json.loads(result.stdout)["status"]) == (1, "MISMATCH")


def test_receipt_answer_carrying_another_receipts_proof_is_refused(
    api_env: ApiEnv, exchange: dict[str, Any], tmp_path: Path
) -> None:
    """A ``GET /receipts/{id}`` answer for one receipt carrying the proof of another of its batch (anchored,
    acknowledged): ``dxl verify-receipt`` checked the proof alone and exited 0, naming the other receipt's id
    in a line an auditor asking about this one reads as a yes. Refused now, naming both ids (exit 2, as a
    proof that contradicts itself is)."""
    (_, first), _, _ = exchange["batches"]
    answer = {**first[2], "proof": first[0]["proof"]}
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(answer))
    result = invoke(["verify-receipt", str(path), "--rpc", str(api_env.settings.rpc_url),
                     "--anchors", exchange["anchors"], "--json"])  # fmt: skip
    assert result.exit_code == 2, result.output
    stated, proven = first[2]["delivery_id"], first[0]["delivery_id"]
    assert json.loads(result.stdout) == {
        "error": "PROOF_MALFORMED",
        "message": f"malformed inclusion proof: the answer states delivery_id {stated!r}, its proof "
        f"{proven!r}: the proof is not of the receipt the answer states",
    }


#: What a receipt's answer states that the chain cannot confirm or deny: the service's status of it and the
#: time its journal accepted it.
SERVICE_ONLY = {("status",), ("accepted_at",), ("error",)}


def test_any_value_a_receipt_answer_states_edited_fails_the_check(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """Each value of a whole ``GET /receipts/{id}`` answer edited alone, as ``dxl verify-receipt`` reads the
    file: refused naming the field, or MISMATCH / NOT_ANCHORED, never ANCHORED or ACKNOWLEDGED, but for what
    only the service knows (:data:`SERVICE_ONLY`). The batch's parties and where it was anchored
    (``provider``, ``consumer``, ``batch.tx_hash``, ``batch.block_number``) were not compared with the chain:
    an answer naming another consumer, or another transaction and block, was ANCHORED."""
    (_, first), _, _ = exchange["batches"]
    answer = first[2]
    reader = AnchorsReader(str(api_env.settings.rpc_url), exchange["anchors"])
    assert check_receipt(ReceiptProof.from_answer(answer, anchors=exchange["anchors"]), reader).status.ok
    passed = []
    for path in _scalars(answer):
        forged = copy.deepcopy(answer)
        holder = forged
        for key in path[:-1]:
            holder = holder[key]
        if path in SERVICE_ONLY:
            continue
        holder[path[-1]] = other(holder[path[-1]])
        try:
            verdict = check_receipt(ReceiptProof.from_answer(forged, anchors=exchange["anchors"]), reader)
        except ProofError:
            continue
        if verdict.status.ok:
            passed.append(path)
    assert not passed


def _scalars(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every number and string in a JSON value."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _scalars(v, (*at, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _scalars(v, (*at, i))]
    return [at]


def test_any_byte_of_a_receipt_proof_edited_fails_the_check(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    """Each value of a ``GET /receipts/{id}`` proof (every receipt field, the batch's grant, first sequence,
    leaf count and root, the sequence, the index, each node of the path) edited alone: the check refuses the
    proof naming the field that contradicts the others, or answers MISMATCH / NOT_ANCHORED; never ANCHORED or
    ACKNOWLEDGED. The stated sequence was not read at all, and an edited one passed."""
    (_, first), _, _ = exchange["batches"]
    proof = first[2]["proof"]
    reader = AnchorsReader(str(api_env.settings.rpc_url), exchange["anchors"])
    assert check_receipt(ReceiptProof.from_json(proof), reader).status.ok
    passed = []
    for path in _scalars(proof):
        forged = copy.deepcopy(proof)
        holder = forged
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = other(holder[path[-1]])
        try:
            verdict = check_receipt(ReceiptProof.from_json(forged), reader)
        except ProofError:
            continue
        if verdict.status.ok:
            passed.append(path)
    assert not passed


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_report_cut_short_at_its_end_is_named(
    api_env: ApiEnv, exchange: dict[str, Any], doc: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    """The rows of the last seconds dropped, with their practice rows and receipts, and the block range moved
    to end before them: the chain's events of the period after the report's last block are named."""
    rows = doc["rows"]
    cut = max(i for i in range(1, len(rows)) if rows[i]["block_time"] > rows[i - 1]["block_time"])
    end = rows[cut - 1]["block_number"]
    dropped = rows[cut:]
    doc["rows"] = rows[:cut]
    doc["row_count"] = cut
    doc["block_range"]["to"] = end
    doc["practice"]["rows"] = [r for r in doc["practice"]["rows"] if r["block_number"] <= end]
    kept = {(r["fields"].get("grantId"), r["fields"].get("firstSequence")) for r in doc["rows"]}
    doc["receipt_batches"] = [
        b for b in doc["receipt_batches"] if (b["grant_id"], b["first_sequence"]) in kept
    ]
    problems = _verify(api_env, _as_read(doc, fmt, tmp_path), practice=exchange["practice"]).problems
    for r in dropped:
        missing = (f"missing row: {r['event']} at block {r['block_number']} log {r['log_index']} "
                   f"(tx {r['tx_hash']}) is on chain but not in the report, in its period after its last "
                   f"block {end}")  # fmt: skip
        assert missing in problems, (missing, problems)


def test_report_starting_after_the_ledgers_deployment_is_named(api_env: ApiEnv, doc: dict[str, Any]) -> None:
    """A block range raised past the ledger's deployment (to leave out the period's first rows and the
    lineage they resolve through): the node still has the state of the block before it, and the ledger's
    code there says the report leaves history out; the chain is read from its start all the same."""
    with JsonRpc(str(api_env.settings.rpc_url)) as rpc:
        start = rpc.block_number() - 10
    doc["block_range"]["from"] = start
    problems = _verify(api_env, doc).problems
    ledger = api_env.setup.deployment.address.lower()
    assert problems == [
        f"block_range starts at block {start}, but the ledger {ledger} has code at block {start - 1}: its "
        "earlier history is left out"
    ]


def test_report_leaving_out_its_anchors_and_practice_contracts_is_named(
    api_env: ApiEnv, exchange: dict[str, Any], doc: dict[str, Any]
) -> None:
    """A report stripped of its anchors and practice addresses, with every batch and practice row, and
    renumbered, verified as the ledger's alone against a trusted ledger address ("report verified"): the
    chain shows both contracts serve that ledger and hold events in the blocks read."""
    anchors, practice = doc.pop("anchors"), doc.pop("practice")["address"]
    del doc["receipt_batches"]
    doc["rows"] = [r for r in doc["rows"] if r["address"].lower() != anchors.lower()]
    for position, row in enumerate(doc["rows"]):
        row["row"] = position
    doc["row_count"] = len(doc["rows"])
    problems = _verify(api_env, doc).problems
    assert len(problems) == 2, problems
    assert (
        f"pass --anchors {anchors.lower()}" in problems[0]
        and f"pass --practice {practice.lower()}" in problems[1]
    ), problems
    # Given from a trusted source, each of their rows the report left out is named.
    named = _verify(api_env, doc, anchors=anchors).problems
    assert any(p.startswith("missing row: ReceiptBatchAnchored") for p in named), named


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    ("section", "named"),
    [
        ("receipt_batches", "receipt_batches is null: a report lists its anchored batches"),
        ("practice", "practice is null: a report holds the sharing practice contract's address and rows"),
    ],
)
def test_a_section_left_null_is_named(
    api_env: ApiEnv,
    exchange: dict[str, Any],
    doc: dict[str, Any],
    tmp_path: Path,
    fmt: str,
    section: str,
    named: str,
) -> None:
    """A report whose receipts or practice section reads null (a hand-edited or truncated file; no report is
    written so: one without them leaves the field out) verified as one made without it, "report verified"
    with none of the section's contents checked. Each is named, and dxl audit verify exits 1."""
    doc[section] = None
    problems = _verify(api_env, _as_read(doc, fmt, tmp_path), anchors=exchange["anchors"]).problems
    assert [p for p in problems if p.startswith(f"{section} is null")] == [
        next(p for p in problems if p.startswith(named))
    ], problems
    write_report(doc, tmp_path / "edited")
    edited, rpc = str(tmp_path / "edited" / f"report.{fmt}"), str(api_env.settings.rpc_url)
    checked = invoke(["audit", "verify", edited, "--rpc", rpc, "--anchors", exchange["anchors"]])
    assert checked.exit_code == 1 and named in checked.stdout, checked.output


def test_a_periods_iso_spelling_left_null_is_named(api_env: ApiEnv, doc: dict[str, Any]) -> None:
    """The period's ISO spellings are written beside its bounds for people to read; one emptied to null
    passed unchecked."""
    doc["period"]["to_iso"] = None
    to = doc["period"]["to"]
    spelled = f"{datetime.fromtimestamp(to, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert _verify(api_env, doc).problems == [f"period to_iso is null, {to} is '{spelled}'"]


def test_verify_says_which_addresses_it_took_from_the_report(
    api_env: ApiEnv, exchange: dict[str, Any]
) -> None:
    rpc = str(api_env.settings.rpc_url)
    path = str(exchange["dir"] / "report.json")
    alone = invoke(["audit", "verify", path, "--rpc", rpc])
    assert alone.exit_code == 0, alone.output
    summary = alone.stdout.rstrip().splitlines()[-1]
    assert (
        "(against the ledger, anchors, practice addresses the report names: a forged report can name "
        "forged contracts; give --contract/--anchors/--practice from a trusted source); read from "
    ) in summary, summary
    assert summary.endswith("(its head as the re-check began)") and rpc.rstrip("/") in summary, summary
    trusted = invoke(["audit", "verify", path, "--rpc", rpc, "--json", "--contract",
                      api_env.setup.deployment.address, "--anchors", exchange["anchors"],
                      "--practice", exchange["practice"]])  # fmt: skip
    assert trusted.exit_code == 0 and json.loads(trusted.stdout)["addresses_from_report"] == []


def test_a_report_older_than_the_nodes_kept_state_verifies(api_env: ApiEnv, exchange: dict[str, Any]) -> None:
    """The embedded node keeps the state of its last 64 blocks (Besu and geth 128 unless archiving): a report
    made before them is verified without calls at its own blocks."""
    mine(api_env, 80)
    trusted = ["--contract", api_env.setup.deployment.address, "--anchors", exchange["anchors"],
               "--practice", exchange["practice"]]  # fmt: skip
    path = str(exchange["dir"] / "report.csv")
    result = invoke(["audit", "verify", path, "--rpc", str(api_env.settings.rpc_url), *trusted])
    assert result.exit_code == 0, result.output


def test_outcome_of_a_delivery_outside_the_sample_is_named(api_env: ApiEnv, tmp_path: Path) -> None:
    """The contract records an outcome for any delivery it knows; the service records only sampled ones. An
    outcome sent with the auditor's key straight to the contract, for a delivery never drawn, is named by
    the verifier, which recomputes the sample from the chain. Last in the module: its outcome is on chain
    after every other test's report."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as period:
        deliveries = [delivery_between(env, "hrss", "psb", grant) for _ in range(3)]
    drawn = _inspection(env, period)
    # The period holds these three, and any receipt of another test anchored meanwhile (the anchorer's pace
    # under load): the population is the draw's own count, read from the chain.
    assert drawn["population_size"] >= 3
    sampled = {s["delivery_id"] for s in drawn["sample"]}
    outside = next(d["delivery_id"] for d in deliveries if d["delivery_id"] not in sampled)
    refused = env.call(
        "POST", f"/inspections/{drawn['id']}/outcomes", "auditor", json={"delivery_id": outside}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "NOT_SAMPLED")

    def inspected() -> dict[str, Any]:
        card = ok(env.call("GET", "/audit/scorecard?department=HRSS&to=2200-01-01", "auditor"))
        return dict(card["practice"]["inspections"])

    before = inspected()
    assert before["not_presented"] >= 1  # the sampled delivery's, recorded by the service
    practice = practice_client(env.setup.client.endpoint, env.settings.home)
    args = (drawn["id"], bytes.fromhex(outside[2:]), int(InspectionOutcome.FAILED), bytes(32))
    practice.transact(env.keystore.unlock("auditor"), "recordOutcome", *args)
    # The scorecard counts the outcomes of sampled deliveries only: HRSS failed no inspection.
    assert inspected() == before
    ok(env.call("POST", "/audit/index", "auditor"))
    out = tmp_path / "report"
    made = invoke(["audit", "report", "--out", str(out), "--to", "2200-01-01", "--json"])
    assert made.exit_code == 0, made.output
    for name in ("report.json", "report.csv"):
        result = invoke(["audit", "verify", str(out / name), "--rpc", str(env.settings.rpc_url),
                         "--contract", env.setup.deployment.address, "--json"])  # fmt: skip
        problems = json.loads(result.stdout)["problems"]
        assert result.exit_code == 1 and len(problems) == 1, problems
        assert problems[0].startswith(f"inspection {drawn['id']}: the outcome at block ") and (
            f"is about delivery {outside}, which its sample (1 of {drawn['population_size']} deliveries, "
            f"drawn from block {drawn['seed_block']}'s hash) does not hold" in problems[0]
        ), problems


def test_verify_shows_inspections_left_to_expire_undrawn(api_env: ApiEnv, tmp_path: Path) -> None:
    """An auditor who lets an inspection lapse undrawn (after reading its seed block's hash, perhaps) is seen
    by whoever verifies a report of the period: the report is not wrong, the inspection is named expired.
    After the module's other tests: its blocks come after their reports."""
    env = api_env
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2}
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as period:
        delivery_between(env, "hrss", "psb", grant)
    drawn = _inspection(env, period)  # drawn in time: not named
    env.setup.client.w3.provider.make_request("anvil_mine", [hex(260)])  # type: ignore[arg-type]
    ok(env.call("POST", "/audit/index", "auditor"))
    out = tmp_path / "report"
    made = invoke(["audit", "report", "--out", str(out), "--to", "2200-01-01", "--json"])
    assert made.exit_code == 0, made.output
    result = invoke(["audit", "verify", str(out / "report.json"), "--rpc",
                     str(env.settings.rpc_url), "--contract", env.setup.deployment.address,
                     "--json"])  # fmt: skip
    verified = json.loads(result.stdout)
    assert opened["id"] in verified["expired_inspections"]
    assert drawn["id"] not in verified["expired_inspections"]
    assert not [p for p in verified["problems"] if f"inspection {opened['id']}" in p]
    rpc, ledger = str(env.settings.rpc_url), env.setup.deployment.address
    plain = invoke(["audit", "verify", str(out / "report.json"), "--rpc", rpc, "--contract", ledger])
    assert f"inspection {opened['id']} expired undrawn" in plain.stdout


def test_verify_shows_passes_and_failures_recorded_without_a_verdict(api_env: ApiEnv, tmp_path: Path) -> None:
    """The service records a pass or a failure with the SHA-256 of the presentation's verdict as evidence;
    the contract takes any hash from an auditor's key. A pass of a sampled delivery nobody presented, sent
    straight to the contract with a zero hash, is in the report as the chain holds it (no problem) and named
    by whoever verifies it; the service's not-presented outcome (zero hash, no verdict to have) is not."""
    env = api_env
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):
        for _ in range(2):
            delivery_between(env, "hrss", "psb", grant)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 2, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    opened = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{opened['id']}/draw", "auditor"))["record"]
    bare, absent = (s["delivery_id"] for s in drawn["sample"])
    practice = practice_client(env.setup.client.endpoint, env.settings.home)
    args = (drawn["id"], bytes.fromhex(bare[2:]), int(InspectionOutcome.PASSED), bytes(32))
    practice.transact(env.keystore.unlock("auditor"), "recordOutcome", *args)
    pass_past(env, drawn["present_by"])  # the other one is recorded not presented, by the service
    ok(env.call("POST", f"/inspections/{drawn['id']}/outcomes", "auditor", json={"delivery_id": absent}))
    ok(env.call("POST", "/audit/index", "auditor"))
    out = tmp_path / "report"
    made = invoke(["audit", "report", "--out", str(out), "--to", "2200-01-01", "--json"])
    assert made.exit_code == 0, made.output
    rpc, ledger = str(env.settings.rpc_url), env.setup.deployment.address
    verify = ["audit", "verify", str(out / "report.json"), "--rpc", rpc, "--contract", ledger]
    verified = json.loads(invoke([*verify, "--json"]).stdout)
    named = [o for o in verified["outcomes_without_verdict"] if o["inspection_id"] == drawn["id"]]
    assert [(o["delivery_id"], o["outcome"]) for o in named] == [(bare, "passed")], verified
    assert not [p for p in verified["problems"] if f"inspection {drawn['id']}" in p]
    plain = invoke(["audit", "verify", str(out / "report.json"), "--rpc", rpc, "--contract", ledger])
    assert f"passed {bare} (inspection {drawn['id']}" in plain.stdout, plain.stdout


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("field", ["contract", "anchors"])
def test_report_naming_other_contracts_than_those_verified_is_named(
    api_env: ApiEnv, exchange: dict[str, Any], doc: dict[str, Any], tmp_path: Path, field: str, fmt: str
) -> None:
    """A report whose rows are this ledger's and whose header names another ledger (or other anchors), checked
    against the trusted addresses: before, it verified, and its reader took the rows for the other
    contract's. The practice contract's address was already held to the one verified."""
    stated = "0x" + "12" * 20
    doc[field] = stated
    given = {"contract": api_env.setup.deployment.address, "anchors": exchange["anchors"]}
    result = invoke(["audit", "verify", str(_written(doc, fmt, tmp_path)), "--rpc",
                     str(api_env.settings.rpc_url), "--contract", given["contract"], "--anchors",
                     given["anchors"], "--practice", exchange["practice"], "--json"])  # fmt: skip
    assert result.exit_code == 1, result.output
    option = {"contract": "--contract", "anchors": "--anchors"}[field]
    kind = {"contract": "ledger", "anchors": "receipt anchors"}[field]
    assert json.loads(result.stdout)["problems"] == [
        f"{field}: the report names the {kind} {stated}, the verification read {given[field].lower()} "
        f"({option}): its rows are not that contract's"
    ]


@pytest.mark.parametrize("companion", ["anchors", "practice"])
def test_audit_check_names_an_index_that_left_out_a_contract_beside_the_ledger(
    api_env: ApiEnv, exchange: dict[str, Any], tmp_path: Path, companion: str
) -> None:
    """An audit database whose progress row says it never indexed the receipt anchors (or the sharing
    practice), with their events and the blocks only they held deleted: its scorecards count no batch (no
    demand, no inspection), and ``dxl audit check`` said it matched the chain, for it read the contracts the
    row names, and an empty column reads as a database made before them. Held to the deployment's contracts,
    the column and every event it lacks are named."""
    from sqlalchemy import delete, func, select, union

    from node.audit import models as m
    from node.audit.check import check_store
    from node.audit.service import open_context
    from node.settings import load_settings

    ctx = open_context(load_settings(), f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    table = m.events if companion == "anchors" else m.practice_events
    trusted = exchange[companion]
    with ctx.rpc() as rpc:
        ctx.indexer(rpc).sync()
        assert check_store(ctx.engine, rpc, ctx.codec, expected=ctx.indexed_contracts()).ok
        with ctx.engine.begin() as c:
            theirs = func.lower(table.c.address) == trusted.lower()
            dropped = set(c.execute(select(table.c.seq).where(theirs)).scalars())
            c.execute(delete(table).where(theirs))
            held = union(*(select(t.c.block_number) for t in (m.events, m.practice_events, m.refusals)))
            c.execute(delete(m.blocks).where(m.blocks.c.number.not_in(held)))
            c.execute(m.progress.update().values({companion: None}))
        differences = check_store(ctx.engine, rpc, ctx.codec, expected=ctx.indexed_contracts()).differences
    ctx.engine.dispose()
    assert dropped
    assert differences[0].describe() == (
        f"audit_progress row 1: changed ({companion}: database None != chain {trusted!r})"
    )
    missing = {int(d.key.split()[1]) for d in differences if (d.table, d.kind) == (table.name, "missing")}
    assert missing == dropped, [d.describe() for d in differences]
