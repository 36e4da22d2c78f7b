"""Receipts over HTTP: bulk acceptance with the delivery checks, anchoring in batches, proofs, exactly
once."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.db import JournaledTransaction, init_db, make_engine
from api.journal import TxStatus
from api.receipts.anchorer import ANCHOR_GAS, Anchorer, run_rounds
from api.receipts.journal import BatchSlot, Journaled, WriteTurn, batches_table, receipts_table
from api.receipts.lookups import ReceiptReader, batch_receipts
from api.server import CLI_OPTIONS
from node.chain import LedgerRevertError
from node.deploy import anchors_client
from node.errors import NodeError
from node.keys import KeyStore
from node.tls import tls_context
from tests.api.api_helpers import (
    ApiEnv,
    agreement_between,
    anchored_batch,
    b32,
    delivery_between,
    delivery_id_for,
    full_disk,
    govern,
    grant_between,
    in_pool,
    journal_receipts,
    ok,
    psb_delivery,
    receipt_body,
    some_receipts,
    until,
)
from tests.cli import invoke
from tests.rpc_proxy import RpcProxy
from verifier.delivery_ids import new_delivery_id
from verifier.receipts import BatchTree, Receipt, ReceiptProof, verify_receipt_proof

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-receipts")


@pytest.fixture(scope="module")
def grant(api_env: ApiEnv) -> dict[str, Any]:
    return grant_between(api_env, "psb", "hrss")


def test_post_receipts_anchorsInOneBatch_proofsVerifyInPythonAndOnChain(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    # A grant of its own, whose batches hold its receipts alone: a receipt another test left pending under the
    # module's grant joined this batch when the module ran in a shuffled order (6 leaves, not 5).
    grant = grant_between(api_env, "psb", "hrss")
    bodies = [receipt_body(grant) for _ in range(5)]
    bodies[1]["hash_algorithm"] = "sm3"
    answer = ok(api_env.call("POST", "/receipts", "psb", json={"receipts": bodies}), 202)
    assert answer == {"status": "pending", "count": 5, "delivery_ids": [b["delivery_id"] for b in bodies]}

    ids = [b["delivery_id"] for b in bodies]

    def all_final() -> list[dict[str, Any]] | None:
        found = ok(api_env.call("POST", "/receipts/lookup", "hrss", json={"delivery_ids": ids}))["receipts"]
        return found if len(found) == 5 and all(r["status"] == "final" for r in found) else None

    receipts = until(all_final, "the batch to be mined")
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    batch = receipts[0]["batch"]
    assert {r["batch"]["root"] for r in receipts} == {batch["root"]} and batch["leaf_count"] == 5
    assert batch["tx_hash"] and batch["block_number"]
    on_chain = anchors.call("batch", grant["id"], batch["first_sequence"])
    assert "0x" + bytes(on_chain[0]).hex() == batch["root"] and on_chain[1] == 5
    for i, r in enumerate(receipts):
        assert (r["delivery_id"], r["sequence"], r["provider"]) == (ids[i], batch["first_sequence"] + i, 1)
        assert r["hash_algorithm"] == ("sm3" if i == 1 else "sha256")
        proof = ReceiptProof.from_json(r["proof"])
        verify_receipt_proof(proof)
        assert anchors.call(
            "receiptIncluded", grant["id"], batch["first_sequence"], proof.receipt.as_tuple(), proof.index,
            list(proof.proof),
        ) is True  # fmt: skip
    single = ok(api_env.call("GET", f"/receipts/{ids[3]}", "auditor"))
    assert single == receipts[3]
    assert api_env.call("GET", f"/receipts/{ids[3]}", "civil").json()["error"]["code"] == "RECEIPT_NOT_FOUND"
    check_with_cli(api_env, anchors.address, single, tmp_path)


def test_anchors_and_journaled_writes_of_one_provider_share_its_nonces(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    """A provider's key signs both its anchors and its journaled writes: one journal and one nonce counter,
    so a write after an anchor takes the next nonce at once (never one the anchor used), and an anchor the
    node loses is re-sent in nonce order with the writes behind it."""
    engine = make_engine(api_env.settings.effective_database_url)
    sender = api_env.keystore.address("dept-psb")
    t = JournaledTransaction
    resource = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}
    # The first write may find the key's nonce used past the service by a test before (re-signed: superseded),
    # as the journal is made to; from the anchor on, the transactions this test checks.
    ok(api_env.call("POST", "/resources", "psb", json=resource), 201)
    with engine.connect() as conn:
        before = conn.execute(select(func.max(t.id))).scalar() or 0
    body = receipt_body(grant)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [body]}), 202)
    path = f"/receipts/{body['delivery_id']}"
    final = until(
        lambda: (r := ok(api_env.call("GET", path, "psb")))["status"] == "final" and r, "the anchor"
    )
    written = ok(api_env.call("POST", "/resources", "psb", json={**resource, "metadata_hash": b32()}), 201)
    with engine.connect() as conn:
        rows = conn.execute(select(t.tx_hash, t.status).where(t.sender == sender, t.id > before)).all()
    engine.dispose()
    assert written["transaction"]["hash"] in {h for h, _ in rows}
    # The anchor went through the journal too: were the node to lose it, it is re-sent in nonce order.
    assert (final["batch"]["tx_hash"], TxStatus.MINED) in rows
    assert [h for h, status in rows if status == TxStatus.SUPERSEDED] == []


def test_post_receipts_diskFull_503_nothingJournaled_retryAcceptedOnce(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    """The disk fills up (a file-size limit on this process: SQLite answers "database or disk is full") as
    receipts are journaled: a documented 503, nothing left pending in the journal's connection, and the same
    receipts posted again once there is room are accepted and anchored once."""
    body = {"receipts": [receipt_body(grant) for _ in range(3)]}
    ids = [r["delivery_id"] for r in body["receipts"]]
    with full_disk():
        full = api_env.call("POST", "/receipts", "psb", json=body)
    assert full.status_code == 503, full.text
    assert full.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    known = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids}))["receipts"]
    assert known == []
    ok(api_env.call("POST", "/receipts", "psb", json=body), 202)

    def all_final() -> list[dict[str, Any]] | None:
        found = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids}))["receipts"]
        return found if len(found) == 3 and all(r["status"] == "final" for r in found) else None

    found = until(all_final, "the receipts to be anchored")
    assert len({(r["grant_id"], r["sequence"]) for r in found}) == 3


def test_post_receipts_lookup_takesItsFullThousandIds(api_env: ApiEnv) -> None:
    """The lookup's declared maximum (1,000 ids) fits its body limit: unknown ids simply are not listed."""
    ids = [b32() for _ in range(1000)]
    assert ok(api_env.call("POST", "/receipts/lookup", "auditor", json={"delivery_ids": ids})) == {
        "receipts": []
    }
    refused = api_env.call("POST", "/receipts/lookup", "auditor", json={"delivery_ids": [*ids, b32()]})
    assert refused.status_code == 422, refused.text


def check_with_cli(api_env: ApiEnv, anchors: str | None, answer: dict[str, Any], tmp_path: Path) -> None:
    """``dxl verify-receipt`` checks the answer against the chain alone; a changed receipt or a batch the
    chain does not hold is refused."""
    rpc = str(api_env.settings.rpc_url)

    def verdict(raw: dict[str, Any]) -> tuple[int, str]:
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps(raw))
        result = invoke(["verify-receipt", str(path), "--rpc", rpc, "--anchors", str(anchors), "--json"])
        return result.exit_code, json.loads(result.stdout)["status"]

    assert verdict(answer) == (0, "ANCHORED")
    assert verdict(answer["proof"]) == (0, "ANCHORED")
    changed = json.loads(json.dumps(answer["proof"]))
    changed["receipt"]["byte_size"] += 1
    assert verdict(changed) == (1, "MISMATCH")
    elsewhere = json.loads(json.dumps(answer["proof"]))  # the same proof for a batch the chain does not hold
    elsewhere["batch"]["first_sequence"] += 10_000
    elsewhere["sequence"] += 10_000
    assert verdict(elsewhere) == (1, "NOT_ANCHORED")


def test_consumer_disputesOneReceipt_acknowledgesTheBatch(api_env: ApiEnv, tmp_path: Path) -> None:
    grant = grant_between(api_env, "psb", "hrss")
    gid = grant["id"]
    bodies = [receipt_body(grant) for _ in range(3)]
    ids = [b["delivery_id"] for b in bodies]
    api_env.call("POST", "/receipts", "psb", json={"receipts": bodies})
    early = api_env.call("POST", f"/receipts/{ids[1]}/dispute", "hrss", json={"consumer_commitment": b32()})
    assert early.status_code in (200, 409)  # the batch may already be final on an idle node
    if early.status_code == 409:
        assert early.json()["error"]["code"] == "RECEIPT_NOT_FINAL"

    def final() -> bool:
        found = ok(api_env.call("POST", "/receipts/lookup", "hrss", json={"delivery_ids": ids}))["receipts"]
        return all(r["status"] == "final" for r in found)

    until(final, "the batch to be mined")
    theirs = b32()
    path = f"/receipts/{ids[2]}/dispute"
    equal = api_env.call("POST", path, "hrss", json={"consumer_commitment": bodies[2]["commitment"]})
    assert equal.status_code == 422 and equal.json()["error"]["field"] == "consumer_commitment"
    assert api_env.call("POST", path, "psb", json={"consumer_commitment": theirs}).status_code == 403
    disputed = ok(api_env.call("POST", path, "hrss", json={"consumer_commitment": theirs}))
    assert disputed["transaction"]["hash"] and disputed["consumer_commitment"] == theirs
    again = api_env.call("POST", path, "hrss", json={"consumer_commitment": theirs})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "RECEIPT_ALREADY_DISPUTED")
    receipt = ok(api_env.call("GET", path.removesuffix("/dispute"), "hrss"))
    assert check_cli(api_env, receipt, tmp_path) == (1, "DISPUTED")

    first = receipt["batch"]["first_sequence"]
    ack = f"/receipts/batches/{gid}/{first}/acknowledge"
    assert api_env.call("POST", ack, "psb").json()["error"]["code"] == "NOT_A_PARTY"
    assert api_env.call("POST", f"/receipts/batches/{gid}/{first + 1}/acknowledge", "hrss").status_code == 404
    # Any uint64 the ledger could number is a batch not found, as GET /grants/{id} answers; beyond, a 422.
    for path, status in ((f"{2**63}/0", 404), (f"{gid}/{2**64 - 1}", 404), (f"{2**64}/0", 422)):
        assert api_env.call("POST", f"/receipts/batches/{path}/acknowledge", "hrss").status_code == status
    settled = ok(api_env.call("POST", ack, "hrss"))
    assert settled["batch"] == {"grant_id": gid, "first_sequence": first, "leaf_count": 3,
                                "root": receipt["batch"]["root"], "status": "acknowledged"}  # fmt: skip
    for response in (
        api_env.call("POST", ack, "hrss"),
        api_env.call("POST", f"/receipts/{ids[0]}/dispute", "hrss", json={"consumer_commitment": theirs}),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (409, "RECEIPT_BATCH_SETTLED")
    other = ok(api_env.call("GET", f"/receipts/{ids[0]}", "auditor"))
    assert check_cli(api_env, other, tmp_path) == (0, "ACKNOWLEDGED")
    # Both went through the transaction journal, as every write of the service does (and with the consumer's
    # other writes, in nonce order, were the node to lose them).
    engine = make_engine(api_env.settings.effective_database_url)
    t = JournaledTransaction
    with engine.connect() as conn:
        rows = set(
            conn.execute(select(t.tx_hash, t.status).where(t.sender == api_env.keystore.address("dept-hrss")))
        )
    engine.dispose()
    assert {
        (disputed["transaction"]["hash"], TxStatus.MINED),
        (settled["transaction"]["hash"], TxStatus.MINED),
    } <= rows


def test_verify_receipt_reads_its_answer_at_the_block_it_names(api_env: ApiEnv, tmp_path: Path) -> None:
    """The consumer acknowledges the batch just after ``dxl verify-receipt`` read the node's head: the
    answer is the receipt as it stood at the head named, ANCHORED. Read at the head of each read, it was
    ACKNOWLEDGED by a block after the one named."""
    grant = grant_between(api_env, "psb", "hrss")
    bodies = [receipt_body(grant) for _ in range(2)]
    ids = [b["delivery_id"] for b in bodies]
    api_env.call("POST", "/receipts", "psb", json={"receipts": bodies})

    def final() -> bool:
        found = ok(api_env.call("POST", "/receipts/lookup", "hrss", json={"delivery_ids": ids}))["receipts"]
        return all(r["status"] == "final" for r in found)

    until(final, "the batch to be mined")
    answer = ok(api_env.call("GET", f"/receipts/{ids[0]}", "auditor"))
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    ack = f"/receipts/batches/{grant['id']}/{answer['batch']['first_sequence']}/acknowledge"
    settled: list[dict[str, Any]] = []
    with RpcProxy(str(api_env.settings.rpc_url)) as proxy:
        proxy.after_head = lambda: settled.append(ok(api_env.call("POST", ack, "hrss")))
        result = invoke(
            ["verify-receipt", str(path), "--rpc", proxy.url, "--anchors", answer["anchors"], "--json"]
        )
    out = json.loads(result.stdout)
    assert settled and out["node"]["block"] < settled[0]["transaction"]["block_number"], (out, settled)
    assert (result.exit_code, out["status"]) == (0, "ANCHORED"), out
    assert check_cli(api_env, answer, tmp_path) == (0, "ACKNOWLEDGED")  # at the head now


def check_cli(api_env: ApiEnv, answer: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    result = invoke(
        ["verify-receipt", str(path), "--rpc", str(api_env.settings.rpc_url),
         "--anchors", answer["anchors"], "--json"],
    )  # fmt: skip
    return result.exit_code, json.loads(result.stdout)["status"]


def test_post_receipts_anIdIsAnchoredOnce(api_env: ApiEnv) -> None:
    """The service never anchors a delivery id twice, which the chain alone could not tell (the anchors see
    roots, not leaves): an id twice in one request is refused naming the second, and a receipt posted again
    once its batch is final is taken (202) without a leaf more: the next batch holds only the new receipt,
    and the first keeps its sequence."""
    grant = grant_between(api_env, "psb", "hrss")
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    body = receipt_body(grant)

    def final(*bodies: dict[str, Any]) -> list[dict[str, Any]] | None:
        ids = [b["delivery_id"] for b in bodies]
        found = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids}))["receipts"]
        return found if len(found) == len(ids) and {r["status"] for r in found} == {"final"} else None

    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [body]}), 202)
    (before,) = until(lambda: final(body), "the receipt anchored")
    twice = receipt_body(grant)
    refused = api_env.call("POST", "/receipts", "psb", json={"receipts": [twice, twice]})
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "receipts.1.delivery_id")
    fresh = receipt_body(grant)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [body]}), 202)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [fresh]}), 202)
    after, new = until(lambda: final(body, fresh), "the new receipt anchored")
    assert after == before
    assert new["sequence"] == before["sequence"] + 1
    assert int(anchors.call("nextSequence", grant["id"])) == 2


