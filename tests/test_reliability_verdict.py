"""The verdict of ``make reliability`` (tests/reliability/counting.py), on hand-made answers and events: each
counter moves for the case it names and for no other. The suite itself attacks a live service and is not part
of ``make test``; its counting is pure and is checked here."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from node.chain import FAILOVER_LOG_FORMAT, Failover
from node.settings import DEFAULT_STALL_TIMEOUT_S
from tests.reliability.counting import ChainEvent, Verdict, judge
from tests.reliability.faults import schedule
from tests.reliability.fuzz import FuzzResult
from tests.reliability.processes import ApiConfig, ApiProcess
from tests.reliability.profile import NETWORK, QUICK
from tests.reliability.receipts import AnchoredBatch, judge_receipts
from tests.reliability.records import Attempt, FaultKind, Marker, WriteKind, WriteRecord
from tests.reliability.report import Summary, shortfall
from verifier.receipts import BatchTree, Receipt, ReceiptProof

META = "0x" + "aa" * 32
DELIVERY = "0x" + "bb" * 32
TX = "0x" + "11" * 32
OTHER_TX = "0x" + "22" * 32


def resource_write(status: int, body: Any) -> WriteRecord:
    marker = Marker("ResourceRegistered", (("metadataHash", META),), "resourceId")
    write = WriteRecord("k", WriteKind.RESOURCE, "psb", "POST", "/resources", {}, [marker])
    write.attempts.append(Attempt(0.0, 0.1, status, None, True))
    write.final_status, write.final_body = status, body
    return write


def registered(resource_id: int, tx: str = TX, block: int = 7) -> ChainEvent:
    return ChainEvent("ResourceRegistered", {"metadataHash": META, "resourceId": resource_id}, tx, block)


def written(resource_id: int, tx: str = TX, block: int = 7) -> dict[str, Any]:
    return {"transaction": {"hash": tx, "block_number": block}, "record": {"id": resource_id}}


REFUSED = {"error": {"code": "NOT_A_PARTY", "message": "no"}}
PENDING = {"error": {"code": "TRANSACTION_PENDING", "message": "later"}}


@pytest.mark.parametrize(
    ("status", "body", "events", "expected"),
    [
        pytest.param(201, written(3), [registered(3)], {"confirmed": 1}, id="acknowledged-once"),
        pytest.param(201, written(3), [], {"lost": 1}, id="acknowledged-missing"),
        pytest.param(
            201, written(3), [registered(3), registered(4, OTHER_TX)], {"confirmed": 1, "doubled": 1},
            id="acknowledged-twice",
        ),
        pytest.param(201, written(3), [registered(3, OTHER_TX)], {"mismatched": 1}, id="other-transaction"),
        pytest.param(201, written(3), [registered(4)], {"mismatched": 1}, id="other-id"),
        pytest.param(
            201, written(3, block=7), [registered(3, block=9)], {"confirmed": 1, "moved": 1}, id="moved"
        ),
        pytest.param(403, REFUSED, [], {}, id="refused-absent"),
        pytest.param(403, REFUSED, [registered(3)], {"mismatched": 1}, id="refused-but-recorded"),
        pytest.param(503, None, [], {"unresolved": 1}, id="never-settled"),
        pytest.param(
            409, PENDING, [registered(3)], {"unresolved": 1, "mismatched": 1}, id="still-pending-but-recorded"
        ),
        pytest.param(409, PENDING, [], {"unresolved": 1, "mismatched": 1}, id="still-pending"),
    ],
)  # fmt: skip
def test_judge_counts_each_outcome(
    status: int, body: Any, events: list[ChainEvent], expected: dict[str, int]
) -> None:
    verdict = judge([resource_write(status, body)], events)
    counters = ("lost", "doubled", "mismatched", "confirmed", "moved", "unresolved")
    assert {c: getattr(verdict, c) for c in counters} == {c: expected.get(c, 0) for c in counters}


def test_judge_counts_every_record_of_a_batch() -> None:
    other = "0x" + "cc" * 32
    markers = [Marker("DeliveryRecorded", (("deliveryId", d),)) for d in (DELIVERY, other)]
    write = WriteRecord("b", WriteKind.BATCH, "psb", "POST", "/deliveries/batch", {}, markers)
    write.final_status, write.final_body = (
        201,
        {"transaction": {"hash": TX, "block_number": 7}, "records": []},
    )
    verdict = judge([write], [ChainEvent("DeliveryRecorded", {"deliveryId": DELIVERY}, TX, 7)])
    assert (verdict.confirmed, verdict.lost) == (1, 1)
    assert verdict.problems["lost"] and other in verdict.problems["lost"][0]


def test_a_conclusion_answered_without_an_agreement_is_lost_and_says_which_answer() -> None:
    """The second signature answered 200 ``awaiting_counter_signature``: the first, acknowledged, is gone and
    no agreement is on the chain. Lost, and the problem names that answer (it has no transaction, as an
    agreement someone else concluded has not either)."""
    marker = Marker("AgreementConcluded", (("requestId", 21),), "agreementId")
    write = WriteRecord("c", WriteKind.CONCLUDE, "health", "POST", "/requests/21/signatures", {}, [marker])
    write.final_status, write.final_body = 200, {"status": "awaiting_counter_signature", "agreement": None}
    verdict = judge([write], [])
    assert (verdict.lost, verdict.mismatched) == (1, 0)
    assert "answered 200 awaiting_counter_signature tx None" in verdict.problems["lost"][0]


def test_judge_matches_hashes_whatever_their_case() -> None:
    verdict = judge([resource_write(201, written(3, TX.upper().replace("0X", "0x")))], [registered(3)])
    assert verdict == Verdict(confirmed=1)


def test_a_differing_replay_counts_once_per_key() -> None:
    verdict = judge([resource_write(201, written(3))], [registered(4)])  # chain disagrees with the id: 1
    verdict.answer_differs("k", "replayed id 4")
    verdict.answer_differs("other", "twin answered 409")
    verdict.answer_differs("other", "replayed 409")
    assert verdict.mismatched == 2
    assert verdict.problems["answer_differs"] == ["twin answered 409"]


# --- receipts: counted by batch (tests/reliability/receipts.py) ---------------------------------------------


def _receipts(n: int, grant: int = 3) -> list[dict[str, Any]]:
    return [
        {"delivery_id": "0x" + f"{i + 1:064x}", "grant_id": grant, "commitment": "0x" + f"{i + 9:064x}",
         "byte_size": 100 + i, "record_count": i}
        for i in range(n)
    ]  # fmt: skip


def _anchored(sent: list[dict[str, Any]], first: int = 0) -> tuple[dict[str, dict[str, Any]], AnchoredBatch]:
    """The service's final answers for ``sent`` anchored as one batch, and the chain's record of it."""
    receipts = [
        Receipt(bytes.fromhex(r["delivery_id"][2:]), r["grant_id"], bytes.fromhex(r["commitment"][2:]), 1,
                r["byte_size"], r["record_count"])
        for r in sent
    ]  # fmt: skip
    tree = BatchTree([r.leaf_hash() for r in receipts])
    answers = {}
    for i, r in enumerate(receipts):
        proof = ReceiptProof(r, first, i, len(receipts), tree.root, tuple(tree.proof(i)))
        answers[sent[i]["delivery_id"]] = {
            "grant_id": r.grant_id, "sequence": first + i, "status": "final", "proof": proof.to_json(),
        }  # fmt: skip
    batch = AnchoredBatch(sent[0]["grant_id"], first, len(sent), "0x" + tree.root.hex(), TX)
    return answers, batch


def test_receipts_each_proven_in_an_anchored_batch_are_confirmed() -> None:
    sent = _receipts(3)
    answers, batch = _anchored(sent)
    v = judge_receipts({r["delivery_id"]: r for r in sent}, {}, answers, {(3, 0): batch})
    assert (v.accepted, v.confirmed, v.lost, v.doubled) == (3, 3, 0, 0)


def test_a_receipt_the_service_forgot_or_that_stays_pending_is_lost() -> None:
    sent = _receipts(3)
    answers, batch = _anchored(sent)
    del answers[sent[0]["delivery_id"]]
    answers[sent[1]["delivery_id"]] = {"status": "pending", "proof": None}
    v = judge_receipts({r["delivery_id"]: r for r in sent}, {}, answers, {(3, 0): batch})
    assert (v.confirmed, v.lost, v.doubled) == (1, 2, 0)


def test_a_proof_to_a_batch_the_chain_lacks_or_with_other_fields_is_lost() -> None:
    sent = _receipts(2)
    answers, batch = _anchored(sent)
    edited = [dict(sent[0]), sent[1]]
    edited[0]["commitment"] = "0x" + "ee" * 32
    v = judge_receipts({r["delivery_id"]: r for r in edited}, {}, answers, {(3, 0): batch})
    assert (v.confirmed, v.lost) == (1, 1)
    v = judge_receipts({r["delivery_id"]: r for r in sent}, {}, answers, {})
    assert (v.confirmed, v.lost) == (0, 2)
    other = AnchoredBatch(3, 0, 2, "0x" + "ab" * 32, TX)
    v = judge_receipts({r["delivery_id"]: r for r in sent}, {}, answers, {(3, 0): other})
    assert (v.confirmed, v.lost) == (0, 2)


def test_leaves_beyond_the_posted_receipts_are_doubled_unless_unanswered_writes_explain_them() -> None:
    sent = _receipts(2)
    answers, batch = _anchored(sent)
    _, second = _anchored(sent, first=2)  # the same two receipts anchored a second time
    acknowledged = {r["delivery_id"]: r for r in sent}
    v = judge_receipts(acknowledged, {}, answers, {(3, 0): batch, (3, 2): second})
    assert (v.confirmed, v.lost, v.doubled) == (2, 0, 2)
    unanswered = {r["delivery_id"]: r for r in _receipts(4)[2:]}
    v = judge_receipts(acknowledged, unanswered, answers, {(3, 0): batch, (3, 2): second})
    assert (v.confirmed, v.lost, v.doubled) == (2, 0, 0)


def test_the_network_profile_schedules_only_faults_a_network_run_can_inject() -> None:
    """The network run has no proxy and no embedded node: its plan is member kills, member stalls (cut off,
    answering) and API kills only."""
    plan = schedule(NETWORK, random.Random(7), disk_available=True)
    kinds = {
        FaultKind.MEMBER_KILL: NETWORK.member_kills,
        FaultKind.MEMBER_STALL: NETWORK.member_stalls,
        FaultKind.API_KILL: NETWORK.api_kills,
    }
    assert Counter(plan) == kinds
    assert NETWORK.network and NETWORK.member_kills >= 3 and NETWORK.member_stalls >= 1
    assert NETWORK.kills + NETWORK.member_stalls == len(plan)
    # Long enough for the service to leave the stalled member (DXL_STALL_TIMEOUT's default) and write on.
    assert NETWORK.stall_s >= 2 * DEFAULT_STALL_TIMEOUT_S
    quick = schedule(QUICK, random.Random(7), disk_available=True)
    assert FaultKind.MEMBER_KILL not in quick and FaultKind.MEMBER_STALL not in quick


def _failover(cause: Failover, left: str, why: str, now: str) -> str:
    """A warning line as the service's chain client logs it."""
    return "WARNING:dxl.node.chain:" + FAILOVER_LOG_FORMAT % (cause.value, left, why, now)


