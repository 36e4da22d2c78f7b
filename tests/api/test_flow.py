"""The whole exchange through HTTP alone: two departments and an auditor, on a real node."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data

from api.ledger.exchanges import request_public
from node.audit.scorecard import add_working_days
from node.chain import LedgerClient
from node.types import AccessRequest, GovernanceAction, RequestStatus
from tests.api.api_helpers import (
    ApiEnv,
    as_token,
    b32,
    delivery_id_for,
    govern,
    grant_between,
    issue,
    ok,
    pass_time,
    period,
    register,
    request_access,
)
from verifier.text import iso_time

# One deployment per module: keep the module's tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("api-flow")


def test_request_to_acknowledged_and_disputed_delivery(api_env: ApiEnv) -> None:
    env = api_env
    psb, hrss = env.departments["PSB"], env.departments["HRSS"]

    # HRSS catalogues a conditionally shared resource.
    body = {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 3}
    written = ok(env.call("POST", "/resources", "hrss", json=body), 201)
    assert written["transaction"]["hash"].startswith("0x") and written["transaction"]["block_number"] > 0
    resource = written["record"]
    assert resource["owner"] == hrss and resource["share_type"] == "conditional"

    # PSB requests it; HRSS approves.
    valid_from, valid_until = period(api_env)
    req = ok(env.call("POST", "/requests", "psb", json={
        "resource_id": resource["id"], "purpose": "verify insured status for residence permits",
        "scope_hash": b32(), "terms_hash": b32(), "valid_from": valid_from, "valid_until": valid_until,
    }), 201)["record"]  # fmt: skip
    assert (req["consumer"], req["provider"], req["status"]) == (psb, hrss, "pending")
    approved = ok(env.call("POST", f"/requests/{req['id']}/approve", "hrss"))["record"]
    assert approved["status"] == "approved"

    # PSB signs the typed data on its own machine (external signature); HRSS signs in custody.
    signing = ok(env.call("GET", f"/requests/{req['id']}/terms", "psb"))
    assert signing["signed_by"] == []
    psb_key = env.keystore.unlock("dept-psb")
    signable = encode_typed_data(full_message=signing["typed_data"])
    signature = psb_key.sign_message(signable).signature.to_0x_hex()
    assert Account.recover_message(signable, signature=signature) == psb_key.address
    first = ok(env.call("POST", f"/requests/{req['id']}/signatures", "psb", json={"signature": signature}))
    assert first["status"] == "awaiting_counter_signature" and first["signing"]["signed_by"] == ["consumer"]
    concluded = ok(env.call("POST", f"/requests/{req['id']}/signatures", "hrss", json={}))
    assert concluded["status"] == "concluded"
    agreement = concluded["agreement"]
    assert (agreement["provider"], agreement["consumer"], agreement["status"]) == (hrss, psb, "active")
    assert agreement["terms_digest"] == signing["digest"]
    assert ok(env.call("GET", f"/requests/{req['id']}", "auditor"))["status"] == "concluded"

    # HRSS grants access and records two deliveries.
    grant = ok(env.call("POST", "/grants", "hrss", json={
        "agreement_id": agreement["id"], "expires_at": valid_until,
    }), 201)["record"]  # fmt: skip
    assert (grant["consumer"], grant["revoked"]) == (psb, False)
    deliveries = []
    for _ in range(2):
        deliveries.append(ok(env.call("POST", "/deliveries", "hrss", json={
            "delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
            "hash_algorithm": "sm3",
            "byte_size": 4096, "record_count": 12,
        }), 201)["record"])  # fmt: skip
    assert all(d["status"] == "recorded" and d["hash_algorithm"] == "sm3" for d in deliveries)

    # PSB acknowledges the first (its commitment equals the recorded one) and disputes the second.
    good, bad = deliveries
    acked = ok(env.call("POST", f"/deliveries/{good['delivery_id']}/acknowledge", "psb", json={
        "consumer_commitment": good["commitment"],
    }))["record"]  # fmt: skip
    assert acked["status"] == "acknowledged"
    dispute = ok(env.call("POST", f"/deliveries/{bad['delivery_id']}/dispute", "psb", json={
        "consumer_commitment": b32(),
    }))  # fmt: skip
    assert dispute["record"]["status"] == "disputed"

    # The auditor sees all of it; both parties see their exchange.
    # Lists read the audit index: min_block has it hold the dispute's block first.
    just_written = {"min_block": dispute["transaction"]["block_number"]}
    for who in ("auditor", "psb", "hrss"):
        assert ok(env.call("GET", f"/agreements/{agreement['id']}", who))["status"] == "active"
        assert ok(env.call("GET", f"/grants/{grant['id']}", who))["id"] == grant["id"]
        assert ok(env.call("GET", f"/deliveries/{good['delivery_id']}", who))["status"] == "acknowledged"
        listed = {
            d["delivery_id"]: d["status"]
            for d in ok(env.call("GET", "/deliveries", who, params=just_written))
        }
        assert listed[good["delivery_id"]] == "acknowledged" and listed[bad["delivery_id"]] == "disputed"


def test_unconditional_resource_is_approved_on_arrival(api_env: ApiEnv) -> None:
    env = api_env
    resource_id = ok(env.call("POST", "/resources", "psb", json={
        "metadata_hash": b32(), "schema_hash": b32(), "share_type": "unconditional",
    }), 201)["record"]["id"]  # fmt: skip
    valid_from, valid_until = period(api_env)
    req = ok(env.call("POST", "/requests", "civil", json={
        "resource_id": resource_id, "purpose": "address check", "scope_hash": b32(), "terms_hash": b32(),
        "valid_from": valid_from, "valid_until": valid_until,
    }), 201)["record"]  # fmt: skip
    assert req["status"] == "approved"


def test_a_request_says_when_its_decision_is_due(api_env: ApiEnv) -> None:
    """Both clerks read, on the request itself, the deadline the scorecard holds the provider to (10 working
    days by default), over HTTP and in `dxl request show`: before, only an assessor's scorecard knew it."""
    from tests.cli import dxl

    env = api_env
    req = request_access(env, "civil", register(env, "hrss"))
    due = add_working_days(req["requested_at"], env.settings.audit_response_deadline_days)
    assert (req["status"], req["answer_by"], req["overdue"]) == ("pending", due, False)
    for who in ("civil", "hrss", "auditor"):
        got = ok(env.call("GET", f"/requests/{req['id']}", who))
        assert (got["answer_by"], got["overdue"]) == (due, False), who
    listed = ok(env.call("GET", "/requests", "hrss", params=env.indexed(consumer=env.departments["CIVIL"])))
    assert {r["id"]: r["answer_by"] for r in listed}[req["id"]] == due
    code, out, err = dxl(
        "request", "show", str(req["id"]), "--api", env.url, "--token", env.tokens["demo-hrss"]
    )
    assert code == 0 and f"pending; decision due {iso_time(due)}" in out.splitlines()[0], out + err
    decided = ok(env.call("POST", f"/requests/{req['id']}/approve", "hrss"))["record"]
    assert (decided["status"], decided["answer_by"], decided["overdue"]) == ("approved", due, False)