def test_post_receipts_samePostedTwice_acceptedOnce_otherFieldsRefused(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    body = receipt_body(grant)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [body]}), 202)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [body]}), 202)
    changed = {**body, "byte_size": 1}
    refused = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt_body(grant), changed]})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["code"], error["index"], error["delivery_id"]) == (
        "DUPLICATE_DELIVERY",
        1,
        body["delivery_id"],
    )
    engine = make_engine(api_env.settings.effective_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(receipts_table.c.byte_size).where(
                receipts_table.c.delivery_id == bytes.fromhex(body["delivery_id"][2:])
            )
        ).all()
    engine.dispose()
    assert [r.byte_size for r in rows] == [2048]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        (lambda g: {"receipts": []}, 422, "VALIDATION_ERROR", "receipts"),
        # The unknown field named, as every other route names it (it named receipts, which is right).
        (lambda g: {"receipts": [receipt_body(g)], "x": 1}, 422, "VALIDATION_ERROR", "x"),
        (lambda g: {"x": 1}, 422, "VALIDATION_ERROR", "x"),
        (lambda g: {}, 422, "VALIDATION_ERROR", "receipts"),
        (lambda g: [receipt_body(g)], 422, "VALIDATION_ERROR", "body"),
        (lambda g: {"receipts": [receipt_body(g), 7]}, 422, "VALIDATION_ERROR", "receipts.1"),
        (lambda g: {"receipts": [receipt_body(g, commitment="0x12")]}, 422, "VALIDATION_ERROR",
         "receipts.0.commitment"),
        # "0x" as POST /deliveries takes it (and the documented pattern says).
        (lambda g: {"receipts": [receipt_body(g, commitment="0X" + "11" * 32)]}, 422, "VALIDATION_ERROR",
         "receipts.0.commitment"),
        # 66 characters, 31 bytes: bytes.fromhex skips the spaces.
        (lambda g: {"receipts": [receipt_body(g, commitment="0x" + "11" * 31 + "  ")]}, 422,
         "VALIDATION_ERROR", "receipts.0.commitment"),
        (lambda g: {"receipts": [receipt_body(g, byte_size=-1)]}, 422, "VALIDATION_ERROR",
         "receipts.0.byte_size"),
        (lambda g: {"receipts": [receipt_body(g, byte_size=True)]}, 422, "VALIDATION_ERROR",
         "receipts.0.byte_size"),
        (lambda g: {"receipts": [receipt_body(g, hash_algorithm="md5")]}, 422, "VALIDATION_ERROR",
         "receipts.0.hash_algorithm"),
        # Not a name at all (an object or a list cannot even be looked up in the table of names).
        (lambda g: {"receipts": [receipt_body(g, hash_algorithm={})]}, 422, "VALIDATION_ERROR",
         "receipts.0.hash_algorithm"),
        (lambda g: {"receipts": [receipt_body(g, hash_algorithm=["sha256"])]}, 422, "VALIDATION_ERROR",
         "receipts.0.hash_algorithm"),
        (lambda g: {"receipts": [receipt_body(g, extra=1)]}, 422, "VALIDATION_ERROR", "receipts.0.extra"),
        (lambda g: {"receipts": [{k: v for k, v in receipt_body(g).items() if k != "grant_id"}]}, 422,
         "VALIDATION_ERROR", "receipts.0.grant_id"),
        (lambda g: {"receipts": [receipt_body(g, delivery_id="0x" + "00" * 32)]}, 422, "INVALID_FIELD", None),
        (lambda g: {"receipts": [receipt_body(g), receipt_body({**g, "id": 10**6})]}, 404, "GRANT_NOT_FOUND",
         None),
    ],
)  # fmt: skip
def test_post_receipts_badInput_refusedWithNothingRecorded(
    api_env: ApiEnv, grant: dict[str, Any], change: Any, status: int, code: str, field: str | None
) -> None:
    body = change(grant)
    response = api_env.call("POST", "/receipts", "psb", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error.get("field") == field
    sent = body.get("receipts", []) if isinstance(body, dict) else body
    ids = [r["delivery_id"] for r in sent if isinstance(r, dict) and "delivery_id" in r]
    if ids and code != "INVALID_FIELD":
        assert (
            ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids}))["receipts"] == []
        )


def test_post_receipts_andLookup_overTheirDocumentedCounts_refusedNamingTheList(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    """api/README: `POST /receipts` takes 1 to 10,000 receipts and `POST /receipts/lookup` up to 1,000 ids;
    one more is a 422 naming the list, and none of the receipts is taken."""
    receipts = [receipt_body(grant, byte_size=1) for _ in range(10_001)]
    refused = api_env.call("POST", "/receipts", "psb", json={"receipts": receipts})
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "receipts"), refused.text[:300]
    ids = [r["delivery_id"] for r in receipts]
    too_many = api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids[:1001]})
    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "delivery_ids"), too_many.text
    looked_up = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids[:1000]}))
    assert looked_up["receipts"] == []


@pytest.mark.parametrize(
    ("name", "value", "refused"),
    [
        ("byte_size", 2**63 - 1, None),
        ("record_count", 2**63 - 1, None),
        # A uint64 the ledger would hold: the receipt journal would not, so neither route takes it.
        ("byte_size", 2**63, (422, "VALIDATION_ERROR")),
        ("record_count", 2**64 - 1, (422, "VALIDATION_ERROR")),
        ("byte_size", 2**64, (422, "VALIDATION_ERROR")),
        # An id the ledger could number and never did is the same unknown grant either way.
        ("grant_id", 2**63, (404, "GRANT_NOT_FOUND")),
        ("grant_id", 2**64 - 1, (404, "GRANT_NOT_FOUND")),
        ("grant_id", 2**64, (422, "VALIDATION_ERROR")),
    ],
)
def test_post_deliveriesAndReceipts_numericBounds_oneRuleForBoth_nothingRecordedWhenRefused(
    api_env: ApiEnv, grant: dict[str, Any], name: str, value: int, refused: tuple[int, str] | None
) -> None:
    """A delivery states the same byte size, record count and grant whichever way it is recorded: a value
    one route takes the other takes, a value one refuses the other refuses with the same status and code,
    naming the field, and records nothing."""
    single, receipt = receipt_body(grant, **{name: value}), receipt_body(grant, **{name: value})
    by_route = {
        "deliveries": (api_env.call("POST", "/deliveries", "psb", json=single), name),
        "receipts": (
            api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt]}),
            f"receipts.0.{name}",
        ),
    }
    for route, (response, field) in by_route.items():
        if refused is None:
            assert response.status_code == (201 if route == "deliveries" else 202), (route, response.text)
            continue
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == refused, (route, response.text)
        if refused[0] == 422:
            assert error["field"] == field, (route, error)
    if refused is None:
        recorded = ok(api_env.call("GET", f"/deliveries/{single['delivery_id']}", "psb"))
        assert recorded[name] == value, recorded
        [accepted] = ok(
            api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [receipt["delivery_id"]]})
        )["receipts"]
        assert accepted[name] == value, accepted
        return
    assert api_env.call("GET", f"/deliveries/{single['delivery_id']}", "psb").status_code == 404
    looked_up = ok(
        api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [receipt["delivery_id"]]})
    )
    assert looked_up["receipts"] == [], looked_up


def test_post_receipts_notJsonOrTooLarge_refused(api_env: ApiEnv) -> None:
    headers = {**api_env.headers("psb"), "Content-Type": "application/json"}
    assert api_env.client.post("/receipts", content=b"{", headers=headers).status_code == 422
    huge = b'{"receipts": [' + b" " * (5 * 1024 * 1024) + b"]}"
    assert api_env.client.post("/receipts", content=huge, headers=headers).status_code == 413


@pytest.mark.parametrize(
    ("raw", "charset"),
    [(b'{"receipts": [1' + b"0" * 400 + b"]}", None), (b'{"receipts": [1e400]}', None),
     (b'{"receipts": ["\xff"]}', None), (b'{"receipts": "\\ud800"', None), (b"[" * 1100 + b"]" * 1100, None),
     (b'{"receipts": []}', "latin-1"), (b"{", None), (b'{"receipts": [], "receipts": 1}', None),
     (b'{"receipts": [{"commitment": 1, "commitment": 2}]}', None)],
    ids=["400-digit-number", "1e400", "not-utf-8", "cut", "too-deep", "declared-latin-1", "open-brace",
         "receipts-twice", "a-field-twice"],
)  # fmt: skip
def test_post_receipts_aBadJsonBody_refusedInTheWordsOfEveryRoute(
    api_env: ApiEnv, grant: dict[str, Any], raw: bytes, charset: str | None
) -> None:
    """POST /receipts reads its body with its own parser (on the hot path): what it refuses there, it refuses
    as every other route does (api.limits), with the same code, field and message, and nothing is accepted."""
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    headers = {**api_env.headers("psb"), "Content-Type": content_type}
    here = api_env.client.post("/receipts", content=raw, headers=headers)
    elsewhere = api_env.client.post("/deliveries", content=raw, headers=headers)
    assert elsewhere.status_code == 422 and elsewhere.json()["error"]["field"] == "body", elsewhere.text
    assert (here.status_code, here.json()) == (elsewhere.status_code, elsewhere.json())


