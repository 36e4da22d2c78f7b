"""POST /deliveries/batch: many deliveries in one recordDeliveries transaction, all or none, each item checked
as the single route checks it, and every refusal naming the item it is about."""

from __future__ import annotations

from typing import Any

import pytest

from api.models import MAX_BATCH_DELIVERIES
from tests.api.api_helpers import ApiEnv, b32, delivery_id_for, grant_between, ok

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-batch-deliveries")


def _item(grant: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
            "byte_size": 4096, **over}  # fmt: skip


def _sent(env: ApiEnv) -> dict[str, int]:
    """Transactions each custodied key has sent (pending included): unchanged means nothing was sent."""
    w3 = env.setup.client.w3
    return {
        name: w3.eth.get_transaction_count(env.keystore.address(name), "pending")  # type: ignore[arg-type]
        for name in env.keystore.names()
    }


@pytest.fixture(scope="module")
def grant(api_env: ApiEnv) -> dict[str, Any]:
    return grant_between(api_env, "hrss", "psb")


def test_batch_is_recorded_in_one_transaction_in_order(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    other = grant_between(api_env, "hrss", "psb")
    items = [
        _item(grant, record_count=7),
        _item(other, hash_algorithm="sm3"),
        _item(grant, byte_size=0),
    ]
    written = ok(api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items}), 201)
    tx = written["transaction"]
    assert tx["hash"].startswith("0x") and tx["block_number"] > 0
    records = written["records"]
    assert [r["delivery_id"] for r in records] == [i["delivery_id"] for i in items]
    for item, record in zip(items, records, strict=True):
        assert (record["grant_id"], record["commitment"], record["byte_size"]) == (
            item["grant_id"], item["commitment"], item["byte_size"],
        )  # fmt: skip
        assert record["status"] == "recorded" and record["recorded_in_block"] == tx["block_number"]
        assert record["provider"] == api_env.departments["HRSS"]
        assert record["consumer"] == api_env.departments["PSB"]
    assert (records[0]["record_count"], records[1]["hash_algorithm"]) == (7, "sm3")
    for who in ("hrss", "psb", "auditor"):
        assert [ok(api_env.call("GET", f"/deliveries/{r['delivery_id']}", who)) for r in records] == records


def test_largest_batch_is_accepted(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    items = [_item(grant) for _ in range(MAX_BATCH_DELIVERIES)]
    before = _sent(api_env)
    written = ok(api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items}), 201)
    assert len(written["records"]) == MAX_BATCH_DELIVERIES
    assert sum(_sent(api_env).values()) - sum(before.values()) == 1
    last = items[-1]["delivery_id"]
    assert ok(api_env.call("GET", f"/deliveries/{last}", "psb"))["delivery_id"] == last