def test_the_report_counts_failovers_by_cause_and_follows_the_node_in_use(tmp_path: Path) -> None:
    """A stall is counted apart from a dead node (the report's api_failovers), from the lines the chain client
    logs; the node the service uses now, which a stall fault cuts off, is the one named last since the
    present process started serving (its summary, then each move)."""
    a, b, c = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"
    lines = [
        "=== dxl run (start 1) ===",
        f"  node     {a} (external)",
        _failover(Failover.UNREACHABLE, a, "stopped answering", b),
        _failover(Failover.STALLED, b, "has stayed at block 9 for 5.1 s while … is at block 15", c),
        _failover(Failover.FOLLOWED, b, "was left by the client of 0xabc", c),
        "WARNING:dxl.node.rpc:node http://127.0.0.1:2 stopped answering; now using http://127.0.0.1:1",
        "",
    ]  # fmt: skip
    log = tmp_path / "api.log"
    log.write_text("\n".join(lines))
    api = ApiProcess(ApiConfig(tmp_path, 1, a, 1, "sqlite://", log))
    assert api.failovers() == {
        Failover.UNREACHABLE: 1, Failover.STALLED: 1, Failover.BEHIND: 0, Failover.FOLLOWED: 1
    }  # fmt: skip
    assert api.node_in_use() == c
    log.write_text("\n".join([*lines, "=== dxl run (start 2) ===", f"  node     {b} (external)"]))
    assert api.node_in_use() == b and api.failovers()[Failover.STALLED] == 1
    log.write_text("\n".join([*lines, "=== dxl run (start 2) ==="]))
    assert api.node_in_use() is None