def test_post_receipts_aFieldNamedTwiceInAValidReceipt_refusedNamingIt(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    """orjson keeps a repeated name's last value, which here makes a receipt that passes every check: it is
    refused naming the field, as every other route refuses it, and nothing is accepted."""
    receipt = receipt_body(grant)
    raw = json.dumps({"receipts": [receipt]}).replace(
        '"commitment":', f'"commitment": "{b32()}", "commitment":'
    )
    headers = {**api_env.headers("psb"), "Content-Type": "application/json"}
    response = api_env.client.post("/receipts", content=raw.encode(), headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body")
    assert error["message"] == 'the body names "commitment" twice in one object'

    looked_up = ok(
        api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [receipt["delivery_id"]]})
    )
    assert looked_up["receipts"] == []


def test_post_receipts_aBodySentGzipped_refusedNamingItsEncodingAsByEveryRoute(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    receipt = receipt_body(grant)
    raw = gzip.compress(json.dumps({"receipts": [receipt]}).encode())
    headers = {**api_env.headers("psb"), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = api_env.client.post("/receipts", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "body")
    assert "Content-Encoding: gzip" in error["message"], error
    looked_up = ok(
        api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [receipt["delivery_id"]]})
    )
    assert looked_up["receipts"] == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml", "json"]
)
def test_post_receipts_aBodyNotSentAsJson_refusedAsByEveryRoute(
    api_env: ApiEnv, grant: dict[str, Any], content_type: str | None
) -> None:
    """POST /receipts parsed whatever it was sent as JSON, where every other route refuses a body not sent as
    JSON (a form or text is not read as one): the same body is refused here too, and nothing is accepted."""
    body = {"receipts": [receipt_body(grant)]}
    raw = json.dumps(body).encode()
    headers = {**api_env.headers("psb"), **({"Content-Type": content_type} if content_type else {})}
    for path, sent in (("/receipts", body), ("/deliveries", body["receipts"][0])):
        answer = api_env.client.post(path, content=json.dumps(sent).encode(), headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "body", answer.text
    lookup = {"delivery_ids": [body["receipts"][0]["delivery_id"]]}
    assert ok(api_env.call("POST", "/receipts/lookup", "psb", json=lookup))["receipts"] == []
    # As JSON, with a byte order mark (ignored by every route), the same body is accepted.
    json_headers = {**api_env.headers("psb"), "Content-Type": "application/json; charset=utf-8"}
    accepted = api_env.client.post("/receipts", content=b"\xef\xbb\xbf" + raw, headers=json_headers)
    assert accepted.status_code == 202, accepted.text


def test_post_receipts_refusedAsADeliveryWouldBe(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    response = api_env.call("POST", "/receipts", "hrss", json={"receipts": [receipt_body(grant)]})
    assert response.status_code == 403 and response.json()["error"]["code"] == "NOT_A_PARTY"
    revoked = grant_between(api_env, "psb", "hrss")
    ok(api_env.call("POST", f"/grants/{revoked['id']}/revoke", "psb"))
    response = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt_body(revoked)]})
    assert response.status_code == 409 and response.json()["error"]["code"] == "GRANT_REVOKED"
    assert response.json()["error"]["index"] == 0
    # A delivery id of another department's namespace, as the ledger refuses it for a delivery: taken, it
    # would be read as that department's delivery wherever a receipt is looked up by id.
    theirs = receipt_body(grant, delivery_id=delivery_id_for(grant["consumer"]))
    response = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt_body(grant), theirs]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["index"], error["delivery_id"]) == (
        "DELIVERY_ID_NOT_PROVIDERS",
        1,
        theirs["delivery_id"],
    )
    for who, status in (("auditor", 403), (None, 401)):
        assert api_env.call("POST", "/receipts", who, json={"receipts": []}).status_code == status


def test_oneIdNamesOneDelivery_receiptAndLedgerDeliveryRefuseEachOthersIds(
    api_env: ApiEnv, grant: dict[str, Any]
) -> None:
    """A provider cannot use one id for a ledger delivery and for one of its receipts (look-ups by id would
    find two records): each path refuses the other's ids, 409 DELIVERY_ID_IN_USE naming the id, nothing
    recorded."""
    delivery = delivery_between(api_env, "psb", "hrss", grant)
    ok(api_env.call("POST", "/audit/index", "auditor"))  # the receipts' check reads the audit index
    reused = receipt_body(grant, delivery_id=delivery["delivery_id"])
    response = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt_body(grant), reused]})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["index"]) == ("DELIVERY_ID_IN_USE", 1)
    assert error["delivery_id"] == reused["delivery_id"]
    looked_up = {"delivery_ids": [reused["delivery_id"]]}
    assert ok(api_env.call("POST", "/receipts/lookup", "psb", json=looked_up)) == {"receipts": []}

    posted = receipt_body(grant)
    assert api_env.call("POST", "/receipts", "psb", json={"receipts": [posted]}).status_code == 202
    fields = ("delivery_id", "grant_id", "commitment", "byte_size", "record_count")
    as_delivery = {k: posted[k] for k in fields}
    for path, body in (("/deliveries", as_delivery), ("/deliveries/batch", {"deliveries": [as_delivery]})):
        response = api_env.call("POST", path, "psb", json=body)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "DELIVERY_ID_IN_USE"
        assert api_env.call("GET", f"/deliveries/{posted['delivery_id']}", "psb").status_code == 404


def test_post_receipts_resourceNowNotShared_refusedAsADeliveryIs(api_env: ApiEnv) -> None:
    """A resource reclassified not shared stops receipts under its existing grants, as it stops deliveries
    (at the door, and the anchors contract refuses the batch too); shared again, they are accepted."""
    grant = grant_between(api_env, "psb", "hrss")
    rid = ok(api_env.call("GET", f"/agreements/{grant['agreement_id']}", "psb"))["resource_id"]

    def share(kind: str) -> None:
        body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": kind, "sensitivity": 2}
        ok(api_env.call("PUT", f"/resources/{rid}", "psb", json=body))

    share("not_shared")
    body = {"receipts": [receipt_body(grant)]}
    refused = api_env.call("POST", "/receipts", "psb", json=body)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["index"]) == ("RESOURCE_NOT_SHARED", 0)
    share("conditional")
    # The grant's state is cached at the door for a second.
    until(lambda: api_env.call("POST", "/receipts", "psb", json=body).status_code == 202, "shared again")


def test_post_receipts_consumerOrAgreementNotActive_refusedAsADeliveryIs(api_env: ApiEnv) -> None:
    """The door holds a receipt to the grant's consumer being active and its agreement too, as `POST
    /deliveries` holds a delivery: 409 with the code a delivery under the same grant gets, naming the first
    receipt, and nothing of the request journaled (before, only the contract's refusal of the anchor was
    tested, after the receipts had been answered 202)."""
    civil = api_env.departments["CIVIL"]
    to_civil = grant_between(api_env, "psb", "civil")
    under_suspension = grant_between(api_env, "psb", "hrss")
    ok(api_env.call("POST", f"/agreements/{under_suspension['agreement_id']}/suspend", "psb"))
    ok(govern(api_env, {"action": "suspend_department", "department_id": civil}))
    try:
        for grant, code in ((to_civil, "DEPARTMENT_NOT_ACTIVE"), (under_suspension, "AGREEMENT_NOT_ACTIVE")):
            bodies = [receipt_body(grant) for _ in range(2)]
            refused = api_env.call("POST", "/receipts", "psb", json={"receipts": bodies})
            assert refused.status_code == 409, refused.text
            assert (refused.json()["error"]["code"], refused.json()["error"]["index"]) == (code, 0)
            fields = ("delivery_id", "grant_id", "commitment", "byte_size", "record_count")
            as_delivery = api_env.call("POST", "/deliveries", "psb", json={k: bodies[0][k] for k in fields})
            delivery_refused = (as_delivery.status_code, as_delivery.json()["error"]["code"])
            assert delivery_refused == (409, code), as_delivery.text
            looked_up = {"delivery_ids": [b["delivery_id"] for b in bodies]}
            assert ok(api_env.call("POST", "/receipts/lookup", "auditor", json=looked_up)) == {"receipts": []}
    finally:
        ok(govern(api_env, {"action": "reinstate_department", "department_id": civil}))


def test_receipts_ofOthersExchange_answeredAsUnknownIds(api_env: ApiEnv) -> None:
    """CIVIL, party to nothing of the PSB -> HRSS exchange, posting a receipt under its grant or settling its
    batch gets exactly the answer of a grant or batch that does not exist: it cannot probe which grant ids
    and batches other departments use, nor learn who provides under them. A party in the other party's role
    is told NOT_A_PARTY (it knows the exchange)."""
    gid, receipts = anchored_batch(api_env, 1)
    first = receipts[0]["batch"]["first_sequence"]
    unknown = 10**12
    body = receipt_body({"id": gid, "provider": api_env.departments["PSB"]})

    def answer(who: str, path: str, json: Any = None, grant_id: int = gid) -> tuple[int, Any]:
        """Status and body, the grant id in the message written <id>."""
        response = api_env.call("POST", path, who, json=json)
        error = response.json()["error"]
        return response.status_code, {**error, "message": error["message"].replace(str(grant_id), "<id>")}

    theirs = answer("civil", "/receipts", {"receipts": [body]})
    none = answer("civil", "/receipts", {"receipts": [{**body, "grant_id": unknown}]}, unknown)
    assert theirs == none and theirs[0] == 404 and theirs[1]["code"] == "GRANT_NOT_FOUND", theirs
    theirs = answer("civil", f"/receipts/batches/{gid}/{first}/acknowledge")
    none = answer("civil", f"/receipts/batches/{unknown}/{first}/acknowledge", grant_id=unknown)
    assert theirs == none and theirs[0] == 404 and theirs[1]["code"] == "RECEIPT_BATCH_NOT_FOUND", theirs
    # The parties in the other's role.
    assert answer("hrss", "/receipts", {"receipts": [body]})[1]["code"] == "NOT_A_PARTY"
    assert answer("psb", f"/receipts/batches/{gid}/{first}/acknowledge")[1]["code"] == "NOT_A_PARTY"
    # Nothing was journaled for the refused receipt.
    assert ok(
        api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [body["delivery_id"]]})
    ) == {"receipts": []}


def test_receipt_ofAnotherDepartment_answeredAsAnIdNoReceiptHas(api_env: ApiEnv) -> None:
    """CIVIL, party to neither side of a PSB -> HRSS receipt, asking for it by id gets exactly the answer of
    an id no receipt has (status, code, message and fields, the id aside) from every route that takes one —
    ``GET /receipts/{id}``, ``POST /receipts/lookup``, its dispute and its provenance — whether it is final
    or just posted; the parties see it."""
    gid, receipts = anchored_batch(api_env, 1)
    final = receipts[0]["delivery_id"]
    posted = receipt_body({"id": gid, "provider": api_env.departments["PSB"]})
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [posted]}), 202)
    unknown = delivery_id_for(api_env.departments["PSB"])
    routes = (
        ("GET", "/receipts/{id}", None),
        ("POST", "/receipts/{id}/dispute", {"consumer_commitment": b32()}),
        ("GET", "/audit/deliveries/{id}/provenance", None),
    )

    def answer(method: str, path: str, body: Any, delivery_id: str) -> tuple[int, Any]:
        response = api_env.call(method, path.format(id=delivery_id), "civil", json=body)
        return response.status_code, json.loads(response.text.replace(delivery_id, "<id>"))

    for method, path, body in routes:
        none = answer(method, path, body, unknown)
        assert none[0] == 404, (path, none)
        for theirs in (final, posted["delivery_id"]):
            assert answer(method, path, body, theirs) == none, path
    ids = [final, posted["delivery_id"], unknown]
    assert ok(api_env.call("POST", "/receipts/lookup", "civil", json={"delivery_ids": ids})) == {
        "receipts": []
    }
    for party in ("psb", "hrss", "auditor"):
        ok(api_env.call("GET", f"/receipts/{final}", party))
        found = ok(api_env.call("POST", "/receipts/lookup", party, json={"delivery_ids": ids}))["receipts"]
        assert [r["delivery_id"] for r in found] == ids[:2], party


