"""POST /verify and ``dxl verify`` on deliveries posted as receipts: found by their inclusion proof whatever
the request carries (payload, commitment, manifest alone), and told apart while accepted but not anchored yet.

The module's service closes a grant's batch at two receipts and otherwise waits an hour: a receipt posted
alone stays pending for the whole module, one posted with a second is anchored at once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.anvil import EmbeddedNode
from tests.api.api_helpers import (
    ApiEnv,
    agreement_between,
    api_home,
    grant_between,
    in_pool,
    make_settings,
    ok,
    psb_delivery,
    receipt_body,
    served,
    until,
)
from tests.cli import dxl
from verifier.manifest import write_manifest

pytestmark = pytest.mark.xdist_group("api-verify-receipts")

TEXT = b"id,value\n1,alpha\n2,beta\n3,gamma\n"


@pytest.fixture(scope="module")
def api_env(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    """The conftest's service, its batches closed at two receipts or after an hour."""
    base = make_settings(api_home(tmp_path_factory, "verify-receipts"), embedded_node)
    settings = base.model_copy(update={"receipt_batch_size": 2, "receipt_batch_age": 3600.0})
    with served(settings, embedded_node) as env:
        yield env


def delivered(
    api_env: ApiEnv, tmp_path: Path, *, anchored: bool, grant: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any], str]:
    """A payload committed, its manifest signed by PSB and written beside it, and posted as a receipt under
    ``grant`` (a new one by default): with a second receipt (its batch closes and is anchored) or alone (it
    stays pending). The payload, the manifest and the delivery id."""
    grant = grant or grant_between(api_env, "psb", "hrss")
    payload = tmp_path / "extract.csv"
    payload.write_bytes(TEXT)
    signed = psb_delivery(api_env, payload, grant["id"])
    write_manifest(tmp_path / "extract.csv.manifest.json", signed.manifest)
    receipts = [signed.body, receipt_body(grant)] if anchored else [signed.body]
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": receipts}), 202)
    return payload, signed.manifest.to_dict(), signed.delivery_id


