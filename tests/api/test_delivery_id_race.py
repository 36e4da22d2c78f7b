"""One id names one delivery, a single delivery (``POST /deliveries``) or a receipt (``POST /receipts``), also
when the two are posted at the same moment and the audit index has not followed the chain yet.

The module's service never follows the chain into its audit index (``DXL_AUDIT_FOLLOW_INTERVAL=0``): the
index's lag, a few seconds at most in service, is here for good, so what the index does not know yet is
what the check has to find elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.delivery_ids import STALE_AFTER_S, DeliveryIds
from node.anvil import EmbeddedNode
from node.tls import tls_context
from tests.api.api_helpers import (
    ApiEnv,
    api_home,
    b32,
    delivery_id_for,
    grant_between,
    make_settings,
    ok,
    served,
    until,
)

pytestmark = pytest.mark.xdist_group("api-delivery-id-race")


@pytest.fixture(scope="module")
def api_env(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    """The conftest's service, its audit index never following the chain, a grant's batch closing 1.5 s
    after its oldest receipt (time for a delivery to be mined in between)."""
    base = make_settings(api_home(tmp_path_factory, "delivery-id-race"), embedded_node)
    settings = base.model_copy(update={"audit_follow_interval": 0.0, "receipt_batch_age": 1.5})
    with served(settings, embedded_node) as env:
        yield env


def bodies(grant: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A single delivery and a receipt under ``grant`` with one id (and different commitments)."""
    did = delivery_id_for(grant["provider"])
    delivery = {"delivery_id": did, "grant_id": grant["id"], "commitment": b32(), "byte_size": 1024,
                "record_count": 1, "hash_algorithm": "sha256"}  # fmt: skip
    receipt = {"delivery_id": did, "grant_id": grant["id"], "commitment": b32(), "byte_size": 2048,
               "record_count": 4}  # fmt: skip
    return delivery, receipt


def test_receipt_postedJustAfterASingleDelivery_refusedThoughTheIndexHasNotSeenIt(api_env: ApiEnv) -> None:
    """A single delivery mined a moment ago is not in the audit index yet: the receipt taking its id is
    refused all the same (DELIVERY_ID_IN_USE), read from the chain's blocks the index has not followed. It
    was accepted (202) and anchored, and the id named two deliveries."""
    grant = grant_between(api_env, "psb", "hrss")
    delivery, receipt = bodies(grant)
    ok(api_env.call("POST", "/deliveries", "psb", json=delivery), 201)
    refused = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "DELIVERY_ID_IN_USE"), refused.text
    assert refused.json()["error"]["delivery_id"] == delivery["delivery_id"]
    missing = api_env.call("GET", f"/receipts/{delivery['delivery_id']}", "psb")
    assert missing.json()["error"]["code"] == "RECEIPT_NOT_FOUND"


def test_receipt_afterASingleDeliverySentPastTheService_refusedFromTheChainsOwnBlocks(
    api_env: ApiEnv,
) -> None:
    """A single delivery the department sent to the ledger with its own key, not through this service, is
    known to the service only by the chain: once mined (and the service's last read of the chain's blocks,
    at most half a second old, has passed), the receipt taking its id is refused."""
    grant = grant_between(api_env, "psb", "hrss")
    delivery, receipt = bodies(grant)
    psb = api_env.keystore.unlock("dept-psb")
    raw_id, commitment = (bytes.fromhex(delivery[k][2:]) for k in ("delivery_id", "commitment"))
    record = (raw_id, grant["id"], commitment, 1, delivery["byte_size"], delivery["record_count"])
    api_env.setup.client.transact(psb, "recordDelivery", *record)
    time.sleep(0.6)
    refused = api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "DELIVERY_ID_IN_USE"), refused.text


def test_receipt_whoseIdASingleDeliveryTookBeforeItsBatchClosed_refusedVisibly_notAnchored(
    api_env: ApiEnv,
) -> None:
    """A receipt accepted (202) and then, before its batch closes, its id taken by a single delivery sent past
    this service: the batch's closing takes it out, and it reads refused, DELIVERY_ID_IN_USE, never anchored,
    while the receipt posted with it is anchored. It was anchored beside the ledger delivery, silently: the
    anchor sees a batch's root, and the closing checked nothing."""
    grant = grant_between(api_env, "psb", "hrss")
    delivery, receipt = bodies(grant)
    other = {**receipt, "delivery_id": delivery_id_for(grant["provider"])}
    ok(api_env.call("POST", "/receipts", "psb", json={"receipts": [receipt, other]}), 202)
    psb = api_env.keystore.unlock("dept-psb")
    raw_id, commitment = (bytes.fromhex(delivery[k][2:]) for k in ("delivery_id", "commitment"))
    record = (raw_id, grant["id"], commitment, 1, delivery["byte_size"], delivery["record_count"])
    api_env.setup.client.transact(psb, "recordDelivery", *record)

    def settled() -> list[dict[str, Any]] | None:
        ids = [receipt["delivery_id"], other["delivery_id"]]
        found = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": ids}))["receipts"]
        return found if all(f["status"] in ("refused", "final") for f in found) else None

    taken, kept = until(settled, "the batch to close")
    assert (taken["status"], kept["status"]) == ("refused", "final"), (taken, kept)
    assert taken["error"].startswith("DELIVERY_ID_IN_USE"), taken
    assert taken["batch"]["tx_hash"] is None and kept["batch"]["leaf_count"] == 1
    assert int(api_env.setup.client.call("deliveryStatus", raw_id)) != 0