def test_post_receipts_grantExpiredOnTheNodesClock_refusedAsADeliveryIs(api_env: ApiEnv) -> None:
    """The grant expires on the chain's clock. Moved past the expiry while the wall clock is still a minute
    before it, the node would refuse the batch: the receipt is refused now, not answered 202 and lost."""
    client = api_env.setup.client
    agreement = agreement_between(api_env, "psb", "hrss")
    expires = client.next_block_time() + 60
    grant = ok(api_env.call("POST", "/grants", "psb", json={
        "agreement_id": agreement["id"], "expires_at": expires,
    }), 201)["record"]  # fmt: skip
    w3 = client.w3
    w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert client.head_time() > expires > time.time()
    body = receipt_body(grant)
    response = api_env.call("POST", "/receipts", "psb", json={"receipts": [body]})
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "GRANT_EXPIRED" and response.json()["error"]["index"] == 0
    assert ok(
        api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": [body["delivery_id"]]})
    ) == {"receipts": []}
    delivery = {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"],
                "commitment": b32(), "byte_size": 1}  # fmt: skip
    refused = api_env.call("POST", "/deliveries", "psb", json=delivery)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "GRANT_EXPIRED"
    # Both say the expiry as the chain's own refusal does (node.contract_errors): it said Unix seconds.
    said = f"grant {grant['id']} expired at {datetime.fromtimestamp(expires, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert response.json()["error"]["message"] == refused.json()["error"]["message"] == said, response.text