def verify(api_env: ApiEnv, who: str, manifest: dict[str, Any], **sent: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(api_env.call("POST", "/verify", who, json={"manifest": manifest, **sent}))
    return answer


def codes(verdict: dict[str, Any]) -> list[str]:
    return [f["code"] for f in verdict["findings"]]


def test_post_verify_commitmentOfAnAnchoredReceipt_foundByItsInclusionProof(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """The console's verify page sends the manifest and the root it computed, no payload: a delivery posted as
    a receipt is found by its inclusion proof against its anchored batch, as the payload's check finds it,
    and the verdict says it is a receipt, in which batch, proof checked. It was NOT_RECORDED: only the
    payload's check looked among the receipts."""
    _payload, manifest, did = delivered(api_env, tmp_path, anchored=True)

    def final() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(api_env.call("GET", f"/receipts/{did}", "hrss"))
        return found if found["status"] == "final" else None

    answer = until(final, "the receipt's batch to be mined")
    root = manifest["root"]
    for who in ("hrss", "psb", "auditor"):
        verdict = verify(api_env, who, manifest, commitment=root)
        assert (verdict["status"], verdict["findings"]) == ("MATCH", []), verdict
        details = verdict["anchor"]["details"]
        assert (details["recorded_as"], details["proof_checked"], details["receipt_status"]) == (
            "receipt", True, "final")  # fmt: skip
        batch = answer["batch"]
        assert (details["grant_id"], details["first_sequence"], details["leaf_count"], details["root"]) == (
            batch["grant_id"], batch["first_sequence"], batch["leaf_count"], batch["root"])  # fmt: skip
        assert (details["sequence"], details["tx_hash"], details["block_number"]) == (
            answer["sequence"], batch["tx_hash"], batch["block_number"])  # fmt: skip
        assert verdict["anchor"]["recorded"] is True and verdict["anchor"]["recorded_root"] == root
    alone = verify(api_env, "hrss", manifest)  # the manifest alone, against the receipt
    assert (alone["status"], codes(alone)) == ("MATCH", ["PAYLOAD_NOT_CHECKED"]), alone
    assert alone["anchor"]["details"]["recorded_as"] == "receipt"
    other = "0x" + "ab" * 32
    wrong = verify(api_env, "hrss", manifest, commitment=other)
    assert (wrong["status"], codes(wrong)) == ("MISMATCH", ["ROOT_MISMATCH"]), wrong
    # Another department's receipt is answered as an unknown delivery, as for a single delivery.
    outsider = verify(api_env, "civil", manifest, commitment=root)
    assert (outsider["status"], codes(outsider)) == ("NOT_RECORDED", ["NOT_RECORDED"]), outsider
    assert outsider["anchor"]["recorded"] is False


def test_dxl_verify_receiptWithoutItsAnswer_foundInTheJournalOfThisHome_nodeAloneSaysWhy(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """`dxl verify PAYLOAD` without --receipt, on the machine whose DXL_HOME holds the service's database,
    finds the receipt in its journal and checks it by its proof; an auditor with a node alone (--rpc,
    --contract) cannot, gets NOT_RECORDED, and is told why and what to pass instead."""
    payload, _manifest, did = delivered(api_env, tmp_path, anchored=True)
    until(
        lambda: ok(api_env.call("GET", f"/receipts/{did}", "hrss"))["status"] == "final",
        "the receipt's batch to be mined",
    )
    code, out, err = dxl("verify", payload, "--json")
    verdict = json.loads(out)
    assert (code, verdict["status"]) == (0, "MATCH"), out + err
    assert (verdict["anchor"]["details"]["recorded_as"], verdict["anchor"]["details"]["proof_checked"]) == (
        "receipt", True)  # fmt: skip
    chain = ["--rpc", str(api_env.settings.rpc_url), "--contract", api_env.setup.deployment.address, "--json"]
    code, out, _ = dxl("verify", payload, *chain)
    verdict = json.loads(out)
    assert (code, verdict["status"], codes(verdict)) == (1, "NOT_RECORDED", ["NOT_RECORDED"])
    assert "dxl verify --receipt" in verdict["findings"][0]["message"], verdict


def test_post_verify_receiptAcceptedNotAnchored_PENDING_nodeAloneNotRecordedSayingWhy(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """A receipt answered 202 and still in no batch is PENDING (accepted by the service, not on the ledger
    yet), not NOT_RECORDED as a delivery never made was: for its payload, its commitment and its manifest
    alone, to its parties and auditors. The chain does not hold it: an auditor with a node alone gets
    NOT_RECORDED, and the finding says that an accepted receipt is not on chain until anchored."""
    payload, manifest, did = delivered(api_env, tmp_path, anchored=False)
    assert ok(api_env.call("GET", f"/receipts/{did}", "psb"))["status"] == "pending"
    sent = {"payload_base64": base64.b64encode(TEXT).decode()}
    for who, extra in (("hrss", sent), ("psb", {"commitment": manifest["root"]}), ("auditor", {})):
        verdict = verify(api_env, who, manifest, **extra)
        assert verdict["status"] == "PENDING", verdict
        assert codes(verdict)[-1] == "RECEIPT_PENDING" and "not on the ledger yet" in verdict["findings"][-1][
            "message"], verdict  # fmt: skip
        anchor = verdict["anchor"]
        assert anchor["recorded"] is False and anchor["recorded_root"] == manifest["root"]
        assert (anchor["details"]["recorded_as"], anchor["details"]["receipt_status"]) == (
            "receipt",
            "pending",
        )
    # The payload still decides first: a changed file is a MISMATCH, pending or not.
    changed = verify(api_env, "hrss", manifest, payload_base64=base64.b64encode(TEXT + b"4,delta\n").decode())
    assert changed["status"] == "MISMATCH", changed
    # A department not party to it learns nothing of it.
    outsider = verify(api_env, "civil", manifest, commitment=manifest["root"])
    assert (outsider["status"], codes(outsider)) == ("NOT_RECORDED", ["NOT_RECORDED"]), outsider

    code, out, _ = dxl("verify", payload, "--json")  # this home's service: its journal holds the receipt
    assert (code, json.loads(out)["status"]) == (1, "PENDING"), out
    code, out, _ = dxl("verify", payload)
    assert "not on chain yet: accepted as a receipt, pending" in out, out
    chain = ["--rpc", str(api_env.settings.rpc_url), "--contract", api_env.setup.deployment.address, "--json"]
    code, out, _ = dxl("verify", payload, *chain)  # a node alone: the chain does not hold it
    verdict = json.loads(out)
    assert (code, verdict["status"], codes(verdict)) == (1, "NOT_RECORDED", ["NOT_RECORDED"]), out
    assert "accepted but has not anchored yet is not on chain" in verdict["findings"][0]["message"]


def _flipped(value: Any) -> Any:
    """A different value of the same type: the last byte or hex digit changed, a number one more."""
    if isinstance(value, bytes):
        return value[:-1] + bytes([value[-1] ^ 1])
    return value + 1


@pytest.mark.parametrize(
    "column",
    ["receipt.delivery_id", "receipt.consumer", "receipt.grant_id", "receipt.commitment",
     "receipt.hash_algorithm", "receipt.byte_size", "receipt.record_count", "batch.first_sequence",
     "batch.leaf_count", "batch.root"],
)  # fmt: skip
def test_post_verify_journalEditedUnderAnAnchoredReceipt_neverMatches(
    api_env: ApiEnv, tmp_path: Path, column: str
) -> None:
    """The receipt journal is the service's own database: a receipt's field or its batch's first sequence,
    leaf count or root edited there gives a proof the chain's anchored batch refutes (or a receipt no longer
    found): the verdict is never MATCH. Columns the verdict does not rest on (times, the anchor's transaction,
    which it reads from the chain) are left out."""
    from sqlalchemy import create_engine, select, update

    from api.receipts.journal import batches_table, receipts_table

    _payload, manifest, did = delivered(api_env, tmp_path, anchored=True)
    until(lambda: ok(api_env.call("GET", f"/receipts/{did}", "hrss"))["status"] == "final", "its batch mined")
    assert verify(api_env, "hrss", manifest, commitment=manifest["root"])["status"] == "MATCH"
    table, name = column.split(".")
    engine = create_engine(api_env.settings.effective_database_url)
    try:
        with engine.begin() as c:
            receipt = c.execute(
                select(receipts_table).where(receipts_table.c.delivery_id == bytes.fromhex(did[2:]))
            ).one()
            if table == "receipt":
                edited, key = receipts_table, receipts_table.c.seq == receipt.seq
                row = receipt
            else:
                edited, key = batches_table, batches_table.c.id == receipt.batch_id
                row = c.execute(select(batches_table).where(key)).one()
            c.execute(update(edited).where(key).values({name: _flipped(row._mapping[name])}))
    finally:
        engine.dispose()
    verdict = verify(api_env, "hrss", manifest, commitment=manifest["root"])
    assert verdict["status"] in ("NOT_RECORDED", "PENDING"), verdict


def test_post_verify_receiptWhoseBatchTheContractRefused_NOT_RECORDED_namingTheRefusalAndItsReason(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    """README: a receipt whose batch the contract refused is `NOT_RECORDED` with the finding `RECEIPT_REFUSED`
    and the contract's reason. The grant expires between the door, which takes the receipt, and the block its
    anchor is mined in."""
    agreement = agreement_between(api_env, "psb", "hrss")
    expires = api_env.setup.client.next_block_time() + 30
    body = {"agreement_id": agreement["id"], "expires_at": expires}
    grant = ok(api_env.call("POST", "/grants", "psb", json=body), 201)["record"]
    rpc = api_env.setup.client.w3.provider
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        _payload, manifest, did = delivered(api_env, tmp_path, anchored=True, grant=grant)
        until(lambda: in_pool(api_env) or None, "the batch's anchor sent")
        rpc.make_request("evm_setNextBlockTimestamp", [expires + 1])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]

    def refused() -> dict[str, Any] | None:
        found: dict[str, Any] = ok(api_env.call("GET", f"/receipts/{did}", "psb"))
        return found if found["status"] == "refused" else None

    assert "GRANT_EXPIRED" in until(refused, "the anchor refused")["error"]
    for who in ("psb", "hrss", "auditor"):
        verdict = verify(api_env, who, manifest, commitment=manifest["root"])
        assert verdict["status"] == "NOT_RECORDED" and verdict["anchor"]["recorded"] is False, verdict
        finding = verdict["findings"][-1]
        assert finding["code"] == "RECEIPT_REFUSED" and "GRANT_EXPIRED" in finding["message"], verdict
