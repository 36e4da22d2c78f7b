"""History filters and cursor pagination; provenance by commitment and by delivery; bad input."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from node.audit.errors import AuditError, InvalidQueryError, NotFoundError
from node.audit.events import EventCodec
from node.audit.indexer import Indexer, IndexerConfig
from node.audit.queries import (
    CURSOR_DIGITS,
    CURSOR_PATTERN,
    HistoryFilter,
    ListFilter,
    decode_cursor,
    department_id,
    department_records,
    encode_cursor,
    history,
    proposals,
    provenance,
    threshold,
)
from node.chain import LedgerClient
from node.compiler import load_artifact
from node.deploy import deploy_ledger
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from node.types import Department, GovernanceAction, Proposal, admission_data
from tests.audit.audit_scenario import Scenario


@pytest.fixture(scope="module")
def indexed(indexed_for_reading: Engine) -> Engine:
    """Every test here only reads the index: one for the module (tests/audit/conftest.py)."""
    return indexed_for_reading


def _all(engine: Engine, flt: HistoryFilter, codec: EventCodec, limit: int) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = history(engine, flt, known_events=codec.event_names, cursor=cursor, limit=limit)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def test_pages_concatenate_to_the_whole_history(indexed: Engine, codec: EventCodec) -> None:
    health = department_id(indexed, "HEALTH")
    flt = HistoryFilter(department=health)
    whole = _all(indexed, flt, codec, 500)
    assert _all(indexed, flt, codec, 3) == whole
    assert all(health in (i["provider_id"], i["consumer_id"], i["subject_id"]) for i in whole)
    seqs = [(i["location"]["block_number"], i["location"]["log_index"]) for i in whole]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize(
    ("flt", "events"),
    [
        (dict(counterpart="STATS"), {"AccessRequested": 2, "RequestApproved": 1, "RequestRejected": 1}),
        (dict(events=("DeliveryRecorded",)), {"DeliveryRecorded": 3}),
        (
            dict(agreement=1, events=("DeliveryAcknowledged", "DeliveryDisputed")),
            {"DeliveryAcknowledged": 1, "DeliveryDisputed": 1},
        ),
    ],
)
def test_filters(indexed: Engine, codec: EventCodec, flt: dict[str, Any], events: dict[str, int]) -> None:
    health = department_id(indexed, "HEALTH")
    if "counterpart" in flt:
        flt = {**flt, "counterpart": department_id(indexed, flt["counterpart"])}
    items = _all(indexed, HistoryFilter(department=health, **flt), codec, 50)
    counts: dict[str, int] = {}
    for i in items:
        counts[i["event"]] = counts.get(i["event"], 0) + 1
    assert counts == events


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_the_cursor_pattern_is_the_form_of_the_cursors_written(position: int) -> None:
    """Every cursor written for a position of at most CURSOR_DIGITS digits is of the documented form, and a
    longer one is not (the API's parameter refuses it, as decode_cursor refuses one past MAX_INDEXED_ID)."""
    assert bool(re.fullmatch(CURSOR_PATTERN, encode_cursor(position))) is (
        len(str(position)) <= CURSOR_DIGITS
    )


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_string_of_the_cursor_pattern_is_a_cursor(cursor: str) -> None:
    """The form the OpenAPI document gives a list's cursor: any string of it reads as a position (or, empty,
    as the first page), so a client's or a fuzzer's cursor of that form is never refused as malformed."""
    if cursor:
        assert 0 <= decode_cursor(cursor) < 10**CURSOR_DIGITS


def _forged_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(f"h1:{position}".encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(cursor="not-a-cursor"), "cursor"),
        (dict(cursor=encode_cursor(5)[:-2] + "!!"), "cursor"),
        # Positions past what the database binds (the API answered 500), and spellings encode_cursor never
        # writes.
        (dict(cursor=encode_cursor(2**63)), "cursor"),
        (dict(cursor=_forged_cursor("9" * 100)), "cursor"),
        (dict(cursor=_forged_cursor("+5")), "cursor"),
        (dict(cursor=_forged_cursor("1_0")), "cursor"),
        (dict(cursor=_forged_cursor("-1")), "cursor"),
        (dict(flt=HistoryFilter(events=("NoSuchEvent",))), "event"),
        # Each known event once: a repeated name bounds the list no more (2,000 copies of one were taken).
        (dict(flt=HistoryFilter(events=("DeliveryRecorded", "GrantIssued", "DeliveryRecorded"))), "event"),
        (dict(flt=HistoryFilter(counterpart=2)), "counterpart"),
        (dict(flt=HistoryFilter(from_time=10, to_time=5)), "period"),
        (dict(limit=0), "limit"),
    ],
)
def test_malformed_queries_are_rejected(
    indexed: Engine, codec: EventCodec, kwargs: dict[str, Any], field: str
) -> None:
    flt = kwargs.pop("flt", HistoryFilter())
    with pytest.raises(InvalidQueryError) as info:
        history(indexed, flt, known_events=codec.event_names, **kwargs)
    assert info.value.field == field