@pytest.mark.parametrize("journaled", ["closed", "final"])
def test_anchorer_restart_anchorsJournaledBatchExactlyOnce(
    api_env: ApiEnv, tmp_path: Path, journaled: str
) -> None:
    """A batch journaled as closed whose transaction never left (the process died), or as final while the
    chain no longer has it (the node lost its last blocks), is anchored at the next start, once; a further
    restart finds it on chain and sends nothing. (A journal of its own: the app's anchorer keeps running on
    the module's database.)"""
    gid = grant_between(api_env, "psb", "hrss")["id"]
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    receipts = some_receipts(gid, 3)
    root = BatchTree([r.leaf_hash() for r in receipts]).root
    with engine.begin() as conn:
        batch_id = conn.execute(
            batches_table.insert().values(
                grant_id=gid,
                provider=1,
                first_sequence=0,
                leaf_count=3,
                root=root,
                state=journaled,
                closed_at=time.time(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    journal_receipts(engine, receipts, batch_id=batch_id)
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    psb = KeyStore.from_settings(api_env.settings).unlock("dept-psb")

    def state() -> str:
        with engine.connect() as conn:
            return str(
                conn.execute(select(batches_table.c.state).where(batches_table.c.id == batch_id)).scalar()
            )

    def restart() -> None:
        anchorer = Anchorer(engine=engine, anchors=anchors, account_of=lambda _d: psb, batch_size=10,
                            batch_age=60)  # fmt: skip
        anchorer.start()
        try:
            assert anchorer.ready.wait(20)
            until(lambda: state() == "final", "the re-sent batch to be mined")
        finally:
            anchorer.stop()

    restart()
    assert anchors.call("nextSequence", gid) == 3
    restart()
    assert anchors.call("nextSequence", gid) == 3
    with engine.connect() as conn:
        row = conn.execute(select(batches_table).where(batches_table.c.id == batch_id)).one()
    assert (row.state, row.first_sequence, row.leaf_count) == ("final", 0, 3) and row.tx_hash
    assert anchors.call("batch", gid, 0)[0] == root
    # Journaled as closed, its transaction unknown (the process died after sending): the next start finds
    # the anchor on chain, and takes its transaction and block from the log (sends nothing).
    mined = anchors.receipt(row.tx_hash)
    assert mined is not None
    with engine.begin() as conn:
        conn.execute(
            batches_table.update()
            .where(batches_table.c.id == batch_id)
            .values(state="closed", tx_hash=None, block_number=None, block_hash=None)
        )
    restart()
    assert anchors.call("nextSequence", gid) == 3
    with engine.connect() as conn:
        again = conn.execute(select(batches_table).where(batches_table.c.id == batch_id)).one()
    engine.dispose()
    assert (again.state, again.tx_hash, again.block_number, again.block_hash) == (
        "final",
        row.tx_hash,
        mined["blockNumber"],
        "0x" + bytes(mined["blockHash"]).hex(),
    )


def test_anchorer_start_receiptsBothInJournalAndInbox_anchoredOnce(api_env: ApiEnv, tmp_path: Path) -> None:
    """Receipts journaled while the anchorer starts reach it twice: in the journal its recovery reads, and in
    its inbox. Each is put in a batch once (twice, the batch counted each leaf twice; its proofs failed)."""
    gid = grant_between(api_env, "psb", "hrss")["id"]
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    receipts = some_receipts(gid, 3)
    journal_receipts(engine, receipts)
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    psb = KeyStore.from_settings(api_env.settings).unlock("dept-psb")
    anchorer = Anchorer(
        engine=engine, anchors=anchors, account_of=lambda _d: psb, batch_size=10, batch_age=0.2
    )
    anchorer.submit([Journaled(gid, 1, list(range(len(receipts))), [r.leaf_hash() for r in receipts])])
    anchorer.start()
    try:
        assert anchorer.ready.wait(20)

        def final() -> list[Any]:
            with engine.connect() as conn:
                rows = conn.execute(select(batches_table)).all()
            return list(rows) if rows and all(r.state == "final" for r in rows) else []

        batches = until(final, "the batch to be mined")
    finally:
        anchorer.stop()
    engine.dispose()
    assert [(b.first_sequence, b.leaf_count) for b in batches] == [(0, 3)]
    assert anchors.call("nextSequence", gid) == 3
    assert anchors.call("batch", gid, 0)[0] == BatchTree([r.leaf_hash() for r in receipts]).root


def test_anchorer_behind_closesOneBatchOfAllPending(api_env: ApiEnv, tmp_path: Path) -> None:
    """An anchorer that finds more than ``batch_size`` receipts pending (it fell behind, or starts with a
    backlog) closes one batch of all of them, not a queue of ``batch_size`` batches each costing an anchor."""
    gid = grant_between(api_env, "psb", "hrss")["id"]
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    receipts = some_receipts(gid, 7)
    journal_receipts(engine, receipts)
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    psb = KeyStore.from_settings(api_env.settings).unlock("dept-psb")
    anchorer = Anchorer(engine=engine, anchors=anchors, account_of=lambda _d: psb, batch_size=2, batch_age=60)
    anchorer.start()
    try:
        until(lambda: anchors.call("nextSequence", gid) == 7, "the backlog to be anchored")
    finally:
        anchorer.stop()
    with engine.connect() as conn:
        batches = conn.execute(select(batches_table.c.first_sequence, batches_table.c.leaf_count)).all()
    engine.dispose()
    assert [tuple(b) for b in batches] == [(0, 7)]
    assert anchors.call("batch", gid, 0)[0] == BatchTree([r.leaf_hash() for r in receipts]).root


def test_runRounds_aFailedRoundIsLoggedAndTheNextComesASecondLater(caplog: pytest.LogCaptureFixture) -> None:
    """The anchorer's two threads (closing batches, following anchors) go round through one loop: a round that
    fails, the node away (a DxlError) or anything else, is logged and the next comes a second later; one that
    succeeds is followed after ``tick``; ``stop`` ends the loop."""
    stop = threading.Event()
    rounds: list[float] = []

    def round_() -> None:
        rounds.append(time.monotonic())
        if len(rounds) == 1:
            raise NodeError("node at http://127.0.0.1:1 is unreachable")
        if len(rounds) == 2:
            raise RuntimeError("not the node's")
        if len(rounds) == 4:
            stop.set()

    with caplog.at_level(logging.WARNING, logger="dxl.receipts"):
        run_rounds(stop, round_, tick=0.01, what="following receipt anchors")
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert len(rounds) == 4 and gaps[0] >= 0.99 and gaps[1] >= 0.99 and gaps[2] < 0.99, gaps
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "following receipt anchors paused: node at http://127.0.0.1:1 is unreachable"),
        (logging.ERROR, "following receipt anchors failed; retrying"),
    ]
    assert caplog.records[1].exc_info is not None  # the traceback of what was not the node's


def test_writeTurn_handedOverInTheOrderAsked() -> None:
    """The receipt journal's writer asks again as soon as it let go; a waiting anchorer must still come
    first (with a plain lock the one that let go nearly always wins again)."""
    import threading

    turn = WriteTurn()
    order: list[str] = []
    asked = threading.Event()

    def take(name: str, ready: threading.Event | None = None) -> None:
        if ready is not None:
            ready.set()
        with turn:
            order.append(name)

    turn.__enter__()
    waiting = threading.Thread(target=take, args=("anchorer", asked))
    waiting.start()
    asked.wait(5)
    deadline = time.monotonic() + 5
    while turn._next < 2 and time.monotonic() < deadline:  # the anchorer has its ticket
        time.sleep(0.001)
    turn.__exit__(None, None, None)
    take("journal")  # asks again at once, after the anchorer
    waiting.join(5)
    assert order == ["anchorer", "journal"]


def test_reader_treeCache_keyedByRoot_aReusedBatchIdIsNotServedAnotherTree(tmp_path: Path) -> None:
    """A batch deleted when reopened may see its id reused by the next one: a tree kept for the first must
    not prove receipts of the second."""
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    reader = ReceiptReader(engine)
    first = BatchTree([os.urandom(32), os.urandom(32)])
    reader.remember(1, first.root, first, [0, 1], BatchSlot(1, 1, 0, 2))
    second = BatchTree([os.urandom(32), os.urandom(32), os.urandom(32)])
    reader.remember(1, second.root, second, [5, 6, 7], BatchSlot(1, 1, 2, 3))
    with engine.connect() as conn:
        assert reader._tree(conn, 1, second.root, None).tree is second
        assert reader._tree(conn, 1, first.root, None).tree is first
    engine.dispose()


def test_reader_batchClosedAgainUnderItsIdAndRoot_theSlotKeptIsStaleNotTheJournal(tmp_path: Path) -> None:
    """A batch reopened (sent behind a refused one) and closed again with the same members has their root,
    may get its id back, and fills the slot the refused batch left: the slot the reader kept for the first
    closing is stale, and the journal's row, not the reader, is right. Read before the anchorer tells the
    reader of the second closing, the receipt reads anchored at its new slot, not corrupt."""
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    receipts = some_receipts(7, 2)
    tree = BatchTree([r.leaf_hash() for r in receipts])
    with engine.begin() as conn:
        conn.execute(
            batches_table.insert().values(
                id=1,
                grant_id=7,
                provider=1,
                first_sequence=3,
                leaf_count=2,
                root=tree.root,
                state="closed",
                closed_at=time.time(),
            )
        )
    journal_receipts(engine, receipts, batch_id=1)
    reader = ReceiptReader(engine)
    # Its first closing, behind the refusal, at the slot after it.
    reader.remember(1, tree.root, tree, [0, 1], BatchSlot(7, 1, 5, 2))
    [view] = reader.lookup([receipts[1].delivery_id], reader=None)
    assert (view.status, view.error) == ("anchored", None), view
    assert view.proof is not None and (view.proof.first_sequence, view.proof.sequence) == (3, 4)
    engine.dispose()


def test_anchorer_sendFails_closedBatchSentOnNextTick(api_env: ApiEnv, tmp_path: Path) -> None:
    """A batch journaled as closed whose transaction could not be sent (node away, key not ready) is sent
    again while the service runs, not only at its next start."""
    gid = grant_between(api_env, "psb", "hrss")["id"]
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    journal_receipts(engine, some_receipts(gid, 4))
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    psb = KeyStore.from_settings(api_env.settings).unlock("dept-psb")
    calls = []

    def flaky(_department: int) -> Any:
        calls.append(_department)
        if len(calls) == 1:
            raise NodeError("node at http://127.0.0.1:1 is unreachable")
        return psb

    anchorer = Anchorer(engine=engine, anchors=anchors, account_of=flaky, batch_size=4, batch_age=60)
    anchorer.start()
    try:
        until(lambda: anchors.call("nextSequence", gid) == 4, "the batch to be sent again and mined")
    finally:
        anchorer.stop()
    engine.dispose()
    assert len(calls) >= 2


def test_anchorer_refusalFailsHalfWay_settledAtTheNextRound(api_env: ApiEnv, tmp_path: Path) -> None:
    """Settling a refused batch needs the node and the database (its anchor voided in the transaction journal,
    its receipts refused or batched again); one of them away half-way, the refusal is settled at the next
    round, not dropped with its batch left anchored for good."""
    grant = grant_between(api_env, "psb", "hrss")
    ok(api_env.call("POST", f"/grants/{grant['id']}/revoke", "psb"))  # after its receipts passed the door
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    journal_receipts(engine, some_receipts(grant["id"], 2))
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    psb = KeyStore.from_settings(api_env.settings).unlock("dept-psb")
    voided: list[str] = []

    def void(_account: Any, pending: Any) -> bool:
        voided.append(pending.tx_hash)
        if len(voided) == 1:
            raise NodeError("node at http://127.0.0.1:1 is unreachable")
        return True

    anchorer = Anchorer(engine=engine, anchors=anchors, account_of=lambda _d: psb, batch_size=2, batch_age=60,
                        void=void)  # fmt: skip
    anchorer.start()
    try:

        def refused() -> Any:
            with engine.connect() as conn:
                row = conn.execute(select(batches_table.c.state, batches_table.c.error)).one_or_none()
            return row if row is not None and row.state == "refused" else None

        assert tuple(until(refused, "the refusal settled")) == ("refused", "GRANT_REVOKED")
    finally:
        anchorer.stop()
    engine.dispose()
    assert len(voided) == 2 and voided[0] == voided[1]  # the same anchor, voided at the second round


def _suspension_proposals(api_env: ApiEnv, department: int) -> tuple[int, int]:
    """Proposals to suspend and to reinstate active ``department``, each executed by one more approval."""

    def propose(action: str) -> int:
        body = {"action": action, "department_id": department}
        return int(
            ok(api_env.call("POST", "/governance/proposals", "governor-1", json=body), 201)["record"]["id"]
        )

    # A reinstatement is proposed only while the department is suspended: it is suspended and reinstated
    # around that proposal.
    ok(govern(api_env, {"action": "suspend_department", "department_id": department}))
    reinstate = propose("reinstate_department")
    ok(govern(api_env, {"action": "reinstate_department", "department_id": department}))
    return propose("suspend_department"), reinstate


def test_anchorer_batchRefused_laterBatchesInFlight_reanchoredOnceInJournalOrder(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """Three anchors of a grant are pipelined into one block; the consumer is suspended in the block before
    and reinstated inside this one, between the first anchor and the two behind it. The first is refused for
    the suspension; the two behind it were sent with first sequences after it and fail out of sequence, though
    the consumer is active again when they run (replayed on the previous block's state, they seem refused for
    the suspension). Their receipts are batched again and anchored once, contiguously from the refused slot,
    in the order they were journaled: the journal (what a restarted service and ``dxl audit report
    --receipts`` read) recomputes the root the chain holds, and every proof verifies. The first batch's
    receipts read refused, with the contract's reason. (Its own journal, as above; the node mines only when
    told while the anchors are in its pool.)"""
    civil = api_env.departments["CIVIL"]
    gid = grant_between(api_env, "psb", "civil")["id"]
    suspend, reinstate = _suspension_proposals(api_env, civil)
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    psb_id = api_env.departments["PSB"]
    waves = [[Receipt(new_delivery_id(psb_id), gid, bytes.fromhex(b32()[2:]), 1, 10, 1) for _ in range(n)]
             for n in (3, 2, 4)]  # fmt: skip
    client = api_env.setup.client
    anchors = anchors_client(client.endpoint, api_env.settings.home)
    psb, governor = api_env.keystore.unlock("dept-psb"), api_env.keystore.unlock("governor-2")
    # Gas given, not estimated: the reinstatement is estimated to revert while the consumer is still active.
    approvals = [
        client.build(str(governor.address), "approve", pid, gas=500_000) for pid in (suspend, reinstate)
    ]
    reader = ReceiptReader(engine)
    anchorer = Anchorer(engine=engine, anchors=anchors, account_of=lambda _d: psb, batch_size=2,
                        batch_age=60, on_closed=reader.remember)  # fmt: skip
    rpc = client.w3.provider
    seq = 0

    def hand_over(wave: list[Receipt]) -> None:
        nonlocal seq
        seqs = list(range(seq, seq + len(wave)))
        seq += len(wave)
        journal_receipts(engine, wave, seqs=seqs, consumer=civil)
        waiting = in_pool(api_env)
        anchorer.submit([Journaled(gid, 1, seqs, [r.leaf_hash() for r in wave])])
        until(lambda: in_pool(api_env) == waiting + 1, "the batch to be closed and sent")

    first = int(anchors.call("nextSequence", gid))
    later = waves[1] + waves[2]
    anchorer.start()
    try:
        assert anchorer.ready.wait(20)
        rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            client.submit(governor, approvals[0])
            rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
            hand_over(waves[0])
            client.submit(governor, approvals[1])
            hand_over(waves[1])
            hand_over(waves[2])
            rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        finally:
            rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert ok(api_env.call("GET", f"/departments/{civil}", "auditor"))["status"] == "active"
        until(lambda: anchors.call("nextSequence", gid) == first + len(later), "the later receipts anchored")
        with engine.connect() as conn:
            until(lambda: conn.execute(select(batches_table.c.state)).scalars().all().count("closed") == 0,
                  "every batch final or refused")  # fmt: skip
    finally:
        anchorer.stop()
    ids = [r.delivery_id for r in waves[0] + later]
    # The service's answers, then a restarted service's: its trees rebuilt from the journal.
    for views in (reader.lookup(ids, reader=None), ReceiptReader(engine).lookup(ids, reader=None)):
        assert [v.receipt for v in views] == waves[0] + later
        refused, anchored = views[: len(waves[0])], views[len(waves[0]) :]
        assert {(v.status, v.error) for v in refused} == {("refused", "DEPARTMENT_NOT_ACTIVE")}
        assert {v.status for v in anchored} == {"final"}
        # Exactly once, in journal order, from the refused slot on.
        assert [v.proof.sequence for v in anchored if v.proof] == list(range(first, first + len(later)))
        for v in anchored:
            assert v.proof is not None
            verify_receipt_proof(v.proof)
            assert anchors.call("receiptIncluded", gid, v.proof.first_sequence, v.receipt.as_tuple(),
                                v.proof.index, list(v.proof.proof)) is True  # fmt: skip
    # The grant's batches on chain are contiguous, and the journal holds each one's receipts in leaf order.
    at, carried = first, []
    while at < first + len(later):
        on_chain = anchors.call("batch", gid, at)
        assert int(on_chain[5]) != 0, f"no batch of grant {gid} anchored at {at}"
        batch = batch_receipts(engine, gid, at)
        assert batch is not None and len(batch) == int(on_chain[1])
        assert BatchTree([r.leaf_hash() for r in batch]).root == bytes(on_chain[0])
        carried += batch
        at += int(on_chain[1])
    engine.dispose()
    assert carried == later


def test_post_receipts_refusedBatchPostedAgain_anchoredOnceWhenTheReasonIsGone(api_env: ApiEnv) -> None:
    """The contract refuses a batch (its consumer suspended in the same block, after the receipts passed the
    door): the receipts read refused, with the reason. Posted again once the consumer is reinstated, they are
    answered 202 as any receipt is, so they must be anchored, once; posted a third time, nothing changes."""
    civil = api_env.departments["CIVIL"]
    grant = grant_between(api_env, "psb", "civil")
    gid = grant["id"]
    suspend, reinstate = _suspension_proposals(api_env, civil)
    client = api_env.setup.client
    governor = api_env.keystore.unlock("governor-2")
    rpc = client.w3.provider

    bodies = {"receipts": [receipt_body(grant) for _ in range(3)]}
    ids = [b["delivery_id"] for b in bodies["receipts"]]

    def statuses() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = ok(
            api_env.call("POST", "/receipts/lookup", "auditor", json={"delivery_ids": ids})
        )["receipts"]
        return found

    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        client.submit(governor, client.build(str(governor.address), "approve", suspend, gas=500_000))
        ok(api_env.call("POST", "/receipts", "psb", json=bodies), 202)  # the consumer is active on the head
        until(lambda: in_pool(api_env) == 2, "the anchor sent behind the suspension")
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    refused = until(lambda: (found := statuses()) and {r["status"] for r in found} == {"refused"} and found,
                    "the batch refused")  # fmt: skip
    # Refused in the block of the suspension, after it: the reason is the contract's, as the code the door
    # answers for the same cause (replayed on the block before, it read as a bare revert).
    assert {r["error"] for r in refused} == {"DEPARTMENT_NOT_ACTIVE"}
    ok(api_env.call("POST", f"/governance/proposals/{reinstate}/approve", "governor-2"))
    # The grant's state is cached at the door for a second.
    until(lambda: api_env.call("POST", "/receipts", "psb", json=bodies).status_code == 202, "posted again")
    anchored = until(lambda: (found := statuses()) and {r["status"] for r in found} == {"final"} and found,
                     "the receipts posted again anchored")  # fmt: skip
    anchors = anchors_client(client.endpoint, api_env.settings.home)
    for r in anchored:
        proof = ReceiptProof.from_json(r["proof"])
        verify_receipt_proof(proof)
        assert anchors.call("receiptIncluded", gid, r["batch"]["first_sequence"], proof.receipt.as_tuple(),
                            proof.index, list(proof.proof)) is True  # fmt: skip
    assert int(anchors.call("nextSequence", gid)) == len(ids)  # once: the refused slot taken by them alone
    assert ok(api_env.call("POST", "/receipts", "psb", json=bodies), 202)["count"] == len(ids)
    assert statuses() == anchored


@pytest.mark.parametrize("node", ["tracing", "without tracing"])
def test_anchor_refusedForACauseInItsOwnBlock_namesTheContractsError(api_env: ApiEnv, node: str) -> None:
    """An anchor mined in the block that suspended its consumer, after the suspension: the reason is the
    contract's error, not a bare revert. From the node's trace of the transaction, or, on a node that serves
    no trace, from the call replayed on the state after its block (on the state before it, it passes)."""
    civil = api_env.departments["CIVIL"]
    gid = grant_between(api_env, "psb", "civil")["id"]
    suspend, reinstate = _suspension_proposals(api_env, civil)
    client = api_env.setup.client
    rpc = client.w3.provider
    anchors = anchors_client(client.endpoint, api_env.settings.home)
    psb, governor = api_env.keystore.unlock("dept-psb"), api_env.keystore.unlock("governor-2")
    leaf = some_receipts(gid, 1)[0].leaf_hash()
    anchor = anchors.build(str(psb.address), "anchorBatch", gid, 0, 1, BatchTree([leaf]).root, gas=ANCHOR_GAS)
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        client.submit(governor, client.build(str(governor.address), "approve", suspend, gas=500_000))
        pending = anchors.submit(psb, anchor)
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    try:
        if node == "without tracing":
            provider = anchors.w3.provider
            provider.make_request = _without_tracing(provider.make_request)  # type: ignore[method-assign]
        with pytest.raises(LedgerRevertError) as refused:
            anchors.wait(pending)
        assert (refused.value.error_name, refused.value.code) == (
            "DepartmentNotActive",
            "DEPARTMENT_NOT_ACTIVE",
        )
        assert refused.value.error_args == {"departmentId": civil}
    finally:
        ok(api_env.call("POST", f"/governance/proposals/{reinstate}/approve", "governor-2"))


def _without_tracing(make_request: Callable[..., Any]) -> Callable[..., Any]:
    """A node's answers as a node without the debug API gives them (geth without ``--http.api debug``)."""

    def answer(method: str, params: Any) -> Any:
        if method.startswith("debug_"):
            missing = {"code": -32601, "message": f"the method {method} does not exist/is not available"}
            return {"jsonrpc": "2.0", "id": 0, "error": missing}
        return make_request(method, params)

    return answer


def test_api_killed_after_202_anchorsEveryReceiptExactlyOnce(api_env: ApiEnv, tmp_path: Path) -> None:
    """kill -9 of the service right after it answered 202, before any batch closed: the next start anchors
    every receipt once. (A service of its own on a copy of the module's deployment and provider key.)"""
    import shutil
    import subprocess
    import sys

    from node.anvil import free_port
    from tests.api.api_helpers import PASSPHRASE

    home = tmp_path / "home"
    home.mkdir()
    # Only the provider's key: the service unlocks (scrypt) every key it finds at each start.
    (home / "keys").mkdir(mode=0o700)
    shutil.copy(api_env.settings.home / "keys" / "dept-psb.json", home / "keys" / "dept-psb.json")
    shutil.copy(api_env.settings.home / "deployment.json", home / "deployment.json")
    grant = grant_between(api_env, "psb", "hrss")
    gid = grant["id"]
    port = free_port()
    env = {**os.environ, "DXL_HOME": str(home), "DXL_RPC_URL": str(api_env.settings.rpc_url),
           "DXL_CHAIN_ID": str(api_env.settings.chain_id), "DXL_KEYSTORE_PASSPHRASE": PASSPHRASE,
           "DXL_AUDIT_FOLLOW_INTERVAL": "0", "DXL_RECEIPT_BATCH_AGE": "3600"}  # fmt: skip
    token = issue_in(home, "PSB")

    def serve() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                *CLI_OPTIONS,
            ],
            env=env,
        )
        # One client for the polls: each new one builds a TLS context (~20 ms of CPU), taken from the start.
        with httpx.Client(timeout=2, verify=tls_context()) as client:
            until(lambda: _healthy(client, port), "the service to start", timeout=60)
        return proc

    bodies = [receipt_body(grant) for _ in range(7)]
    first = serve()
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/receipts", json={"receipts": bodies},
                            headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
        assert answer.status_code == 202, answer.text
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    anchors = anchors_client(api_env.setup.client.endpoint, api_env.settings.home)
    assert anchors.call("nextSequence", gid) == 0  # nothing was anchored before the kill
    env["DXL_RECEIPT_BATCH_AGE"] = "0.1"
    second = serve()
    try:
        until(lambda: anchors.call("nextSequence", gid) == 7, "the journaled receipts to be anchored")
    finally:
        second.terminate()
        second.wait()
    assert anchors.call("nextSequence", gid) == 7