def test_an_approval_on_arrival_the_provider_must_decide_again_is_pending_on_its_scorecard(
    api_env: ApiEnv,
) -> None:
    """A request approved on arrival reads pending once its resource is no longer unconditionally shared and
    waits for the provider's decision: the provider's scorecard counts it pending (and late, past the
    deadline), as the chain and `GET /requests` read it, not approved on arrival in no time. A period that
    closed before the resource changed counts it approved on arrival, as the chain read it then."""
    env = api_env
    pass_time(env, 2)  # the period starts after earlier tests' requests, not in their second
    resource_id = register(env, "hrss", "unconditional")
    req = request_access(env, "civil", resource_id)
    assert req["status"] == "approved"
    pass_time(env, 10)
    changed = ok(env.call("PUT", f"/resources/{resource_id}", "hrss", json={
        "metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 2,
    }))  # fmt: skip
    assert ok(env.call("GET", f"/requests/{req['id']}", "hrss"))["status"] == "pending"
    changed_at = env.setup.client.w3.eth.get_block(changed["transaction"]["block_number"])["timestamp"]
    pass_time(env, 10)
    ok(env.call("POST", "/audit/index", "auditor"))

    def requests(to: int, deadline_days: int = 10) -> dict[str, Any]:
        query = (f"/audit/scorecard?department=HRSS&from={iso_time(req['requested_at'])}&to={iso_time(to)}"
                 f"&deadline_days={deadline_days}")  # fmt: skip
        return dict(ok(env.call("GET", query, "auditor"))["requests"])

    now = env.setup.client.head_time() + 1
    assert {k: requests(now)[k] for k in ("received", "approved", "auto_approved", "pending")} == {
        "received": 1, "approved": 0, "auto_approved": 0, "pending": 1,
    }  # fmt: skip
    assert requests(now, deadline_days=0)["overdue_request_ids"] == [req["id"]]
    before = requests(changed_at - 5, deadline_days=0)
    assert (before["approved"], before["auto_approved"], before["pending"], before["overdue"]) == (1, 1, 0, 0)
    # Decided now, by the provider: a manual decision, late by a deadline of no working day.
    ok(env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    ok(env.call("POST", "/audit/index", "auditor"))
    after = requests(env.setup.client.head_time() + 1, deadline_days=0)
    assert (after["approved"], after["auto_approved"], after["pending"], after["overdue_request_ids"]) == (
        1, 0, 0, [req["id"]],
    )  # fmt: skip


AT, DUE = 1_767_348_000, add_working_days(1_767_348_000, 10)  # Friday 2026-01-02 10:00 UTC


@pytest.mark.parametrize(
    ("status", "decided_at", "now", "overdue"),
    [
        (RequestStatus.PENDING, 0, DUE, False),
        (RequestStatus.PENDING, 0, DUE + 1, True),  # still pending past the deadline
        (RequestStatus.APPROVED, DUE, DUE + 9, False),
        (RequestStatus.REJECTED, DUE + 1, DUE + 9, True),  # decided, late
        (RequestStatus.CONCLUDED, DUE + 1, DUE + 9, True),
        (RequestStatus.WITHDRAWN, 0, DUE + 9, None),  # when it was withdrawn is the audit trail's to say
        (RequestStatus.WITHDRAWN, AT + 5, DUE + 9, False),  # withdrawn after a decision in time
    ],
)
def test_a_request_decided_after_its_deadline_or_still_pending_past_it_reads_overdue(
    status: RequestStatus, decided_at: int, now: int, overdue: bool | None
) -> None:
    record = AccessRequest(
        id=1, resource_id=1, consumer=2, provider=1, status=status, requested_at=AT, decided_at=decided_at,
        reason_code=0, valid_from=AT, valid_until=AT + 86400 * 90, purpose_hash=b"\x01" * 32,
        scope_hash=b"\x02" * 32, terms_hash=b"\x03" * 32,
    )  # fmt: skip
    public = request_public(record, None, deadline_days=10, now=now)
    assert (public.answer_by, public.overdue) == (DUE, overdue)


def test_health_reports_chain_and_contract_without_auth(api_env: ApiEnv) -> None:
    health = ok(api_env.client.get("/healthz"))
    assert health["status"] == "ok" and health["node_reachable"] is True
    assert health["chain_id"] == api_env.settings.chain_id
    assert health["contracts"]["ledger"] == api_env.setup.deployment.address
    assert health["latest_block"] >= api_env.setup.deployment.block_number


def test_reject_with_a_reason(api_env: ApiEnv) -> None:
    req = request_access(api_env, "civil", register(api_env, "hrss"))
    rejected = ok(api_env.call("POST", f"/requests/{req['id']}/reject", "hrss", json={"reason_code": 3}))
    assert (rejected["record"]["status"], rejected["record"]["reason_code"]) == ("rejected", 3)
    response = api_env.call("GET", f"/requests/{req['id']}/terms", "civil")
    assert response.json()["error"]["code"] == "REQUEST_STATUS_MISMATCH"


def test_update_resource(api_env: ApiEnv) -> None:
    resource_id = register(api_env, "hrss")
    new_meta = b32()
    updated = ok(api_env.call("PUT", f"/resources/{resource_id}", "hrss", json={
        "metadata_hash": new_meta, "schema_hash": b32(), "share_type": "not_shared", "sensitivity": 4,
    }))["record"]  # fmt: skip
    assert (updated["metadata_hash"], updated["share_type"], updated["sensitivity"]) == (
        new_meta,
        "not_shared",
        4,
    )
    assert ok(api_env.call("GET", f"/resources/{resource_id}", "psb")) == updated


def test_agreement_lifecycle_gates_deliveries(api_env: ApiEnv) -> None:
    """Suspended: deliveries refused; reinstated: accepted; revoked by governance: refused for good, its
    grants reading revoked."""
    grant = grant_between(api_env, "hrss", "psb")
    agreement_id = grant["agreement_id"]
    ok(api_env.call("POST", f"/agreements/{agreement_id}/suspend", "hrss"))
    refused = api_env.call("POST", "/deliveries", "hrss", json=_delivery_body(grant))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "AGREEMENT_NOT_ACTIVE"
    assert (
        ok(api_env.call("POST", f"/agreements/{agreement_id}/reinstate", "hrss"))["record"]["status"]
        == "active"
    )
    again = api_env.call("POST", f"/agreements/{agreement_id}/reinstate", "hrss")
    assert (again.status_code, again.json()["error"]) == (409, {
        "code": "AGREEMENT_NOT_ACTIVE",
        "message": f"agreement {agreement_id} is active; only suspended agreements are reinstated",
    })  # fmt: skip
    ok(api_env.call("POST", "/deliveries", "hrss", json=_delivery_body(grant)), 201)
    executed = ok(govern(api_env, {"action": "revoke_agreement", "agreement_id": agreement_id}))["record"]
    assert executed["executed"] and executed["action"] == "revoke_agreement"
    assert ok(api_env.call("GET", f"/agreements/{agreement_id}", "psb"))["status"] == "revoked"
    assert ok(api_env.call("GET", f"/grants/{grant['id']}", "psb"))["revoked"] is True
    refused = api_env.call("POST", "/deliveries", "hrss", json=_delivery_body(grant))
    assert refused.json()["error"]["code"] == "GRANT_REVOKED"


def test_parallel_writes_of_one_department(api_env: ApiEnv) -> None:
    """Concurrent requests signed with one key get distinct nonces: every write lands, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(lambda _: register(api_env, "civil"), range(6)))
    assert len(set(ids)) == 6
    owned = {
        r["id"]
        for r in ok(
            api_env.call(
                "GET", "/resources", "psb", params=api_env.indexed(owner=api_env.departments["CIVIL"])
            )
        )
    }
    assert set(ids) <= owned


def _delivery_body(grant: dict[str, Any]) -> dict[str, object]:
    return {"delivery_id": delivery_id_for(grant["provider"]), "grant_id": grant["id"], "commitment": b32(),
            "byte_size": 10}  # fmt: skip


def test_department_that_only_signs_externally(api_env: ApiEnv) -> None:
    """A department whose key this service does not hold sends its own request transaction and signs the terms
    on its own machine; the API keeps its signature and concludes with the provider's custodied key."""
    own_key = Account.create()
    admitted = govern(api_env, {
        "action": "admit_department", "code": "EXTSIGN", "name": "Externally Signing Bureau",
        "signer": own_key.address, "encryption_key": b32(),
    })  # fmt: skip
    assert ok(admitted)["record"]["executed"]
    token = issue(api_env, "EXTSIGN", "extsign")
    resource_id = register(api_env, "hrss")
    valid_from, valid_until = period(api_env)
    sent = api_env.setup.client.transact(
        own_key, "requestAccess", resource_id, "own-machine request", bytes.fromhex(b32()[2:]),
        bytes.fromhex(b32()[2:]), valid_from, valid_until,
    )  # fmt: skip
    request_id = int(sent.event("AccessRequested").args["requestId"])
    ok(api_env.call("POST", f"/requests/{request_id}/approve", "hrss"))
    # The provider signs first (custody); the external department's signature is the second and concludes.
    ok(api_env.call("POST", f"/requests/{request_id}/signatures", "hrss", json={}))
    typed = ok(as_token(api_env, token, "GET", f"/requests/{request_id}/terms"))["typed_data"]
    signature = own_key.sign_typed_data(full_message=typed).signature.to_0x_hex()
    outcome = ok(
        as_token(api_env, token, "POST", f"/requests/{request_id}/signatures", json={"signature": signature})
    )
    assert outcome["status"] == "concluded" and outcome["agreement"]["status"] == "active"
    # It still cannot have the service send its transactions.
    refused = as_token(api_env, token, "POST", "/resources", json={
        "metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional",
    })  # fmt: skip
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NO_CUSTODIED_KEY"


#: The order of secp256k1's group: ``(r, s)`` and ``(r, n - s)`` with the other ``v`` recover the same key.
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _owned_wallet(env: ApiEnv, owner: str) -> str:
    """Deploy a minimal ERC-1271 wallet: ``isValidSignature(hash, sig)`` answers the magic value when the
    65-byte ``sig`` (r, s, v) recovers ``hash`` to ``owner`` (ecrecover precompile), else 0xffffffff."""
    runtime = bytes.fromhex(
        "600435600052"  # mstore(0, hash)
        "60a43560001a602052"  # mstore(0x20, v): the first byte after r and s
        "606435604052"  # mstore(0x40, r)
        "608435606052"  # mstore(0x60, s)
        "602060806080600060015afa50"  # staticcall(gas, ecrecover, 0, 0x80, 0x80, 0x20)
        "608051" + "73" + owner[2:].lower() + "14"  # mload(0x80) == owner
        "605457"  # jumpi(ok)
        "63ffffffff60e01b60005260206000f3"  # return bytes4(0xffffffff)
        "5b631626ba7e60e01b60005260206000f3"  # ok: return the ERC-1271 magic value
    )
    assert runtime[0x54] == 0x5B  # the jump target is the JUMPDEST
    init = bytes.fromhex(f"60{len(runtime):02x}600c60003960{len(runtime):02x}6000f3") + runtime
    deployed = LedgerClient(env.setup.client.endpoint, []).deploy(Account.create(), "0x" + init.hex())
    assert deployed.contract_address is not None
    return str(deployed.contract_address)


def test_contract_signer_department_signs_through_its_wallet(api_env: ApiEnv) -> None:
    """A department admitted with ``contract_signer`` whose signer is an ERC-1271 wallet: the API accepts the
    terms signature the wallet accepts (as the ledger does) and refuses, recording nothing, one it rejects."""
    own_key = Account.create()
    admitted = govern(api_env, {
        "action": "admit_department", "code": "WALLETSIGN", "name": "Wallet-signing Bureau",
        "signer": own_key.address, "encryption_key": b32(), "contract_signer": True,
    })  # fmt: skip
    assert ok(admitted)["record"]["executed"]
    client = api_env.setup.client
    dept_id = next(
        d["id"] for d in ok(api_env.call("GET", "/departments", "auditor")) if d["code"] == "WALLETSIGN"
    )
    resource_id = register(api_env, "hrss")
    valid_from, valid_until = period(api_env)
    sent = client.transact(
        own_key, "requestAccess", resource_id, "wallet-signed request", bytes.fromhex(b32()[2:]),
        bytes.fromhex(b32()[2:]), valid_from, valid_until,
    )  # fmt: skip
    request_id = int(sent.event("AccessRequested").args["requestId"])
    ok(api_env.call("POST", f"/requests/{request_id}/approve", "hrss"))
    # The provider signs first; its signature covers the consumer's key epoch, which the re-key below moves.
    ok(api_env.call("POST", f"/requests/{request_id}/signatures", "hrss", json={}))
    # The department's signer becomes its wallet (a governance re-key), owned by the key it had.
    wallet = _owned_wallet(api_env, own_key.address)
    governors = [api_env.keystore.unlock(name) for name in ("governor-1", "governor-2")]
    rekey = abi_encode(["uint32", "address", "bytes32"], [dept_id, wallet, bytes.fromhex(b32()[2:])])
    proposed = client.transact(governors[0], "propose", GovernanceAction.REKEY_DEPARTMENT, rekey)
    client.transact(governors[1], "approve", proposed.event("ProposalCreated").args["proposalId"])
    assert ok(api_env.call("GET", f"/departments/{dept_id}", "auditor"))["signer"] == wallet

    token = issue(api_env, "WALLETSIGN", "walletsign")
    typed = ok(as_token(api_env, token, "GET", f"/requests/{request_id}/terms"))["typed_data"]
    forged = Account.create().sign_typed_data(full_message=typed).signature.to_0x_hex()
    sign_path = f"/requests/{request_id}/signatures"
    refused = as_token(api_env, token, "POST", sign_path, json={"signature": forged})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "INVALID_SIGNATURE", refused.text
    assert ok(as_token(api_env, token, "GET", f"/requests/{request_id}/terms"))["signed_by"] == ["provider"]

    signature = own_key.sign_typed_data(full_message=typed).signature.to_0x_hex()
    kept = ok(as_token(api_env, token, "POST", sign_path, json={"signature": signature}))
    # The provider's kept signature is over the old epoch: dropped, not sent to a ledger that would refuse it.
    assert kept["status"] == "awaiting_counter_signature" and kept["signing"]["signed_by"] == ["consumer"]
    # Another signature the wallet takes as well (the same r, the other s and v: ecrecover accepts both) is
    # refused while the kept one is valid; the kept one itself, sent again, is a retry and answers as before.
    raw = bytes.fromhex(signature[2:])
    other_s = _SECP256K1_ORDER - int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + other_s.to_bytes(32, "big") + bytes([55 - raw[64]])  # v: 27 <-> 28
    refused = as_token(api_env, token, "POST", sign_path, json={"signature": "0x" + twin.hex()})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ALREADY_SIGNED", refused.text
    assert ok(as_token(api_env, token, "POST", sign_path, json={"signature": signature})) == kept
    outcome = ok(api_env.call("POST", sign_path, "hrss", json={}))
    assert outcome["status"] == "concluded" and outcome["agreement"]["status"] == "active"
    assert outcome["agreement"]["consumer"] == dept_id


def _custodied(env: ApiEnv, code: str) -> Any:
    signer = ok(env.call("GET", f"/departments/{env.departments[code]}", "auditor"))["signer"]
    name = next(n for n in env.keystore.names() if env.keystore.address(n) == signer)
    return env.keystore.unlock(name)


def test_signatures_the_ledger_refuses_are_refused_when_posted_not_kept(api_env: ApiEnv) -> None:
    """A department's own signature of the terms, as the ledger's ECDSA check takes it (OpenZeppelin: ``v``
    27 or 28, ``s`` in the lower half of the order): its high-``s`` twin and its ``v`` of 0 or 1 recover
    the same signer, and a service that kept one would send a pair the ledger refuses, on every counter-
    signature, while the department could not sign again (its kept one read valid: ALREADY_SIGNED)."""
    req = request_access(api_env, "psb", register(api_env, "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    path = f"/requests/{req['id']}/signatures"
    typed = ok(api_env.call("GET", f"/requests/{req['id']}/terms", "psb"))["typed_data"]
    raw = bytes(api_env.keystore.unlock("dept-psb").sign_typed_data(full_message=typed).signature)
    other_s = _SECP256K1_ORDER - int.from_bytes(raw[32:64], "big")
    for refused in (
        raw[:32] + other_s.to_bytes(32, "big") + bytes([55 - raw[64]]),
        raw[:64] + bytes([raw[64] - 27]),
    ):
        answer = api_env.call("POST", path, "psb", json={"signature": "0x" + refused.hex()})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "INVALID_SIGNATURE", (
            answer.text
        )
    kept = ok(api_env.call("POST", path, "psb", json={"signature": "0x" + raw.hex()}))
    assert kept["status"] == "awaiting_counter_signature"
    assert ok(api_env.call("POST", path, "hrss", json={}))["status"] == "concluded"


def test_a_suspended_department_signs_no_terms_and_none_is_kept_for_later(api_env: ApiEnv) -> None:
    """The ledger concludes an agreement only on the signatures of active departments, checked when it is
    concluded. A suspended department's signature, kept, waited for its reinstatement and then concluded the
    agreement with the other party's: terms signed while governance had it suspended (its key or token
    possibly in other hands). It is refused as the ledger would refuse it, and nothing is kept."""
    req = request_access(api_env, "health", register(api_env, "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    path = f"/requests/{req['id']}/signatures"
    health = api_env.departments["HEALTH"]
    typed = ok(api_env.call("GET", f"/requests/{req['id']}/terms", "health"))["typed_data"]
    own = _custodied(api_env, "HEALTH").sign_typed_data(full_message=typed).signature.to_0x_hex()
    ok(govern(api_env, {"action": "suspend_department", "department_id": health}))
    try:
        for body in ({}, {"signature": own}):
            refused = api_env.call("POST", path, "health", json=body)
            code = refused.json().get("error", {}).get("code")
            assert (refused.status_code, code) == (409, "DEPARTMENT_NOT_ACTIVE"), refused.text
        assert ok(api_env.call("GET", f"/requests/{req['id']}/terms", "hrss"))["signed_by"] == []
    finally:
        ok(govern(api_env, {"action": "reinstate_department", "department_id": health}))
    # Reinstated: the provider's signature waits for the consumer's, which signs now and concludes.
    assert ok(api_env.call("POST", path, "hrss", json={}))["status"] == "awaiting_counter_signature"
    assert ok(api_env.call("POST", path, "health", json={"signature": own}))["status"] == "concluded"


def test_the_kept_signature_sent_again_answers_the_outcome_not_already_signed(api_env: ApiEnv) -> None:
    """A department's signature was kept, but its answer was lost or a 503 (the node stopped answering as the
    terms were read back): nothing was journaled, so the claim of its Idempotency-Key was released and the
    retry runs again, with the same signature (custodied signing is deterministic; an external signer posts
    the same bytes). It answers what the signature did — awaiting the counter-signature, then the agreement —
    instead of 409 ALREADY_SIGNED about the very signature it asks for."""
    req = request_access(api_env, "psb", register(api_env, "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    path = f"/requests/{req['id']}/signatures"
    first = ok(api_env.call("POST", path, "psb", json={}))
    assert first["status"] == "awaiting_counter_signature"
    assert ok(api_env.call("POST", path, "psb", json={})) == first
    typed = first["signing"]["typed_data"]
    posted = _custodied(api_env, "PSB").sign_typed_data(full_message=typed).signature.to_0x_hex()
    assert ok(api_env.call("POST", path, "psb", json={"signature": posted})) == first
    concluded = ok(api_env.call("POST", path, "hrss", json={}))
    assert concluded["status"] == "concluded" and concluded["transaction"] is not None
    again = ok(api_env.call("POST", path, "psb", json={}))
    assert again["status"] == "concluded" and again["agreement"] == concluded["agreement"]


def test_signing_after_someone_else_relayed_reports_the_agreement(api_env: ApiEnv) -> None:
    """Anyone may relay both signatures to concludeAgreement. A party signing through the API afterwards gets
    the concluded agreement, not an error, and no signature stays pending."""
    req = request_access(api_env, "psb", register(api_env, "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    kept = ok(api_env.call("POST", f"/requests/{req['id']}/signatures", "hrss", json={}))
    assert kept["status"] == "awaiting_counter_signature"
    typed = ok(api_env.call("GET", f"/requests/{req['id']}/terms", "psb"))["typed_data"]
    sigs = [
        _custodied(api_env, code).sign_typed_data(full_message=typed).signature for code in ("HRSS", "PSB")
    ]
    terms = [bytes.fromhex(v[2:]) if isinstance(v, str) else v for v in typed["message"].values()]
    relayed = api_env.setup.client.transact(Account.create(), "concludeAgreement", terms, *sigs)
    agreement_id = relayed.event("AgreementConcluded").args["agreementId"]

    for who in ("psb", "hrss"):  # the one that had not signed, and the one whose signature was kept
        outcome = ok(api_env.call("POST", f"/requests/{req['id']}/signatures", who, json={}))
        assert outcome["status"] == "concluded" and outcome["agreement"]["id"] == agreement_id
        assert outcome["transaction"] is None and outcome["signing"]["agreement_id"] == agreement_id
    signing = ok(api_env.call("GET", f"/requests/{req['id']}/terms", "hrss"))
    assert signing["signed_by"] == ["provider", "consumer"] and signing["agreement_id"] == agreement_id


def test_withdraw_an_approved_request(api_env: ApiEnv) -> None:
    req = request_access(api_env, "psb", register(api_env, "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/approve", "hrss"))
    ok(api_env.call("POST", f"/requests/{req['id']}/signatures", "hrss", json={}))
    outsider = api_env.call("POST", f"/requests/{req['id']}/withdraw", "civil")
    # A department not party to the request is told what it would be told of one that does not exist.
    assert (outsider.status_code, outsider.json()["error"]["code"]) == (404, "REQUEST_NOT_FOUND")
    withdrawn = ok(api_env.call("POST", f"/requests/{req['id']}/withdraw", "psb"))
    assert withdrawn["record"]["status"] == "withdrawn" and withdrawn["transaction"]["hash"]
    for path in ("withdraw", "signatures"):
        refused = api_env.call("POST", f"/requests/{req['id']}/{path}", "psb", json={})
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "REQUEST_STATUS_MISMATCH")