def test_singleDeliveryAndReceipt_sameIdRacing_exactlyOneIsRecorded(api_env: ApiEnv) -> None:
    """The two posted at the same moment, twenty times: each time exactly one is taken, and the other refused
    DELIVERY_ID_IN_USE; the one taken is the only record of the id (the receipt anchored and no ledger
    delivery, or the ledger delivery and no receipt)."""
    grant = grant_between(api_env, "psb", "hrss")
    ledger = api_env.setup.client
    outcomes: list[tuple[str, str]] = []
    receipts: list[str] = []
    for _ in range(20):
        delivery, receipt = bodies(grant)
        answers: dict[str, httpx.Response] = {}
        start = threading.Barrier(2)

        def post(
            kind: str,
            path: str,
            body: Any,
            start: threading.Barrier = start,
            answers: dict[str, Any] = answers,
        ) -> None:
            with httpx.Client(base_url=api_env.url, timeout=120, verify=tls_context()) as client:
                start.wait()
                answers[kind] = client.post(path, json=body, headers=api_env.headers("psb"))

        threads = [
            threading.Thread(target=post, args=("delivery", "/deliveries", delivery)),
            threading.Thread(target=post, args=("receipt", "/receipts", {"receipts": [receipt]})),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        d, r = answers["delivery"], answers["receipt"]
        codes = (d.status_code, r.status_code)
        assert codes in ((201, 409), (409, 202)), (d.text, r.text)
        loser = r if codes == (201, 409) else d
        assert loser.json()["error"]["code"] == "DELIVERY_ID_IN_USE", loser.text
        raw = bytes.fromhex(delivery["delivery_id"][2:])
        on_ledger = int(ledger.call("deliveryStatus", raw)) != 0
        assert on_ledger == (codes == (201, 409))
        if codes == (409, 202):
            receipts.append(delivery["delivery_id"])
        outcomes.append(("delivery" if on_ledger else "receipt", delivery["delivery_id"]))

    def anchored() -> bool:
        found = ok(api_env.call("POST", "/receipts/lookup", "psb", json={"delivery_ids": receipts}))[
            "receipts"
        ]
        return len(found) == len(receipts) and all(f["status"] == "final" for f in found)

    until(anchored, "the receipts taken to be anchored")
    for kind, did in outcomes:
        found = api_env.call("GET", f"/receipts/{did}", "psb")
        assert (found.status_code == 200) == (kind == "receipt"), (kind, found.text)


def test_batchClosing_aSingleDeliveryOfThisServiceInFlightOrJustRefused_takesNothing(api_env: ApiEnv) -> None:
    """A batch closing asks which of its receipts' ids a single delivery took since they were journaled: one
    of this service's own, racing a journaled receipt, loses at the receipt journal (it holds its ids before
    it reads the journal), so neither while it is in flight nor just after its refusal does it take the id.
    Counted, the receipt that won (202) was refused at its batch's closing, never anchored: the race test
    above caught it under load. A delivery on the chain (sent past this service) is still counted."""
    ids = DeliveryIds(api_env.setup.client, indexed=lambda _: set(), indexed_up_to=lambda: None)
    try:
        raced = bytes.fromhex(delivery_id_for(1)[2:])
        with ids.delivering([raced]):
            assert ids.taken([raced]) == {raced}  # a receipt posted now is refused at the door
            lately = ids.taken_lately()
            assert lately is None or lately([raced]) == set()
        lately = ids.taken_lately()  # refused, settling
        assert lately is None or lately([raced]) == set()
        grant = grant_between(api_env, "psb", "hrss")
        delivery, _ = bodies(grant)
        ok(api_env.call("POST", "/deliveries", "psb", json=delivery), 201)
        mined = bytes.fromhex(delivery["delivery_id"][2:])
        time.sleep(STALE_AFTER_S + 0.1)  # a delivery past this instance is seen once its last read is stale
        lately = ids.taken_lately()
        assert lately is not None and lately([mined, raced]) == {mined}
    finally:
        ids.close()