def _healthy(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def issue_in(home: Path, principal: str) -> str:
    from api.auth import issue_token, parse_principal
    from api.db import init_db, session_factory, session_scope

    engine = make_engine(f"sqlite:///{home / 'dxl.sqlite3'}")
    try:
        init_db(engine)
        with session_scope(session_factory(engine)) as session:
            return issue_token(session, principal=parse_principal(principal), name="crash-test")
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------- audit trail


def test_audit_anchoredBatch_inHistoryAndProvenanceOfItsPartiesOnly(api_env: ApiEnv) -> None:
    gid, receipts = anchored_batch(api_env, 3)
    batch = receipts[0]["batch"]
    first = batch["first_sequence"]
    theirs = b32()
    ok(api_env.call("POST", f"/receipts/{receipts[1]['delivery_id']}/dispute", "hrss",
                    json={"consumer_commitment": theirs}))  # fmt: skip
    ok(api_env.call("POST", f"/receipts/batches/{gid}/{first}/acknowledge", "hrss"))
    ok(api_env.call("POST", "/audit/index", "auditor"))

    def batch_events(who: str) -> dict[str, dict[str, Any]]:
        query = {
            "event": ["ReceiptBatchAnchored", "ReceiptBatchAcknowledged", "ReceiptDisputed"],
            "limit": 500,
        }
        items = ok(api_env.call("GET", "/audit/history", who, params=query))["items"]
        return {i["event"]: i for i in items if i["grant_id"] == gid}

    for who in ("psb", "hrss", "auditor"):
        seen = batch_events(who)
        assert sorted(seen) == ["ReceiptBatchAcknowledged", "ReceiptBatchAnchored", "ReceiptDisputed"], who
        anchored = seen["ReceiptBatchAnchored"]
        assert anchored["fields"]["firstSequence"] == first and anchored["fields"]["leafCount"] == 3
        assert anchored["fields"]["root"] == batch["root"]
        assert anchored["location"]["tx_hash"] == batch["tx_hash"]
        assert anchored["location"]["block_number"] == batch["block_number"]
        assert (
            anchored["time"] and anchored["agreement_id"] is not None and anchored["resource_id"] is not None
        )
        assert (anchored["provider_id"], anchored["consumer_id"]) == (
            api_env.departments["PSB"], api_env.departments["HRSS"])  # fmt: skip
        disputed = seen["ReceiptDisputed"]
        assert disputed["delivery_id"] == receipts[1]["delivery_id"]
        assert disputed["fields"]["sequence"] == first + 1
        assert disputed["provider_id"] == api_env.departments["PSB"]
    assert batch_events("civil") == {}

    path = f"/audit/receipt-batches/{gid}/{first}/provenance"
    for who in ("psb", "hrss", "auditor"):
        traced = ok(api_env.call("GET", path, who))
        assert (traced["leaf_count"], traced["root"], traced["status"]) == (3, batch["root"], "acknowledged")
        assert traced["disputed_sequences"] == [first + 1]
        assert (traced["provider"]["code"], traced["consumer"]["code"]) == ("PSB", "HRSS")
        assert traced["batch"]["location"]["tx_hash"] == batch["tx_hash"]
        assert traced["grant"]["grant_id"] == gid and traced["agreement"] is not None
    for who, where in (("civil", path), ("psb", f"/audit/receipt-batches/{gid}/{first + 1}/provenance")):
        hidden = api_env.call("GET", where, who)
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "RECEIPT_BATCH_NOT_FOUND")

    # A receipt's own provenance, by its delivery id, as a single delivery's is asked for.
    by_id = f"/audit/deliveries/{receipts[1]['delivery_id']}/provenance"
    for who in ("psb", "hrss", "auditor"):
        answer = ok(api_env.call("GET", by_id, who))
        assert answer["deliveries"] == [] and len(answer["receipts"]) == 1
        receipt = answer["receipts"][0]
        assert (receipt["delivery_id"], receipt["sequence"]) == (receipts[1]["delivery_id"], first + 1)
        assert receipt["proof"] == receipts[1]["proof"]
        assert receipt["batch_provenance"]["root"] == batch["root"]
        assert receipt["batch_provenance"]["disputed_sequences"] == [first + 1]
    hidden = api_env.call("GET", by_id, "civil")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "DELIVERY_NOT_FOUND")