def test_revoked_grant_refuses_the_whole_batch(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    revoked = grant_between(api_env, "hrss", "psb")
    ok(api_env.call("POST", f"/grants/{revoked['id']}/revoke", "hrss"))
    good, bad = _item(grant), _item(revoked)
    before = _sent(api_env)
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": [good, bad]})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["index"], error["delivery_id"]) == ("GRANT_REVOKED", 1, bad["delivery_id"])
    assert error["message"].startswith("deliveries[1]:")
    assert _sent(api_env) == before
    missing = api_env.call("GET", f"/deliveries/{good['delivery_id']}", "hrss")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "DELIVERY_NOT_FOUND"


def test_contract_revert_names_the_failing_item(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    """A suspended agreement passes the API's own checks; the contract's revert (with the agreement id) is
    mapped to its code and traced back to the first item under that agreement. Nothing is recorded."""
    suspended = grant_between(api_env, "hrss", "psb")
    ok(api_env.call("POST", f"/agreements/{suspended['agreement_id']}/suspend", "hrss"))
    items = [_item(grant), _item(grant), _item(suspended), _item(suspended)]
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["revert"]) == ("AGREEMENT_NOT_ACTIVE", "AgreementStatusMismatch")
    assert (error["index"], error["delivery_id"]) == (2, items[2]["delivery_id"])
    for item in items:
        assert api_env.call("GET", f"/deliveries/{item['delivery_id']}", "hrss").status_code == 404


def test_already_recorded_id_is_refused_with_its_index(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    recorded = _item(grant)
    ok(api_env.call("POST", "/deliveries", "hrss", json=recorded), 201)
    fresh = _item(grant)
    before = _sent(api_env)
    again = {**recorded, "commitment": b32()}
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": [fresh, again]})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["index"]) == ("DUPLICATE_DELIVERY", 1)
    assert _sent(api_env) == before
    assert api_env.call("GET", f"/deliveries/{fresh['delivery_id']}", "hrss").status_code == 404


@pytest.mark.parametrize("upper", [False, True], ids=["same-spelling", "other-case"])
def test_duplicate_ids_within_the_batch_are_422(api_env: ApiEnv, grant: dict[str, Any], upper: bool) -> None:
    first = _item(grant)
    repeat = _item(grant, delivery_id=first["delivery_id"].upper().replace("0X", "0x") if upper else
                   first["delivery_id"])  # fmt: skip
    before = _sent(api_env)
    response = api_env.call(
        "POST", "/deliveries/batch", "hrss", json={"deliveries": [first, _item(grant), repeat]}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["index"], error["field"]) == (
        "VALIDATION_ERROR",
        2,
        "deliveries.2.delivery_id",
    )
    assert "deliveries[0]" in error["message"]
    assert _sent(api_env) == before
    assert api_env.call("GET", f"/deliveries/{first['delivery_id']}", "hrss").status_code == 404


@pytest.mark.parametrize(
    ("who", "status", "code"),
    # CIVIL is party to nothing under the grant: answered as for a grant that does not exist.
    [("psb", 403, "NOT_A_PARTY"), ("civil", 404, "GRANT_NOT_FOUND"), ("auditor", 403, "FORBIDDEN"),
     ("governor-1", 403, "FORBIDDEN")],
)  # fmt: skip
def test_only_the_provider_may_post(
    api_env: ApiEnv, grant: dict[str, Any], who: str, status: int, code: str
) -> None:
    item = _item(grant)
    before = _sent(api_env)
    response = api_env.call("POST", "/deliveries/batch", who, json={"deliveries": [item]})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _sent(api_env) == before
    assert api_env.call("GET", f"/deliveries/{item['delivery_id']}", "hrss").status_code == 404


@pytest.mark.parametrize(
    ("size", "field"),
    [(0, "deliveries"), (MAX_BATCH_DELIVERIES + 1, "deliveries")],
    ids=["empty", "over-the-limit"],
)
def test_batch_size_is_bounded(api_env: ApiEnv, grant: dict[str, Any], size: int, field: str) -> None:
    before = _sent(api_env)
    items = [_item(grant) for _ in range(size)]
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == field
    assert _sent(api_env) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delivery_id": "0x12"}, "deliveries.1.delivery_id"),
        ({"byte_size": -1}, "deliveries.1.byte_size"),
        ({"hash_algorithm": "md5"}, "deliveries.1.hash_algorithm"),
        ({"extra": 1}, "deliveries.1.extra"),
    ],
)
def test_malformed_item_is_named(
    api_env: ApiEnv, grant: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    items = [_item(grant), _item(grant, **change)]
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_zero_commitment_is_refused_before_sending(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    before = _sent(api_env)
    items = [_item(grant), _item(grant, commitment="0x" + "00" * 32)]
    response = api_env.call("POST", "/deliveries/batch", "hrss", json={"deliveries": items})
    assert response.status_code == 422, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["index"]) == ("INVALID_FIELD", 1)
    assert _sent(api_env) == before


def test_idempotency_key_replays_without_recording_twice(api_env: ApiEnv, grant: dict[str, Any]) -> None:
    body = {"deliveries": [_item(grant), _item(grant)]}
    headers = {"Idempotency-Key": "batch-" + b32()}
    before = _sent(api_env)
    first = api_env.call("POST", "/deliveries/batch", "hrss", json=body, headers=headers)
    again = api_env.call("POST", "/deliveries/batch", "hrss", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert sum(_sent(api_env).values()) - sum(before.values()) == 1