def test_provenance_of_a_commitment(indexed: Engine, scenario: Scenario) -> None:
    [p] = provenance(indexed, "0x" + scenario.commitments["d1"].hex())
    assert p["status"] == "acknowledged"
    assert (p["provider"]["code"], p["consumer"]["code"]) == ("HEALTH", "TAX")
    assert p["grant"]["grant_id"] == scenario.results["grant1"]
    assert p["agreement"]["event"] == "AgreementConcluded"
    assert p["request"]["request_id"] == scenario.requests["q1"]
    assert p["decision"]["event"] == "RequestApproved"
    assert p["grant_revocation"]["event"] == "GrantRevoked"
    recorded = scenario.results["d1"]
    assert p["delivery"]["location"]["tx_hash"] == recorded.tx_hash.lower()
    assert p["delivery"]["location"]["block_hash"] == recorded.block_hash.lower()


def test_disputed_delivery_by_id(indexed: Engine, scenario: Scenario) -> None:
    from tests.audit.audit_scenario import delivery_id

    [p] = provenance(indexed, delivery_id="0x" + delivery_id("d2").hex())
    assert p["status"] == "disputed"


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        (dict(commitment="0x" + "12" * 32), NotFoundError, "COMMITMENT_NOT_FOUND"),
        (dict(delivery_id="0x" + "12" * 32), NotFoundError, "DELIVERY_NOT_FOUND"),
        (dict(commitment="0x1234"), InvalidQueryError, "INVALID_QUERY"),
    ],
)
def test_provenance_bad_ids(
    indexed: Engine, kwargs: dict[str, Any], error: type[AuditError], code: str
) -> None:
    with pytest.raises(error) as info:
        provenance(indexed, kwargs.get("commitment"), delivery_id=kwargs.get("delivery_id"))
    assert info.value.code == code


def test_unknown_department(indexed: Engine) -> None:
    with pytest.raises(NotFoundError):
        department_id(indexed, "NOPE")


def test_time_range(indexed: Engine, codec: EventCodec, scenario: Scenario) -> None:
    everything = _all(indexed, HistoryFilter(), codec, 500)
    times = sorted({i["timestamp"] for i in everything})  # the scenario may fit in one or two seconds
    cases = [
        (times[0], times[-1] + 1),
        (times[-1], times[-1] + 1),
        (times[0] - 10, times[0]),
        (times[-1] + 1, None),
    ]
    for lo, hi in cases:
        inside = _all(indexed, HistoryFilter(from_time=lo, to_time=hi), codec, 4)
        assert inside == [
            i for i in everything if lo <= i["timestamp"] and (hi is None or i["timestamp"] < hi)
        ]


def test_provenance_of_a_payload_file(indexed: Engine, scenario: Scenario) -> None:
    from node.audit.queries import provenance_of_file

    found = provenance_of_file(indexed, scenario.home / "d1.csv", scenario.home / "d1.manifest.json")
    assert (
        found["matches_manifest"] and found["computed_commitment"] == "0x" + scenario.commitments["d1"].hex()
    )
    assert [d["status"] for d in found["deliveries"]] == ["acknowledged"]


def test_provenance_of_an_edited_payload_file(indexed: Engine, scenario: Scenario, tmp_path: Path) -> None:
    from node.audit.queries import provenance_of_file

    edited = tmp_path / "d1.csv"
    edited.write_text((scenario.home / "d1.csv").read_text().replace("beta", "gamma"))
    with pytest.raises(NotFoundError) as info:
        provenance_of_file(indexed, edited, scenario.home / "d1.manifest.json")
    assert info.value.code == "COMMITMENT_NOT_FOUND"