def _summary(lost: int = 0) -> Summary:
    return Summary(
        profile="quick",
        lost=lost,
        doubled=0,
        server_errors=0,
        kills=3,
        writes=25,
        p99_ms=60202.0,
        mismatched=0,
    )


@pytest.mark.parametrize(
    ("injected", "writes", "short"),
    [
        pytest.param(8, 200, [], id="carried-out"),
        pytest.param(5, 200, ["5 of its 8 faults injected"], id="faults-short"),
        pytest.param(8, 25, ["25 of its 200 writes acknowledged"], id="writes-short"),
        pytest.param(
            5, 25, ["5 of its 8 faults injected", "25 of its 200 writes acknowledged"], id="both-short"
        ),
    ],
)
def test_a_run_short_of_its_profile_says_what_it_lacked(injected: int, writes: int, short: list[str]) -> None:
    """A quick run whose load reached 25 of its 200 writes and 5 of its 8 faults within the cap (a run seen
    with every write hanging) proves less than its line claims: it names what it lacked."""
    fuzzed = FuzzResult(requests=585, operations=65, roles=9)
    assert shortfall(QUICK, planned=8, injected=injected, writes=writes, fuzz=fuzzed) == short


@pytest.mark.parametrize(
    ("fuzzed", "short"),
    [
        pytest.param(
            FuzzResult(operations=65, roles=9, skipped=100, errors=2),
            ["schemathesis ran 483 of its 585 operation-role pairs"],
            id="pairs-short",
        ),
        pytest.param(None, ["schemathesis not run"], id="not-run"),
    ],
)  # fmt: skip
def test_schemathesis_short_of_every_operation_as_every_role_is_short_of_the_profile(
    fuzzed: FuzzResult | None, short: list[str]
) -> None:
    """Every operation as every role is the profile's fuzzing: pairs its budget did not reach, or whose run
    raised, were not checked for a 5xx."""
    assert shortfall(QUICK, planned=8, injected=8, writes=200, fuzz=fuzzed) == short


def test_a_run_short_of_its_profile_exits_2_unless_a_counter_failed() -> None:
    """Exit 2 is "the run could not be carried out", as for a harness error: a short run with clean counters
    is not a pass; a nonzero counter is a failure (1) whatever the run reached."""
    summary = _summary()
    assert summary.exit_status() == 0
    summary.short = ["5 of its 8 faults injected"]
    assert summary.exit_status() == 2
    summary.lost = 12
    assert summary.exit_status() == 1