@pytest.fixture(scope="module")
def receipts_report(api_env: ApiEnv, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """PSB's report, carrying the receipts of its anchored batches: its directory, and the grant and first
    sequence of a batch of 4 receipts in it."""
    gid, receipts = anchored_batch(api_env, 4)
    ok(api_env.call("POST", "/audit/index", "auditor"))
    out = tmp_path_factory.mktemp("receipts-report")
    # Up to a far end: tests sharing the module's node move its clock past the wall clock, the default end.
    made = invoke(["audit", "report", "--department", "PSB", "--receipts", "--out", str(out),
                   "--to", "2200-01-01", "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["receipt_batches"] >= 1
    return out, gid, receipts[0]["batch"]["first_sequence"]


def audit_verify(api_env: ApiEnv, path: Path) -> tuple[int, dict[str, Any]]:
    result = invoke(
        ["audit", "verify", str(path), "--rpc", str(api_env.settings.rpc_url), "--json",
         "--contract", api_env.setup.deployment.address],
    )  # fmt: skip
    return result.exit_code, json.loads(result.stdout)


def test_audit_report_withReceipts_verifiesAgainstTheNode(
    api_env: ApiEnv, receipts_report: tuple[Path, int, int]
) -> None:
    out, gid, first = receipts_report
    document = json.loads((out / "report.json").read_text())
    rows = [r for r in document["rows"] if r["event"] == "ReceiptBatchAnchored" and r["grant_id"] == gid]
    assert [r["fields"]["leafCount"] for r in rows] == [4]
    carried = next(
        b for b in document["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == (gid, first)
    )
    assert len(carried["receipts"]) == 4
    for path in (out / "report.json", out / "report.csv"):
        code, verdict = audit_verify(api_env, path)
        assert (code, verdict["problems"]) == (0, []), path
        assert verdict["receipts_checked"] >= 4


def _omitted(receipts: list[dict[str, Any]]) -> str:
    receipts.pop(2)
    return "RECEIPTS_OMITTED: the report carries 3 receipts, the chain anchored 4: 1 omitted"


def _added(receipts: list[dict[str, Any]]) -> str:
    # Another receipt of the batch's provider: only the count is wrong.
    receipts.append({**receipts[0], "delivery_id": receipts[0]["delivery_id"][:10] + b32()[10:]})
    return "RECEIPTS_ADDED: the report carries 5 receipts, the chain anchored 4: 1 added"


def _edited(receipts: list[dict[str, Any]]) -> str:
    receipts[1]["record_count"] += 1
    return "RECEIPT_ALTERED: the receipts recompute root"


def _swapped(receipts: list[dict[str, Any]]) -> str:
    receipts[0], receipts[3] = receipts[3], receipts[0]
    return "RECEIPT_ALTERED: the receipts recompute root"


@pytest.mark.parametrize("tamper", [_omitted, _added, _edited, _swapped], ids=["omitted", "added", "edited",
                                                                              "reordered"])  # fmt: skip
def test_audit_verify_tamperedReceipts_failNamingTheBatch(
    api_env: ApiEnv, receipts_report: tuple[Path, int, int], tmp_path: Path, tamper: Callable[..., str]
) -> None:
    out, gid, first = receipts_report
    document = json.loads((out / "report.json").read_text())
    carried = next(
        b for b in document["receipt_batches"] if (b["grant_id"], b["first_sequence"]) == (gid, first)
    )
    expected = f"receipts of batch (grant {gid}, first sequence {first}): " + tamper(carried["receipts"])
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    code, verdict = audit_verify(api_env, path)
    assert code == 1
    assert [p for p in verdict["problems"] if p.startswith(expected)] and len(verdict["problems"]) == 1, (
        expected, verdict["problems"])  # fmt: skip


def test_audit_verify_batchLeftOutOfTheReceipts_named(
    api_env: ApiEnv, receipts_report: tuple[Path, int, int], tmp_path: Path
) -> None:
    out, gid, first = receipts_report
    document = json.loads((out / "report.json").read_text())
    document["receipt_batches"] = [
        b for b in document["receipt_batches"] if (b["grant_id"], b["first_sequence"]) != (gid, first)
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    code, verdict = audit_verify(api_env, path)
    assert code == 1 and len(verdict["problems"]) == 1
    assert verdict["problems"][0].startswith(
        f"receipts of batch (grant {gid}, first sequence {first}): RECEIPTS_MISSING: "
    ), verdict["problems"]


def test_audit_databaseIndexedWithoutAnchors_reindexesFromTheirDeployment(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """An audit database made before the anchors were indexed (progress names none) re-reads the chain
    from the anchors' deployment block once, and then matches the chain (`dxl audit check`). Before, held
    to the deployment, it is named as not indexing them: its answers lack their events until it does."""
    from node.audit.check import IndexedContracts, check_store
    from node.audit.events import EventCodec
    from node.audit.indexer import CompanionSource, Indexer, read_progress
    from node.audit.service import ledger_abi
    from node.audit.store import open_store
    from node.deploy import load_deployment
    from node.rpc import JsonRpc

    anchored_batch(api_env, 2)
    deployment = load_deployment(api_env.settings.home)
    assert deployment.receipt_anchors is not None
    source = CompanionSource(deployment.receipt_anchors.address, deployment.receipt_anchors.block_number)
    engine = open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    codec = EventCodec(ledger_abi())

    def indexer(rpc: JsonRpc, anchors: CompanionSource | None) -> Indexer:
        return Indexer(engine, rpc, codec, contract=deployment.address, chain_id=deployment.chain_id,
                       start_block=deployment.block_number, anchors=anchors)  # fmt: skip

    def batches() -> int:
        with engine.connect() as c:
            query = "SELECT count(*) FROM audit_events WHERE event = 'ReceiptBatchAnchored'"
            return int(c.exec_driver_sql(query).scalar_one())

    with JsonRpc(str(api_env.settings.rpc_url)) as rpc:
        head = rpc.block_number()
        indexer(rpc, None).sync(to_block=head)
        before = read_progress(engine)
        assert batches() == 0 and before is not None and before.anchors is None
        trusted = IndexedContracts(deployment.chain_id, deployment.address, deployment.block_number,
                                   source.address)  # fmt: skip
        lacking = check_store(engine, rpc, codec, expected=trusted).differences
        named = f"audit_progress row 1: changed (anchors: database None != chain {source.address!r})"
        assert lacking[0].describe() == named
        assert {d.kind for d in lacking[1:]} == {"missing"}, [d.describe() for d in lacking]
        indexer(rpc, source).sync(to_block=head)
        progress = read_progress(engine)
        assert progress is not None and (progress.anchors, progress.last_block) == (source.address, head)
        assert batches() >= 1
        assert check_store(engine, rpc, codec).ok
        assert check_store(engine, rpc, codec, expected=trusted).ok
    engine.dispose()


def test_dxl_verify_payloadDeliveredAsReceipt_checkedAgainstItsAnchoredBatch(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """`dxl verify --receipt` checks a payload delivered as an anchored receipt as it checks a single
    delivery: signed manifest, payload, receipt fields and parties, against the batch on chain; once the
    consumer settled it, where it did (its dispute, or its batch's acknowledgement)."""
    from tests.cli import dxl
    from verifier.manifest import write_manifest

    gid = grant_between(api_env, "psb", "hrss")["id"]
    text = "id,value\n1,alpha\n2,beta\n3,gamma\n"

    def delivered(name: str) -> tuple[Path, Path, dict[str, Any]]:
        """A payload committed, signed and posted as a receipt: the payload, the saved GET /receipts answer
        once its batch is final, and that answer."""
        payload = tmp_path / name
        payload.write_text(text, encoding="utf-8")
        signed = psb_delivery(api_env, payload, gid)
        did = signed.delivery_id
        write_manifest(tmp_path / f"{name}.manifest.json", signed.manifest)
        ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [signed.body]}), 202)

        def final() -> dict[str, Any] | None:
            found: dict[str, Any] = ok(api_env.call("GET", f"/receipts/{did}", "hrss"))
            return found if found["status"] == "final" else None

        answer = until(final, "the receipt's batch to be mined")
        receipt = tmp_path / f"{name}.receipt.json"
        receipt.write_text(json.dumps(answer))
        return payload, receipt, answer

    payload, receipt, answer = delivered("extract.csv")
    did = answer["delivery_id"]
    chain = ["--rpc", str(api_env.settings.rpc_url), "--contract", api_env.setup.client.address,
             "--anchors", answer["anchors"], "--json"]  # fmt: skip

    code, out, err = dxl("verify", payload, "--receipt", receipt, *chain)
    verdict = json.loads(out)
    assert (code, verdict["status"]) == (0, "MATCH"), out + err
    details = verdict["anchor"]["details"]
    assert (details["status"], details["tx_hash"], details["block_number"], details["settled"]) == (
        "ANCHORED", answer["batch"]["tx_hash"], answer["batch"]["block_number"], None)  # fmt: skip
    assert (details["provider"], details["consumer"], details["sequence"]) == (
        "PSB",
        "HRSS",
        answer["sequence"],
    )

    assert json.loads(dxl("verify", payload, *chain)[1])["status"] == "NOT_RECORDED"  # no single delivery
    forged = json.loads(json.dumps(answer))
    forged["proof"]["receipt"]["byte_size"] += 1
    receipt.write_text(json.dumps(forged))
    # The answer states the receipt beside its proof: edited in the proof alone, the two disagree.
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain)
    assert (code, json.loads(out)["status"], json.loads(out)["code"]) == (2, "ERROR", "PROOF_MALFORMED"), out
    assert "the answer states byte_size " in json.loads(out)["message"], out
    forged["byte_size"] += 1  # in both, as a careful forger would: the proof does not hold on chain
    receipt.write_text(json.dumps(forged))
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain)
    assert (code, json.loads(out)["status"]) == (1, "NOT_RECORDED")
    assert [f["code"] for f in json.loads(out)["findings"]] == ["RECEIPT_MISMATCH"]
    receipt.write_text(json.dumps(answer))
    payload.write_text("id,value\n1,alpha\n2,BETA\n3,gamma\n", encoding="utf-8")
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain)
    assert (code, json.loads(out)["status"], json.loads(out)["differing_leaves"]) == (1, "MISMATCH", [[2, 3]])

    # Disputed: where the consumer disputed it, as for a single delivery (not "not acknowledged yet").
    payload.write_text(text, encoding="utf-8")
    dispute = ok(
        api_env.call("POST", f"/receipts/{did}/dispute", "hrss", json={"consumer_commitment": b32()})
    )
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain)
    details = json.loads(out)["anchor"]["details"]
    assert (code, json.loads(out)["status"], details["status"]) == (1, "ACK_DIFFERS", "DISPUTED")
    settled = dispute["transaction"]
    assert (details["settled"]["tx_hash"], details["settled"]["block_number"]) == (
        settled["hash"], settled["block_number"])  # fmt: skip
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain[:-1])
    assert f"DISPUTED in block {settled['block_number']} (tx {settled['hash']})" in out

    # Acknowledged with its batch: where the batch was acknowledged.
    payload, receipt, answer = delivered("second.csv")
    batch = answer["batch"]
    path = f"/receipts/batches/{batch['grant_id']}/{batch['first_sequence']}/acknowledge"
    settled = ok(api_env.call("POST", path, "hrss"))["transaction"]
    code, out, _ = dxl("verify", payload, "--receipt", receipt, *chain)
    details = json.loads(out)["anchor"]["details"]
    assert (code, json.loads(out)["status"], details["status"]) == (0, "MATCH", "ACKNOWLEDGED")
    assert (details["settled"]["tx_hash"], details["settled"]["block_number"]) == (
        settled["hash"], settled["block_number"])  # fmt: skip


def test_audit_cli_batchProvenance_andAnchorsNotServingTheLedger(
    api_env: ApiEnv, receipts_report: tuple[Path, int, int], tmp_path: Path
) -> None:
    out, gid, first = receipts_report
    traced = invoke(["audit", "provenance", "--batch", f"{gid}/{first}", "--json"])
    assert traced.exit_code == 0, traced.output
    assert (json.loads(traced.stdout)["leaf_count"], json.loads(traced.stdout)["consumer"]["code"]) == (
        4,
        "HRSS",
    )
    for bad, code in (("7", 2), (f"{gid}/{first + 1}", 2)):
        assert invoke(["audit", "provenance", "--batch", bad, "--json"]).exit_code == code
    # A report naming as its anchors a contract that does not serve the ledger is refused as unusable.
    document = json.loads((out / "report.json").read_text())
    document["anchors"] = api_env.setup.client.address
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    result = invoke(["audit", "verify", str(path), "--rpc", str(api_env.settings.rpc_url), "--json"])
    assert result.exit_code == 2 and "does not answer ledger()" in result.stdout, result.stdout