def test_proposals_and_departments_read_from_the_index_are_what_the_ledger_views_answer(
    node_endpoint: NodeEndpoint, codec: EventCodec, rpc: JsonRpc, engine: Engine, tmp_path: Path
) -> None:
    """Governors come and go: an approval stands only while its governor is one, in the term it was given in
    (no event says an approval stopped counting); departments are admitted, suspended, re-keyed (a new signer,
    then the encryption key alone) and reinstated. At each step the index rebuilds every proposal and the
    department exactly as the ledger's ``proposal(id)`` and ``department(id)`` views answer them."""
    g1, g2, g3 = Account.create(), Account.create(), Account.create()
    client = LedgerClient(node_endpoint, load_artifact("DataExchangeLedger").abi)
    deployment = deploy_ledger(client, [g1.address, g2.address], 2, deployer=g1, home=tmp_path, force=True)
    indexer = Indexer(engine, rpc, codec, contract=deployment.address, chain_id=client.chain_id,
                      start_block=deployment.block_number, config=IndexerConfig())  # fmt: skip

    def propose(by: LocalAccount, action: GovernanceAction, types: list[str], values: list[object]) -> int:
        created = client.transact(by, "propose", action, abi_encode(types, values)).event("ProposalCreated")
        return int(created.args["proposalId"])

    def governed(
        action: GovernanceAction,
        types: list[str],
        values: list[object],
        by: tuple[LocalAccount, LocalAccount] = (g1, g2),
    ) -> int:
        proposal = propose(by[0], action, types, values)
        client.transact(by[1], "approve", proposal)
        return proposal

    def as_the_ledger_says(department: int | None = None) -> None:
        indexer.sync(to_block=client.block_number())
        count = int(client.call("proposalCount"))
        listed = proposals(engine, ListFilter(), limit=500)
        assert [p.id for p in listed.items] == list(range(count, 0, -1))
        assert listed.items == [Proposal.read(client, i) for i in range(count, 0, -1)]
        assert threshold(engine) == int(client.call("threshold"))
        if department is not None:
            assert department_records(engine, [department]) == {
                department: Department.read(client, department)
            }

    waiting = propose(g1, GovernanceAction.GRANT_AUDITOR, ["address"], [Account.create().address])
    governed(GovernanceAction.ADD_GOVERNOR, ["address"], [g3.address])
    as_the_ledger_says()
    governed(GovernanceAction.REMOVE_GOVERNOR, ["address"], [g1.address], by=(g2, g3))
    as_the_ledger_says()  # g1's approval of `waiting` no longer stands
    assert Proposal.read(client, waiting).approvals == 0
    governed(GovernanceAction.ADD_GOVERNOR, ["address"], [g1.address], by=(g2, g3))
    as_the_ledger_says()  # back, in a new term: the old approval still does not count
    client.transact(g1, "approve", waiting)
    cancelled = propose(g3, GovernanceAction.GRANT_AUDITOR, ["address"], [g3.address])
    client.transact(g3, "cancel", cancelled)
    as_the_ledger_says()
    assert Proposal.read(client, waiting).approvals == 1

    signer, other = Account.create(), Account.create()
    admission = admission_data("LISTS", "Lists department", signer.address, keccak(text="key 1"))
    proposal = int(client.transact(g1, "propose", GovernanceAction.ADMIT_DEPARTMENT, admission)
                   .event("ProposalCreated").args["proposalId"])  # fmt: skip
    department = int(
        client.transact(g2, "approve", proposal).event("DepartmentAdmitted").args["departmentId"]
    )
    as_the_ledger_says(department)
    governed(GovernanceAction.SUSPEND_DEPARTMENT, ["uint32"], [department])
    as_the_ledger_says(department)
    governed(GovernanceAction.REKEY_DEPARTMENT, ["uint32", "address", "bytes32"],
             [department, other.address, keccak(text="key 2")])  # fmt: skip
    governed(GovernanceAction.REKEY_DEPARTMENT, ["uint32", "address", "bytes32"],
             [department, other.address, keccak(text="key 3")])  # fmt: skip
    as_the_ledger_says(department)
    governed(GovernanceAction.REINSTATE_DEPARTMENT, ["uint32"], [department])
    as_the_ledger_says(department)
    assert Department.read(client, department).key_epoch == 1