def test_audit_cli_receiptProvenance_fromItsAnswerAndTheChainAlone(
    api_env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dxl audit provenance --receipt ANSWER.json` traces one anchored receipt as `--delivery` traces a
    single delivery, from a home holding only the deployment record and an audit index read from the node: no
    service, no receipt journal. Its proof is held to the batch the chain anchored, never taken as said.
    Before, the command traced batches only, and `--delivery` answered a receipt's id DELIVERY_NOT_FOUND."""
    gid, receipts = anchored_batch(api_env, 3)
    first = receipts[0]["batch"]["first_sequence"]
    disputed = {"consumer_commitment": b32()}
    ok(api_env.call("POST", f"/receipts/{receipts[1]['delivery_id']}/dispute", "hrss", json=disputed))
    home = tmp_path / "auditor-home"
    home.mkdir()
    (home / "deployment.json").write_bytes((api_env.settings.home / "deployment.json").read_bytes())
    monkeypatch.setenv("DXL_HOME", str(home))
    indexed = invoke(["audit", "index", "--json"])
    assert indexed.exit_code == 0, indexed.output
    assert not (home / "dxl.sqlite3").exists()

    def trace(answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        path = tmp_path / "answer.json"
        path.write_text(json.dumps(answer))
        ran = invoke(["audit", "provenance", "--receipt", str(path), "--json"])
        return ran.exit_code, json.loads(ran.stdout)

    code, traced = trace(receipts[1])
    assert code == 0, traced
    assert traced["receipt"]["delivery_id"] == receipts[1]["delivery_id"]
    assert (traced["sequence"], traced["index"], traced["proof_checked"]) == (first + 1, 1, True)
    batch = traced["batch_provenance"]
    assert (batch["grant_id"], batch["first_sequence"], batch["leaf_count"]) == (gid, first, 3)
    assert batch["root"] == receipts[1]["batch"]["root"] and batch["disputed_sequences"] == [first + 1]
    assert (batch["provider"]["code"], batch["consumer"]["code"]) == ("PSB", "HRSS")
    assert batch["batch"]["location"]["tx_hash"] == receipts[1]["batch"]["tx_hash"]
    assert batch["grant"]["grant_id"] == gid and batch["agreement"] is not None
    # Its bare proof traces the same.
    assert trace(receipts[1]["proof"]) == (0, traced)
    # By its id the chain finds single deliveries only: not found, saying how a receipt is traced.
    by_id = invoke(["audit", "provenance", "--delivery", receipts[1]["delivery_id"], "--json"])
    assert (by_id.exit_code, json.loads(by_id.stdout)["error"]) == (2, "DELIVERY_NOT_FOUND"), by_id.output
    assert "traced with --receipt ANSWER.json" in json.loads(by_id.stdout)["message"]

    def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(json.dumps(receipts[1]))
        change(answer)
        return answer

    def other_root(a: dict[str, Any]) -> None:
        a["batch"]["root"] = a["proof"]["batch"]["root"] = b32()

    def other_commitment(a: dict[str, Any]) -> None:
        a["commitment"] = a["proof"]["receipt"]["commitment"] = b32()

    def other_count(a: dict[str, Any]) -> None:
        a["batch"]["leaf_count"] = a["proof"]["batch"]["leaf_count"] = 4

    def other_consumer(a: dict[str, Any]) -> None:
        a["consumer"] = api_env.departments["CIVIL"]

    def other_block(a: dict[str, Any]) -> None:
        a["batch"]["block_number"] += 1

    def said_otherwise(a: dict[str, Any]) -> None:
        a["byte_size"] += 1  # the answer states it otherwise than its proof

    def next_batch(a: dict[str, Any]) -> None:
        a["batch"]["first_sequence"] = a["proof"]["batch"]["first_sequence"] = first + 3
        a["sequence"] = a["proof"]["sequence"] = first + 4

    for change, code_, words in (
        (other_root, "PROOF_MALFORMED", "is not the batch of grant"),
        (other_count, "PROOF_MALFORMED", "is not the batch of grant"),
        (other_commitment, "ROOT_MISMATCH", "does not match expected root"),
        (other_consumer, "PROOF_MALFORMED", "states consumer"),
        (other_block, "PROOF_MALFORMED", "states batch block_number"),
        (said_otherwise, "PROOF_MALFORMED", "states byte_size"),
        (next_batch, "RECEIPT_BATCH_NOT_FOUND", f"{gid}/{first + 3}"),
    ):
        code, refused = trace(edited(change))
        assert (code, refused["error"]) == (2, code_), (change.__name__, refused)
        assert words in refused["message"], (change.__name__, refused)


def test_audit_cli_payloadDeliveredAsReceipt_tracedWithItsAnswer(api_env: ApiEnv, tmp_path: Path) -> None:
    """`dxl audit provenance --file P --manifest M --receipt ANSWER.json` traces a payload delivered as an
    anchored receipt as `--file --manifest` traces one delivered alone: its commitment recomputed, then the
    receipt that records it, proof checked against the anchored batch. Without the answer it is
    COMMITMENT_NOT_FOUND (the chain finds no receipt by its commitment) saying how a receipt is traced;
    another payload under the answer is too; --receipt beside another thing to trace is refused."""
    from verifier.manifest import write_manifest

    grant = grant_between(api_env, "psb", "hrss")
    payload = tmp_path / "extract.csv"
    payload.write_text("id,value\n1,alpha\n2,beta\n", encoding="utf-8")
    signed = psb_delivery(api_env, payload, grant["id"])
    did = signed.delivery_id
    manifest = tmp_path / "extract.csv.manifest.json"
    write_manifest(manifest, signed.manifest)
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [signed.body, receipt_body(grant)]}), 202)

    def final() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(api_env.call("GET", f"/receipts/{did}", "hrss"))
        return found if found["status"] == "final" else None

    answer = until(final, "the receipt's batch to be mined")
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps(answer))
    ok(api_env.call("POST", "/audit/index", "auditor"))

    def trace(*args: str | Path) -> tuple[int, dict[str, Any]]:
        ran = invoke(["audit", "provenance", *map(str, args), "--json"])
        return ran.exit_code, json.loads(ran.stdout)

    code, alone = trace("--file", payload, "--manifest", manifest)
    assert (code, alone["error"]) == (2, "COMMITMENT_NOT_FOUND"), alone
    assert "traced with --receipt ANSWER.json" in alone["message"]
    code, traced = trace("--file", payload, "--manifest", manifest, "--receipt", answer_file)
    assert code == 0, traced
    assert (traced["computed_commitment"], traced["matches_manifest"]) == (answer["commitment"], True)
    assert traced["deliveries"] == [] and len(traced["receipts"]) == 1
    receipt = traced["receipts"][0]
    assert (receipt["receipt"]["delivery_id"], receipt["sequence"]) == (did, answer["sequence"])
    assert receipt["proof_checked"] is True and receipt["batch_provenance"]["root"] == answer["batch"]["root"]
    assert receipt["batch_provenance"]["leaf_count"] == 2

    other = tmp_path / "other.csv"
    other.write_text("id,value\n1,alpha\n2,gamma\n", encoding="utf-8")
    code, refused = trace("--file", other, "--manifest", manifest, "--receipt", answer_file)
    assert (code, refused["error"]) == (2, "COMMITMENT_NOT_FOUND"), refused
    assert f"the receipt records {answer['commitment']}" in refused["message"]
    first = answer["batch"]["first_sequence"]
    for beside in (["--batch", f"{grant['id']}/{first}"], ["--delivery", did], [answer["commitment"]]):
        code, refused = trace(*beside, "--receipt", answer_file)
        assert (code, refused["error"]) == (2, "INVALID_QUERY"), (beside, refused)


_BLOCK_40 = "0x" + "40" * 32


def _mined_in_block_40(engine: Any) -> Receipt:
    """One receipt in a batch mined in block 40 (hash ``_BLOCK_40``)."""
    init_db(engine)
    [receipt] = some_receipts(7, 1)
    with engine.begin() as conn:
        batch_id = conn.execute(
            batches_table.insert().values(
                grant_id=7, provider=1, first_sequence=0, leaf_count=1, root=receipt.leaf_hash(),
                state="final", closed_at=time.time(), tx_hash="0x" + "ab" * 32, block_number=40,
                block_hash=_BLOCK_40,
            )
        ).inserted_primary_key[0]  # fmt: skip
    journal_receipts(engine, [receipt], batch_id=batch_id)
    return receipt


@pytest.mark.parametrize(
    ("confirmations", "head", "expected"),
    [(0, None, "final"), (3, 41, "anchored"), (3, 42, "anchored"), (3, 43, "final"), (3, 50, "final")],
)
def test_receipt_final_onlyAtTheConfirmationDepth(
    tmp_path: Path, confirmations: int, head: int | None, expected: str
) -> None:
    """A batch mined in block 40 reads final once ``confirmations`` blocks are on top of it (block 43 for a
    depth of 3), anchored before; without a depth (anvil, QBFT) at once, without asking the node."""
    engine = make_engine(f"sqlite:///{tmp_path / 'depth.sqlite3'}")
    receipt = _mined_in_block_40(engine)
    reads: list[int] = []

    def height() -> int:
        assert head is not None, "no depth: the node is not asked"
        reads.append(head)
        return head

    def block_hash(number: int) -> str:
        assert (number, head) >= (40, 43), "asked only for a block under the depth"
        return _BLOCK_40

    reader = ReceiptReader(
        engine,
        confirmations=confirmations,
        head=height if confirmations else None,
        block_hash=block_hash if confirmations else None,
    )
    try:
        (view,) = reader.lookup([receipt.delivery_id], reader=None)
        assert view.status == expected
        assert len(reads) == (1 if confirmations else 0)
    finally:
        engine.dispose()


def test_receipt_blockOrphaned_anchoredNamingNoBlock_finalBlockNotAskedAgain(tmp_path: Path) -> None:
    """Under the depth, a batch whose block the chain no longer holds at its height (a reorganisation the
    anchorer has not followed yet), or for which the node does not answer, reads anchored and names no
    block; once its block is the chain's it is final, and a later look-up does not ask for it again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'depth.sqlite3'}")
    receipt = _mined_in_block_40(engine)
    chain: list[str | NodeError | None] = [
        "0x" + "41" * 32, None, NodeError("node at http://127.0.0.1:1 is unreachable"), _BLOCK_40
    ]  # fmt: skip
    asked: list[int] = []

    def block_hash(number: int) -> str | None:
        asked.append(number)
        held = chain.pop(0)
        if isinstance(held, NodeError):
            raise held
        return held

    reader = ReceiptReader(engine, confirmations=3, head=lambda: 50, block_hash=block_hash)
    try:
        for _ in range(3):
            (view,) = reader.lookup([receipt.delivery_id], reader=None)
            assert view.status == "anchored" and view.batch is not None and view.batch["block_number"] is None
        for _ in range(2):
            (view,) = reader.lookup([receipt.delivery_id], reader=None)
            assert view.status == "final" and view.batch is not None and view.batch["block_number"] == 40
        assert asked == [40, 40, 40, 40]
    finally:
        engine.dispose()


def test_receipt_anchorReMinedInAnotherBlock_readsThatBlock_rowMoved(tmp_path: Path) -> None:
    """Under the depth, a batch whose recorded block was orphaned while its anchor was re-mined in another
    block of the chain (a short reorganisation the transaction journal did not see as lost blocks) reads
    final in that block once it is under the depth, and its row names that block from then on; a
    transaction the chain does not hold leaves it anchored, naming no block."""
    engine = make_engine(f"sqlite:///{tmp_path / 'depth.sqlite3'}")
    receipt = _mined_in_block_40(engine)
    block_41 = "0x" + "41" * 32
    chain = {40: "0x" + "4f" * 32, 41: block_41}  # block 40 replaced; the anchor is in block 41 now
    where: list[tuple[int, str] | None] = [None, (41, block_41), (41, block_41)]
    heads = [50, 43, 44]

    reader = ReceiptReader(engine, confirmations=3, head=lambda: heads.pop(0), block_hash=chain.get,
                           tx_block=lambda _tx: where.pop(0))  # fmt: skip
    try:
        (view,) = reader.lookup([receipt.delivery_id], reader=None)  # not on the chain (yet)
        assert view.status == "anchored" and view.batch is not None and view.batch["block_number"] is None
        (view,) = reader.lookup([receipt.delivery_id], reader=None)  # in block 41, two blocks on top
        assert view.status == "anchored" and view.batch is not None and view.batch["block_number"] == 41
        with engine.connect() as conn:
            assert conn.execute(select(batches_table.c.block_number, batches_table.c.block_hash)).one() == (
                41, block_41)  # fmt: skip
        (view,) = reader.lookup([receipt.delivery_id], reader=None)  # three: final, asked no more
        assert view.status == "final" and view.batch is not None and view.batch["block_number"] == 41
        assert where == [(41, block_41)]
    finally:
        engine.dispose()


def test_receipt_nodeUnreachable_notCalledFinalUnderADepth(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'depth.sqlite3'}")
    init_db(engine)

    def unreachable() -> int:
        raise NodeError("node at http://127.0.0.1:1 is unreachable")

    reader = ReceiptReader(engine, confirmations=2, head=unreachable, block_hash=lambda _n: None)
    try:
        assert reader._confirmed_up_to() == -1
        with pytest.raises(ValueError, match="needs the chain's height and blocks"):
            ReceiptReader(engine, confirmations=2, head=unreachable)
    finally:
        engine.dispose()


def test_post_verify_payloadDeliveredAsReceipt_matchesItsAnchoredReceipt(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """POST /verify (the console's verify page) finds a delivery posted as a receipt: the payload against the
    commitment the anchored receipt holds, with where it was anchored; a department not party to it is told
    what it is told of a delivery never recorded."""
    import base64

    gid = grant_between(api_env, "psb", "hrss")["id"]
    text = b"id,value\n1,alpha\n2,beta\n3,gamma\n"
    (tmp_path / "extract.csv").write_bytes(text)
    signed = psb_delivery(api_env, tmp_path / "extract.csv", gid)
    did, manifest = signed.delivery_id, signed.manifest.to_dict()
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [signed.body]}), 202)

    def final() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(api_env.call("GET", f"/receipts/{did}", "hrss"))
        return found if found["status"] == "final" else None

    answer = until(final, "the receipt's batch to be mined")

    def verify(payload: bytes, reader: str) -> dict[str, Any]:
        request = {"manifest": manifest, "payload_base64": base64.b64encode(payload).decode()}
        verdict: dict[str, Any] = ok(api_env.call("POST", "/verify", reader, json=request))
        return verdict

    for reader in ("hrss", "psb", "auditor"):
        verdict = verify(text, reader)
        assert verdict["status"] == "MATCH", verdict
        details = verdict["anchor"]["details"]
        where = (details["receipt_status"], details["status"], details["tx_hash"], details["block_number"])
        assert where == ("final", "ANCHORED", answer["batch"]["tx_hash"], answer["batch"]["block_number"])
        assert (details["grant_id"], details["first_sequence"], details["sequence"]) == (
            gid, answer["batch"]["first_sequence"], answer["sequence"])  # fmt: skip
    tampered = verify(b"id,value\n1,alpha\n2,BETA\n3,gamma\n", "hrss")
    assert (tampered["status"], tampered["differing_leaves"]) == ("MISMATCH", [[2, 3]]), tampered
    outsider = verify(text, "civil")
    assert outsider["status"] == "NOT_RECORDED" and outsider["anchor"]["recorded"] is False, outsider
    # The service's node address is for auditors; a department is told the chain and contract only.
    node = str(api_env.settings.rpc_url)
    assert [f["code"] for f in outsider["findings"]] == ["NOT_RECORDED"]
    assert node not in json.dumps(outsider) and node not in json.dumps(verify(text, "hrss")), outsider
    assert node in verify(text, "auditor")["anchor"]["source"]
