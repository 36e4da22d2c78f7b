"""Sampling inspections and demands with the chain moving under them: each answer is read at one block and
names it (a presentation's verdict, ``GET /inspections/{id}``, ``GET /demands/{id}``), and a draw races the
seed block and other draws without a second seed, a 500 or a trace of a refused one.

The service's node is reached through a proxy that mines a write right after a chosen read of a request, so
that it lands between that request's reads (the hook fires once, on the first read of the kind set).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.anvil import EmbeddedNode
from node.chain import LedgerClient
from node.compiler import load_artifact
from node.deploy import load_deployment
from node.tls import tls_context
from node.types import DEMAND_NOTICE_S, MIN_PRESENT_WITHIN_S, new_delivery_id
from tests.api.api_helpers import (
    ApiEnv,
    ServerThread,
    api_home,
    b32,
    closed_period,
    concluded,
    govern,
    grant_between,
    in_pool,
    make_settings,
    mine,
    no_database,
    ok,
    own_period,
    register,
    served,
    until,
)
from tests.rpc_proxy import RpcProxy
from verifier.catalog import canonical_document
from verifier.commitment import commit_payload, new_salt
from verifier.leaves import Chunking, PayloadFormat
from verifier.manifest import build_manifest, sign_manifest
from verifier.sampling import receipt_slot

pytestmark = pytest.mark.xdist_group("api-practice-races")

#: The deployment's evaluation period: its inspections cover whole periods of the tests' own deliveries, over,
#: and a day passes on the shared node where 30 days could not (``api_helpers.own_period``).
EVALUATION_PERIOD = 86400


@pytest.fixture(scope="module")
def proxied(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiEnv, RpcProxy]]:
    """A service on the module's node through a proxy, with no background reader of the node (no follower,
    chain watch or drawer: the proxy's hook must fire on a read of the request under test)."""
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy:
        home = api_home(tmp_path_factory, "practice-races")
        base = make_settings(home, embedded_node, evaluation_period=EVALUATION_PERIOD)
        settings = base.model_copy(
            update={"rpc_url": proxy.url, "audit_follow_interval": 0, "chain_watch_interval": 0}
        )
        with served(settings, embedded_node) as env:
            yield env, proxy


def _chain_now(env: ApiEnv) -> int:
    return int(env.setup.client.w3.eth.get_block("latest")["timestamp"])


def _head(env: ApiEnv) -> int:
    return int(env.setup.client.w3.eth.block_number)


def _rpc(env: ApiEnv, method: str, *params: Any) -> Any:
    return env.setup.client.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def _delivered(env: ApiEnv, tmp: Path, grant: dict[str, Any], n: int) -> tuple[str, str, dict[str, Any], str]:
    """A delivery of a real payload by HRSS: its id, payload (base64), provider-signed manifest and root."""
    payload = tmp / f"p{n}.csv"
    payload.write_bytes(f"id,name\n{n},王五\n".encode())
    c = commit_payload(payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True)
    did = new_delivery_id(grant["provider"])
    manifest = sign_manifest(build_manifest(c, delivery_id=did, grant_id=grant["id"]),
                             env.keystore.unlock("dept-hrss")).to_dict()  # fmt: skip
    body = {"delivery_id": "0x" + did.hex(), "grant_id": grant["id"], "commitment": "0x" + c.root.hex(),
            "byte_size": c.byte_size, "record_count": c.record_count}  # fmt: skip
    ok(env.call("POST", "/deliveries", "hrss", json=body), 201)
    return "0x" + did.hex(), base64.b64encode(payload.read_bytes()).decode(), manifest, "0x" + c.root.hex()


def _inspected(env: ApiEnv, *, seed_delay: int = 2) -> dict[str, Any]:
    """An inspection opened of the last closed evaluation period, the seed block to come."""
    period_from, period_to = closed_period(env)
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1,
            "seed_delay_blocks": seed_delay, "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    record: dict[str, Any] = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]
    return record


def _inspection_of_one(env: ApiEnv, tmp: Path) -> tuple[int, tuple[Any, ...]]:
    """A drawn inspection whose period holds one real delivery of HRSS to PSB (its sample), and that
    delivery."""
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):  # the period holds this delivery alone
        delivery = _delivered(env, tmp, grant, _head(env))
    body = {"period_from": period_from, "period_to": period_to, "sample_size": 1, "seed_delay_blocks": 2,
            "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=body), 201)["record"]["id"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    assert [s["delivery_id"] for s in drawn["sample"]] == [delivery[0]], drawn
    return inspection, delivery


def _claims_left(env: ApiEnv) -> list[Any]:
    """Idempotency claims without a kept answer, and journaled transactions not known mined."""
    with sqlite3.connect(env.settings.home / "dxl.sqlite3") as conn:
        claims = conn.execute("SELECT key FROM api_idempotency WHERE status_code IS NULL").fetchall()
        unsettled = conn.execute("SELECT tx_hash FROM api_tx_journal WHERE status = 'sent'").fetchall()
    return claims + unsettled


def _journaled(env: ApiEnv) -> int:
    with sqlite3.connect(env.settings.home / "dxl.sqlite3") as conn:
        return int(conn.execute("SELECT count(*) FROM api_tx_journal").fetchone()[0])


def _practice(env: ApiEnv) -> tuple[LedgerClient, int]:
    """The practice contract (a client of the node itself, not through the proxy) and its deployment block."""
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    client = LedgerClient(env.setup.client.endpoint, load_artifact("SharingPractice").abi)
    return client.at(deployment.sharing_practice.address), deployment.sharing_practice.block_number


def _draw_logs(env: ApiEnv, inspection: int) -> list[tuple[Any, int]]:
    practice, deployed = _practice(env)
    return list(practice.get_logs("InspectionDrawn", inspection.to_bytes(32, "big"), from_block=deployed))


# --- one block per answer --------------------------------------------------------------------------------


def test_a_presentation_is_judged_at_the_head_it_read_and_its_outcome_commits_to_that_block(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """The consumer acknowledges the sampled delivery in the block after the head the presentation read: the
    verdict is the delivery RECORDED at the block it names (read unpinned, it named no block and answered the
    acknowledgement of the next one). The verdict kept names that block, and the outcome's evidence hash on
    chain is the hash of that verdict: the auditor can read the chain again where it was judged."""
    env, proxy = proxied
    inspection, (did, payload, manifest, root) = _inspection_of_one(env, tmp_path)
    acknowledged: list[dict[str, Any]] = []

    def acknowledge() -> None:
        answer = env.call("POST", f"/deliveries/{did}/acknowledge", "psb", json={"consumer_commitment": root})
        acknowledged.append(ok(answer)["transaction"])

    proxy.after_head = acknowledge
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    presented = ok(env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=body))
    verdict = presented["verdict"]
    assert acknowledged and acknowledged[0]["block_number"] == verdict["block"] + 1, (acknowledged, verdict)
    details = verdict["anchor"]["details"]
    assert (verdict["status"], details["status"], verdict["anchor"]["acknowledged_root"]) == (
        "MATCH", "RECORDED", None,
    ), verdict  # fmt: skip
    # Recorded as passed, with the hash of the verdict kept (block and all) as its evidence.
    outcome = ok(
        env.call("POST", f"/inspections/{inspection}/outcomes", "auditor", json={"delivery_id": did})
    )
    sampled = outcome["record"]["sample"][0]
    assert (sampled["outcome"], sampled["outcome_as_checked"]) == ("passed", True), sampled
    practice, deployed = _practice(env)
    (event, _block), = practice.get_logs("InspectionOutcomeRecorded", inspection.to_bytes(32, "big"),
                                         from_block=deployed)  # fmt: skip
    assert bytes(event.args["evidenceHash"]) == hashlib.sha256(canonical_document(verdict)).digest(), verdict


def test_get_inspection_reads_its_outcomes_and_clock_at_one_block_and_names_it(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """An outcome is mined right after the read of the inspection's outcomes, in a block past the presentation
    deadline while the head read was before it. Read at one block, the sampled delivery is neither overdue nor
    recorded there; read apart, it was overdue with no outcome, which it was at no block (the deadline passed
    only in the block that recorded its outcome)."""
    env, proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    assert (
        ok(env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=body))["verdict"][
            "status"
        ]
        == "MATCH"
    )
    path = f"/inspections/{inspection}"
    present_by = ok(env.call("GET", path, "auditor"))["present_by"]
    assert _chain_now(env) <= present_by
    recorded: list[dict[str, Any]] = []

    def record() -> None:
        answer = env.call("POST", f"{path}/outcomes", "auditor", json={"delivery_id": did})
        recorded.append(ok(answer)["transaction"])

    _rpc(env, "evm_setNextBlockTimestamp", present_by + 1)  # the outcome's block is past the deadline
    with proxy.hooked_after_head(record, methods=("eth_getLogs",)):
        read = env.call("GET", path, "auditor")
    shown = ok(read)
    block = int(read.headers["X-Chain-Block"])
    assert recorded and recorded[0]["block_number"] == block + 1, (recorded, block)
    sampled = shown["sample"][0]
    assert (sampled["outcome"], sampled["overdue"], sampled["presented"]) == (None, False, "MATCH"), shown
    again = env.call("GET", path, "hrss")
    assert int(again.headers["X-Chain-Block"]) >= block + 1
    assert (ok(again)["sample"][0]["outcome"], ok(again)["sample"][0]["overdue"]) == ("passed", False)


def test_get_inspection_shows_a_presentation_kept_after_its_block_beside_no_outcome_and_not_overdue(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """A presentation is judged and kept right after GET /inspections/{id} read its head, at a later block:
    the answer shows it (the presentations are the service's as it holds them once the block is read), and
    beside the chain at ``X-Chain-Block`` it says nothing that block contradicts: no outcome (one recorded
    there closes presentations), not overdue (one taken after the block was in time, so the block's time was
    too), and the verdict names its own, later block."""
    env, proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    path = f"/inspections/{inspection}"
    presented: list[dict[str, Any]] = []

    def present() -> None:
        mine(env)  # the presentation's head is past the read's
        body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
        presented.append(ok(env.call("POST", f"{path}/presentations", "hrss", json=body))["verdict"])

    with proxy.hooked_after_head(present):
        read = env.call("GET", path, "auditor")
    block = int(read.headers["X-Chain-Block"])
    assert presented and presented[0]["block"] > block, (presented, block)
    sampled = ok(read)["sample"][0]
    shown = (sampled["presented"], sampled["outcome"], sampled["outcome_as_checked"], sampled["overdue"])
    assert shown == ("MATCH", None, None, False), sampled


def test_get_demand_reads_the_demand_and_the_clock_at_one_block_and_names_it(
    proxied: tuple[ApiEnv, RpcProxy],
) -> None:
    """The addressee declines right after the demand's view is read, in a block past the due date while the
    head read was before it. Read at one block the demand is open and not overdue there; read apart, it was
    open and overdue, which it was at no block (it was answered in the block that passed the due date)."""
    env, proxy = proxied
    document = {"title": "婚姻登记信息", "purpose": "住房保障资格审核", "legal_basis": "《住房保障条例》"}
    due_by = max(_chain_now(env), env.setup.client.next_block_time()) + DEMAND_NOTICE_S + 3600
    body = {"document": document, "addressee": "CIVIL", "due_by": due_by}
    demand = ok(env.call("POST", "/demands", "psb", json=body), 201)["record"]["id"]
    path = f"/demands/{demand}"
    assert ok(env.call("GET", path, "auditor"))["overdue"] is False
    answered: list[dict[str, Any]] = []

    def decline() -> None:
        answer = env.call(
            "POST", f"{path}/answer", "civil", json={"answer": "declined", "decline_reason": "not_held"}
        )
        answered.append(ok(answer)["transaction"])

    _rpc(env, "evm_setNextBlockTimestamp", due_by + 1)
    # Read by a department: the auditor's token is checked against the chain once a second (an eth_call of
    # its own, api.ledger.core.auditor_address), which a slow run made the hook's call, before the head.
    with proxy.hooked_after_head(decline, methods=("eth_call",)):
        read = env.call("GET", path, "psb")
    shown = ok(read)
    block = int(read.headers["X-Chain-Block"])
    assert answered and answered[0]["block_number"] == block + 1, (answered, block)
    assert (shown["status"], shown["overdue"], shown["answer"]) == ("open", False, None), shown
    again = env.call("GET", path, "psb")
    assert int(again.headers["X-Chain-Block"]) >= block + 1
    assert (ok(again)["status"], ok(again)["overdue"]) == ("declined", True)


def test_single_reads_declare_the_block_header_they_answer(proxied: tuple[ApiEnv, RpcProxy]) -> None:
    """The OpenAPI document says what these answers carry: X-Chain-Block on GET /demands/{id} and GET
    /inspections/{id}."""
    env, _proxy = proxied
    paths = ok(env.call("GET", "/openapi.json", None))["paths"]
    for path in ("/demands/{demand_id}", "/inspections/{inspection_id}"):
        headers = paths[path]["get"]["responses"]["200"]["headers"]
        assert headers["X-Chain-Block"]["schema"] == {"type": "integer", "minimum": 0}, headers


def test_an_outcome_recorded_around_the_services_check_is_shown_so(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """The contract takes any outcome and evidence hash from an auditor's key: a pass sent straight to the
    contract for a delivery whose presentation did not match (its payload altered) is on chain, and counted
    by the chain's figures; every read of the inspection shows it with ``outcome_as_checked`` false, where
    the outcome the service records is true, and a delivery with none recorded null."""
    env, _proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    altered = base64.b64encode(base64.b64decode(payload) + b"9,forged\n").decode()
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": altered}
    presented = ok(env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=body))
    assert presented["verdict"]["status"] == "MISMATCH"
    shown = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["sample"][0]
    assert (shown["outcome"], shown["outcome_as_checked"]) == (None, None)
    practice, _deployed = _practice(env)
    auditor = env.keystore.unlock("auditor")
    passed = 1  # InspectionOutcome.PASSED
    practice.wait(practice.submit(auditor, practice.build(
        str(auditor.address), "recordOutcome", inspection, bytes.fromhex(did[2:]), passed, bytes(32),
    )))  # fmt: skip
    single = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["sample"][0]
    listed = next(i for i in ok(env.call("GET", "/inspections", "hrss")) if i["id"] == inspection)["sample"][
        0
    ]
    for read in (single, listed):
        assert (read["presented"], read["outcome"], read["outcome_as_checked"]) == (
            "MISMATCH",
            "passed",
            False,
        )


def test_no_presentation_is_taken_while_its_outcomes_transaction_is_pending(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """An outcome whose transaction is not mined in time answers 409 TRANSACTION_PENDING and lets the
    delivery's lock go, its transaction journaled and re-sent until mined, committing to the verdict kept.
    A presentation then is closed until that transaction is settled: before, it was taken, and replaced the
    verdict the pending outcome's evidence hash commits to (a MISMATCH kept behind a pass)."""
    from api.app import create_app

    env, _proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    ok(env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=body))
    # The same service on its database, waiting a second for a receipt (the product's default is a minute).
    app = create_app(env.settings)
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
        ledger = app.state.dxl.ledger
        ledger.client.receipt_timeout = ledger.sender.client.receipt_timeout = 1.0

        def call(path: str, who: str, json: Any, **headers: str) -> httpx.Response:
            return client.post(path, headers=env.headers(who, **headers), json=json)

        key = {"Idempotency-Key": f"pending-outcome-{inspection}"}

        _rpc(env, "evm_setAutomine", False)
        try:
            pending = call(f"/inspections/{inspection}/outcomes", "auditor", {"delivery_id": did}, **key)
            error = pending.json()["error"]
            assert (pending.status_code, error["code"]) == (409, "TRANSACTION_PENDING"), pending.text
            altered = base64.b64encode(base64.b64decode(payload) + b"9,forged\n").decode()
            closed = call(
                f"/inspections/{inspection}/presentations", "hrss", {**body, "payload_base64": altered}
            )
            assert (closed.status_code, closed.json()["error"]["code"]) == (409, "PRESENTATION_CLOSED"), (
                closed.text
            )
            assert error["tx_hash"] in closed.json()["error"]["message"]
        finally:
            _rpc(env, "evm_setAutomine", True)
            mine(env)
    # The client asks again with its key, as for any TRANSACTION_PENDING: the journaled transaction's answer.
    done = ok(env.call("POST", f"/inspections/{inspection}/outcomes", "auditor", json={"delivery_id": did},
                       headers=key))  # fmt: skip
    assert done["transaction"]["hash"] == error["tx_hash"] and _claims_left(env) == []
    shown = done["record"]["sample"][0]
    assert (shown["presented"], shown["outcome"], shown["outcome_as_checked"]) == ("MATCH", "passed", True)


def test_a_presentation_after_a_failover_is_judged_on_the_node_the_service_moved_to(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """The service's client fails over from a node that stopped answering to the next of its endpoint: the
    presentation is judged there, at that node's head. Before, the readers a presentation (and POST /verify)
    pinned were made once per app, on the first node: they read the node left behind, down (503 here) or
    stalled, its old head's time judging the deadline."""
    from api.app import create_app

    env, _proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    with RpcProxy(env.setup.client.endpoint.rpc_url) as first:
        moved = {"rpc_url": first.url, "rpc_failover_urls": env.setup.client.endpoint.rpc_url}
        app = create_app(env.settings.model_copy(update=moved))
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
            path = f"/inspections/{inspection}/presentations"
            before = client.post(path, headers=env.headers("hrss"), json=body)
            assert ok(before)["verdict"]["status"] == "MATCH"
            first.down = True
            # A read of the ledger's: its client tries the node, and moves to the next.
            ok(client.get(f"/deliveries/{did}", headers=env.headers("hrss")))
            ledger = app.state.dxl.ledger
            assert ledger.client.rpc_url == env.setup.client.endpoint.rpc_url, "the client did not fail over"
            after = client.post(path, headers=env.headers("hrss"), json=body)
            verdict = ok(after)["verdict"]
    assert verdict["status"] == "MATCH" and verdict["block"] >= ok(before)["verdict"]["block"], verdict


def test_a_sample_drawn_after_a_failover_is_read_on_the_node_the_service_moved_to(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """An inspection's sample derived for the first time after the service's client failed over from a node
    that stopped answering is read on the node the client moved to: it was read on the endpoint's first node
    (``DXL_RPC_URL``) whatever node the client used, so GET /inspections/{id} answered 503 NODE_UNAVAILABLE
    while the rest of the service read on."""
    from api.app import create_app

    env, _proxy = proxied
    inspection, (did, _payload, _manifest, _root) = _inspection_of_one(env, tmp_path)
    live = env.setup.client.endpoint.rpc_url
    with RpcProxy(live) as first:
        app = create_app(env.settings.model_copy(update={"rpc_url": first.url, "rpc_failover_urls": live}))
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
            first.down = True
            # A read of the ledger's: its client tries the node, and moves to the next.
            ok(client.get(f"/deliveries/{did}", headers=env.headers("auditor")))
            assert app.state.dxl.ledger.client.rpc_url == live, "the client did not fail over"
            asked = first.asked.total()
            read = client.get(f"/inspections/{inspection}", headers=env.headers("auditor"))
            sample = ok(read)["sample"]
            assert first.asked.total() == asked, "the sample was read on the node the client left"
    assert [s["delivery_id"] for s in sample] == [did], sample


def _kept_verdict(env: ApiEnv, inspection: int, delivery_id: str) -> dict[str, Any]:
    with sqlite3.connect(env.settings.home / "dxl.sqlite3") as conn:
        (text,) = conn.execute(
            "SELECT verdict FROM api_inspection_presentations WHERE inspection_id = ? AND delivery_id = ?",
            (inspection, delivery_id),
        ).fetchone()
    kept: dict[str, Any] = json.loads(text)
    return kept


def test_a_presentation_after_a_failover_to_a_node_behind_the_outcomes_block_waits_for_it(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """The service's client fails over to a node behind the block that recorded a delivery's outcome (a
    member of the network that has not imported it yet). A presentation of the delivery passes the journal's
    gate as a write does: it waits for a node holding the journal's newest block, and answers 503
    NODE_UNAVAILABLE naming that block when none comes in time, keeping nothing; a node that catches up
    meanwhile closes it (409 PRESENTATION_CLOSED). Before, it was judged at the lagging head, where no outcome
    was recorded yet, and replaced the verdict the outcome's evidence hash commits to: every read showed
    ``outcome_as_checked`` false."""
    import time

    from api.app import create_app

    env, _proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    live = env.setup.client.endpoint.rpc_url
    with RpcProxy(live) as first, RpcProxy(live) as behind:
        moved = {"rpc_url": first.url, "rpc_failover_urls": behind.url, "chain_watch_interval": 0.1}
        app = create_app(env.settings.model_copy(update=moved))
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
            path = f"/inspections/{inspection}/presentations"
            ok(client.post(path, headers=env.headers("hrss"), json=body))
            auditor, sampled = env.headers("auditor"), {"delivery_id": did}
            outcome = client.post(f"/inspections/{inspection}/outcomes", headers=auditor, json=sampled)
            recorded = ok(outcome)["transaction"]["block_number"]
            kept = _kept_verdict(env, inspection, did)
            behind.behind_at = recorded - 1
            first.down = True
            # A read of the ledger's: its client tries the node, and moves to the next, behind the outcome.
            ok(client.get(f"/deliveries/{did}", headers=env.headers("hrss")))
            ledger = app.state.dxl.ledger
            assert ledger.client.rpc_url == behind.url, "the client did not fail over"
            ledger.client.receipt_timeout = 1.0  # how long the gate waits for a reconciliation, each time
            refused = client.post(path, headers=env.headers("hrss"), json=body)
            assert (refused.status_code, refused.json()["error"]["code"]) == (503, "NODE_UNAVAILABLE"), (
                refused.text
            )
            assert f"{behind.url} does not hold block {recorded} " in refused.json()["error"]["message"]
            assert _kept_verdict(env, inspection, did) == kept
            # The node catches up while a presentation waits at the gate: judged there, it is closed.
            ledger.client.receipt_timeout = 30.0
            caught_up = threading.Timer(1.0, lambda: setattr(behind, "behind_at", None))
            caught_up.start()
            began = time.monotonic()
            try:
                closed = client.post(path, headers=env.headers("hrss"), json=body)
            finally:
                caught_up.join()
            assert time.monotonic() - began >= 1.0, "the presentation did not wait for the node"
            assert (closed.status_code, closed.json()["error"]["code"]) == (409, "PRESENTATION_CLOSED"), (
                closed.text
            )
            read = ok(client.get(f"/inspections/{inspection}", headers=env.headers("auditor")))
    assert _kept_verdict(env, inspection, did) == kept
    shown = read["sample"][0]
    assert (shown["presented"], shown["outcome"], shown["outcome_as_checked"]) == ("MATCH", "passed", True)


def test_a_presentation_on_a_node_behind_the_block_of_the_kept_verdict_waits_for_it(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """A delivery's presentation is kept, judged at a head above every block the service journaled (a
    presentation writes nothing); the service's client fails over to a node behind that head. The journal's
    gate lets a presentation pass (the node holds every journaled block), and judged at the lagging head it
    replaced the verdict kept with one judged earlier. It now waits for a node holding the kept verdict's
    block, as the gate waits, and answers 503 NODE_UNAVAILABLE naming the node and both blocks when none comes
    in time, keeping nothing; a node that catches up meanwhile judges it."""
    import time

    from api.app import create_app

    env, _proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    mine(env, 1)  # the head above the draw, the newest block the service journaled
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    live = env.setup.client.endpoint.rpc_url
    with RpcProxy(live) as first, RpcProxy(live) as behind:
        moved = {"rpc_url": first.url, "rpc_failover_urls": behind.url, "chain_watch_interval": 0.1,
                 "catch_up_timeout": 1.0}  # fmt: skip
        app = create_app(env.settings.model_copy(update=moved))
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
            path = f"/inspections/{inspection}/presentations"
            judged = ok(client.post(path, headers=env.headers("hrss"), json=body))["verdict"]["block"]
            kept = _kept_verdict(env, inspection, did)
            assert (kept["status"], kept["block"]) == ("MATCH", judged), kept
            behind.behind_at = judged - 1
            first.down = True
            # A read of the ledger's: its client tries the node, and moves to the next, behind the verdict.
            ok(client.get(f"/deliveries/{did}", headers=env.headers("hrss")))
            ledger = app.state.dxl.ledger
            assert ledger.client.rpc_url == behind.url, "the client did not fail over"
            began = time.monotonic()
            refused = client.post(path, headers=env.headers("hrss"), json=body)
            assert (refused.status_code, refused.json()["error"]["code"]) == (503, "NODE_UNAVAILABLE"), (
                refused.text
            )
            message = refused.json()["error"]["message"]
            named = f"the node {behind.url} is at block {judged - 1}, behind block {judged} "
            assert named in message, message
            assert time.monotonic() - began >= 1.0, "the presentation did not wait for the node"
            assert _kept_verdict(env, inspection, did) == kept
            # The node catches up while a presentation waits for it: judged there, at the kept one's block.
            ledger.client.catch_up_timeout = 30.0
            caught_up = threading.Timer(1.0, lambda: setattr(behind, "behind_at", None))
            caught_up.start()
            began = time.monotonic()
            try:
                again = ok(client.post(path, headers=env.headers("hrss"), json=body))["verdict"]
            finally:
                caught_up.join()
            assert time.monotonic() - began >= 1.0, "the presentation did not wait for the node"
    assert again["block"] >= judged, again
    assert _kept_verdict(env, inspection, did)["block"] == again["block"]


def test_a_presentation_waits_for_a_slow_nodes_head_as_for_any_read(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """The head a presentation (and POST /verify) pins to is read with the wait of any read of the node, not
    the one-second look a command takes at the other nodes of a network: a head answered 1.5 s late (a busy
    node) was 503 NODE_UNAVAILABLE."""
    import time

    env, proxy = proxied
    inspection, (did, payload, manifest, _root) = _inspection_of_one(env, tmp_path)
    body = {"delivery_id": did, "manifest": manifest, "payload_base64": payload}
    proxy.after_head = lambda: time.sleep(1.5)  # the node's answer to the head read, late
    presented = env.call("POST", f"/inspections/{inspection}/presentations", "hrss", json=body)
    assert ok(presented)["verdict"]["status"] == "MATCH"
    assert proxy.after_head is None, "the head read was not the presentation's"


def test_a_reads_head_is_waited_for_as_long_as_the_services_client_waits_for_its_node(
    proxied: tuple[ApiEnv, RpcProxy],
) -> None:
    """The head a single read (GET /demands/{id}, GET /inspections/{id}) names as its block and the head a
    check (POST /verify, a presentation) pins to are waited for as long as any request of the service's node
    client (its request timeout), one answer for both: the single reads waited a fixed 10 s of their own, so
    a head answered 2 s late got past a client that gives up on its node after 1 s."""
    from types import SimpleNamespace

    from api.ledger import Custody, LedgerService
    from api.routes.verify import PinnedCheck
    from node.deploy import ledger_client, practice_client
    from node.endpoint import NodeEndpoint
    from node.errors import NodeError

    env, proxy = proxied
    through = NodeEndpoint(proxy.url, env.setup.client.chain_id)
    record = load_deployment(env.settings.home)
    service = LedgerService(
        client=ledger_client(through, env.settings.home, request_timeout=1.0),
        custody=Custody(env.keystore, {}),
        sessions=no_database,
        from_block=record.block_number,
    )
    assert record.sharing_practice is not None
    practice = practice_client(through, env.settings.home, request_timeout=1.0)
    service.attach_practice(practice, from_block=record.sharing_practice.block_number)
    unknown = 2**63
    proxy.head_delay_s = 2.0
    try:
        reads: dict[str, Callable[[], object]] = {
            "GET /demands/{id}": lambda: service.practice_service().read_demand(unknown),
            "GET /inspections/{id}": lambda: service.practice_service().inspections(service).read(unknown),
            "POST /verify": lambda: PinnedCheck(SimpleNamespace(extra={}), service),
        }
        for name, read in reads.items():
            with pytest.raises(NodeError, match="eth_getBlockByNumber"):
                read()
                pytest.fail(f"{name} read a head answered after its client gave up on the node")
    finally:
        proxy.head_delay_s = 0.0


def test_the_operators_rpc_timeout_is_the_wait_of_every_client_the_service_makes_of_its_node(
    proxied: tuple[ApiEnv, RpcProxy], caplog: pytest.LogCaptureFixture
) -> None:
    """``DXL_RPC_TIMEOUT`` reaches every client the service makes of its node (the ledger's, the sharing
    practice's, the receipt anchors', the audit trail's): set to 1 s, a head answered 2 s late is the node not
    answering (503 NODE_UNAVAILABLE), and answered in time the read goes on. Before, the service passed
    nothing and each client waited a fixed 30 s, whatever the operator needed."""
    from api.app import create_app
    from api.routes.audit import get_audit

    env, proxy = proxied
    app = create_app(env.settings.model_copy(update={"rpc_timeout": 1.0}))
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60, verify=tls_context()) as client:
        state = app.state.dxl
        with get_audit(state).rpc() as audit_rpc:
            waits = {
                "ledger": state.ledger.client.request_timeout,
                "practice": state.ledger.practice_service().client.request_timeout,
                "anchors": state.extra["receipts"].anchors.request_timeout,
                "audit trail": audit_rpc.timeout,
            }
        assert waits == dict.fromkeys(waits, 1.0), waits
        unknown = f"/demands/{2**63}"
        proxy.head_delay_s = 2.0
        try:
            late = client.get(unknown, headers=env.headers("hrss"))
        finally:
            proxy.head_delay_s = 0.0
        assert (late.status_code, late.json()["error"]["code"]) == (503, "NODE_UNAVAILABLE"), late.text
        # The head given up on: logged so, answered as any node that does not answer.
        assert "eth_getBlockByNumber: no answer within 1 s" in caplog.text
        in_time = client.get(unknown, headers=env.headers("hrss"))
        assert (in_time.status_code, in_time.json()["error"]["code"]) == (404, "DEMAND_NOT_FOUND"), (
            in_time.text
        )


def test_a_write_whose_deadline_passes_between_its_estimate_and_its_block_is_answered_as_refused(
    proxied: tuple[ApiEnv, RpcProxy],
) -> None:
    """The estimate is made on the pending block, but the block the transaction is mined in may come later
    than the estimate's (a node whose next block waits, a clock set meanwhile: here the next block's time is
    set to the validity's end as the grant is sent). The chain refuses the write in its block, a failed
    transaction, and the service answers the contract's refusal as it does before the end: 409
    AGREEMENT_OUTSIDE_VALIDITY, naming no record (nothing was written), neither 201 nor 500; the retry with
    the same key answers the same and sends nothing."""
    env, proxy = proxied
    provider = env.setup.keystore.address("dept-hrss")
    ends = env.setup.client.next_block_time() + 3600
    body = {"resource_id": register(env, "hrss"), "purpose": "a validity that ends", "scope_hash": b32(),
            "terms_hash": b32(), "valid_from": ends - 7200, "valid_until": ends}  # fmt: skip
    request = ok(env.call("POST", "/requests", "psb", json=body), 201)["record"]
    agreement = concluded(env, request, "hrss", "psb")
    _rpc(env, "evm_setNextBlockTimestamp", ends - 2)
    _rpc(env, "evm_mine")
    sent = env.setup.client.pending_nonce(provider)
    proxy.before_send = lambda: _rpc(env, "evm_setNextBlockTimestamp", ends)
    grant, key = (
        {"agreement_id": agreement["id"], "expires_at": ends},
        {"Idempotency-Key": "grant-at-the-end"},
    )
    try:
        late = env.call("POST", "/grants", "hrss", json=grant, headers=key)
    finally:
        proxy.before_send = None
    assert (late.status_code, late.json()["error"]["code"]) == (409, "AGREEMENT_OUTSIDE_VALIDITY"), late.text
    assert env.setup.client.pending_nonce(provider) == sent + 1  # sent, mined, refused in its block
    assert _chain_now(env) == ends
    again = env.call("POST", "/grants", "hrss", json=grant, headers=key)
    assert (again.status_code, again.json()) == (409, late.json())
    assert env.setup.client.pending_nonce(provider) == sent + 1


# --- draws -----------------------------------------------------------------------------------------------


def test_a_draw_before_its_seed_block_is_mined_is_refused_and_records_nothing(
    proxied: tuple[ApiEnv, RpcProxy],
) -> None:
    """Until the seed block is mined (BLOCKHASH knows a block from the block after it on, and a draw is
    estimated on the block after the head, the one it can be mined in), a draw is 409 SEED_UNAVAILABLE naming
    the seed block, by an auditor or a department, with a key or without: nothing is signed, sent, journaled
    or left claimed, and the inspection stays open. A key refused so keeps its refusal; with a fresh one the
    draw is made once the seed block is the head (it was refused then too, estimated on the head)."""
    env, proxy = proxied
    opened = _inspected(env, seed_delay=4)
    inspection, seed_block = opened["id"], opened["seed_block"]
    path = f"/inspections/{inspection}/draw"
    journaled, sent = _journaled(env), proxy.sends
    refused = []
    while _head(env) < seed_block:
        for who, key in (("auditor", f"early-{inspection}-{_head(env)}"), ("hrss", None)):
            headers = {} if key is None else {"Idempotency-Key": key}
            answer = env.call("POST", path, who, headers=headers)
            error = answer.json()["error"]
            assert (answer.status_code, error["code"]) == (409, "SEED_UNAVAILABLE"), answer.text
            assert f"cannot be drawn before block {seed_block + 1}" in error["message"], error
            refused.append(key)
        mine(env)
    assert len(refused) >= 4
    assert (proxy.sends, _journaled(env), _claims_left(env)) == (sent, journaled, [])
    assert _draw_logs(env, inspection) == []
    assert ok(env.call("GET", f"/inspections/{inspection}", "auditor"))["status"] == "open"
    # A key refused as too early was refused for good (its answer kept); a fresh key draws.
    replay = env.call("POST", path, "auditor", headers={"Idempotency-Key": refused[0]})
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (409, "true")
    assert _head(env) == seed_block
    drawn = ok(env.call("POST", path, "auditor", headers={"Idempotency-Key": f"late-{inspection}"}))
    assert drawn["record"]["status"] == "drawn" and len(_draw_logs(env, inspection)) == 1


def test_concurrent_draws_fix_one_seed_and_answer_the_same_draw(proxied: tuple[ApiEnv, RpcProxy]) -> None:
    """Three draws at once (the auditor twice, a department once), in the node's pool before one block is
    mined: one draws, the others revert behind it or are refused on a head where it drew; each answers 200
    with the one transaction that drew and the one sample. Drawn again later: the same."""
    env, _proxy = proxied
    opened = _inspected(env)
    inspection = opened["id"]
    mine(env, 3)
    path = f"/inspections/{inspection}/draw"
    answers: dict[str, Any] = {}
    waiting = in_pool(env)
    _rpc(env, "evm_setAutomine", False)
    try:
        threads = [
            threading.Thread(
                target=lambda who=who, n=n: answers.update({f"{who}{n}": env.call("POST", path, who)})
            )
            for n, who in enumerate(("auditor", "auditor", "hrss"))
        ]
        for t in threads:
            t.start()
        until(lambda: in_pool(env) >= waiting + 2, "two draws in the pool", timeout=30)
        while any(t.is_alive() for t in threads):
            mine(env)
            for t in threads:
                t.join(0.2)
    finally:
        _rpc(env, "evm_setAutomine", True)
    assert len(answers) == 3
    written = [ok(a) for a in answers.values()]
    assert len({w["transaction"]["hash"] for w in written}) == 1, written
    assert len({w["record"]["seed"] for w in written}) == 1
    logs = _draw_logs(env, inspection)
    assert len(logs) == 1 and logs[0][0].tx_hash == written[0]["transaction"]["hash"], logs
    again = ok(env.call("POST", path, "psb"))
    shown = ok(env.call("GET", f"/inspections/{inspection}", "auditor"))
    assert again["transaction"] == written[0]["transaction"] and again["record"]["seed"] == shown["seed"]
    assert _claims_left(env) == []


def test_the_cli_tells_an_inspection_not_drawn_yet_by_the_block_it_read(
    proxied: tuple[ApiEnv, RpcProxy],
) -> None:
    """`dxl inspection draw` before a block is on top of the seed block exits 2 with SEED_UNAVAILABLE naming
    the block it can be drawn from; `dxl inspection sample` (a node alone) exits 2 with INSPECTION_NOT_DRAWN
    naming the block it read, and whether the seed block is still to come there or a draw is due (so a node
    behind the one that drew shows where it stands): it said "open: no seed yet" with the code of a node
    failure. Once drawn, the sample it recomputes is the service's."""
    from tests.cli import dxl

    env, _proxy = proxied
    opened = _inspected(env, seed_delay=3)
    inspection, seed_block = opened["id"], opened["seed_block"]
    deployment = load_deployment(env.settings.home)
    assert deployment.sharing_practice is not None
    rpc = env.setup.client.endpoint.rpc_url
    node = ("--rpc", rpc, "--ledger", deployment.address, "--practice", deployment.sharing_practice.address,
            "--from-block", str(deployment.block_number), "--json")  # fmt: skip
    token = ("--api", env.url, "--token", env.tokens["demo-auditor"], "--json")
    code, out, _ = dxl("inspection", "draw", str(inspection), *token)
    refused = json.loads(out)
    assert (code, refused["error"]) == (2, "SEED_UNAVAILABLE"), out
    assert refused["message"] == (
        f"inspection {inspection} cannot be drawn before block {seed_block + 1}: its seed is the hash of "
        f"block {seed_block}, which the chain can read only once block {seed_block + 1} is mined"
    ), refused
    code, out, _ = dxl("inspection", "sample", str(inspection), *node)
    early = json.loads(out)
    assert (code, early["error"]) == (2, "INSPECTION_NOT_DRAWN"), out
    assert f"not drawn at block {_head(env)} of {rpc}" in early["message"]
    assert f"can be drawn from block {seed_block + 1} on" in early["message"]
    mine(env, seed_block + 1 - _head(env))
    code, out, _ = dxl("inspection", "sample", str(inspection), *node)
    due = json.loads(out)
    assert (code, due["error"]) == (2, "INSPECTION_NOT_DRAWN"), out
    assert f"anyone may draw it until block {seed_block + 256}" in due["message"]
    code, out, _ = dxl("inspection", "draw", str(inspection), *token)
    assert code == 0, out
    drawn = json.loads(out)
    code, out, _ = dxl("inspection", "sample", str(inspection), *node)
    assert code == 0, out
    sample = json.loads(out)
    assert (
        sample["seed"] == drawn["record"]["seed"]
        and sample["node"]["block"] >= drawn["transaction"]["block_number"]
    )
    assert sample["sample"] == [s["delivery_id"] for s in drawn["record"]["sample"]]
    # The text says the derivation version too, as --json does.
    code, out, err = dxl("inspection", "sample", str(inspection), *node[:-1])
    assert code == 0, out + err
    assert out.startswith(
        f"inspection {inspection}: seed {sample['seed']} (block {seed_block}), population "
        f"{sample['population_size']}, derivation version {sample['version']}, sample:\n"
    ), out


def test_the_cli_presents_a_drawn_receipt_under_its_slot(
    proxied: tuple[ApiEnv, RpcProxy], tmp_path: Path
) -> None:
    """A receipt is drawn by its slot (grant and sequence), not by the delivery id its manifest names:
    `dxl inspection present` finds the slot from the receipt journal and presents it there (MATCH, by its
    inclusion proof). Before, it sent the manifest's delivery id, always 409 NOT_SAMPLED: a drawn receipt
    could not be presented with the command the console tells its provider to run."""
    from tests.cli import dxl
    from verifier.manifest import write_manifest

    env, _proxy = proxied
    grant = grant_between(env, "hrss", "psb")
    with own_period(env) as (period_from, period_to):  # the period holds this receipt alone
        payload = tmp_path / "receipt.csv"
        payload.write_bytes("id,name\n1,赵六\n".encode())
        c = commit_payload(
            payload, salt=new_salt(), chunking=Chunking(PayloadFormat.CSV), keep_leaf_hashes=True
        )
        did = new_delivery_id(grant["provider"])
        manifest = tmp_path / "receipt.csv.manifest.json"
        write_manifest(manifest, sign_manifest(build_manifest(c, delivery_id=did, grant_id=grant["id"]),
                                               env.keystore.unlock("dept-hrss")))  # fmt: skip
        body = {"delivery_id": "0x" + did.hex(), "grant_id": grant["id"], "commitment": "0x" + c.root.hex(),
                "byte_size": c.byte_size, "record_count": c.record_count}  # fmt: skip
        ok(env.call("POST", "/receipts", "hrss", json={"receipts": [body]}), 202)
        receipt = until(
            lambda: (r := ok(env.call("GET", f"/receipts/0x{did.hex()}", "hrss")))["status"] == "final" and r,
            "the receipt's batch anchored",
        )
    from node.deploy import anchors_client

    anchors = anchors_client(env.setup.client.endpoint, env.settings.home)
    anchored_at = int(anchors.call("batch", grant["id"], receipt["batch"]["first_sequence"])[2])
    assert period_from <= anchored_at < period_to
    opened = {"period_from": period_from, "period_to": period_to, "sample_size": 1,
              "seed_delay_blocks": 2, "present_within": MIN_PRESENT_WITHIN_S}  # fmt: skip
    inspection = ok(env.call("POST", "/inspections", "auditor", json=opened), 201)["record"]["id"]
    mine(env, 2)
    drawn = ok(env.call("POST", f"/inspections/{inspection}/draw", "auditor"))["record"]
    slot = "0x" + receipt_slot(grant["id"], receipt["sequence"]).hex()
    assert [s["delivery_id"] for s in drawn["sample"]] == [slot], drawn
    token = ("--api", env.url, "--token", env.tokens["demo-hrss"], "--json")
    files = ("--payload", payload, "--manifest", manifest)
    code, out, err = dxl("inspection", "present", str(inspection), *files, *token)
    assert code == 0, out + err
    presented = json.loads(out)
    assert (presented["delivery_id"], presented["verdict"]["status"]) == (slot, "MATCH"), presented
    assert presented["verdict"]["anchor"]["details"]["recorded_as"] == "receipt"
    # The text names a drawn receipt by its grant and sequence beside its slot, as --json does (the slot
    # alone read as an opaque id that no delivery of the provider's has).
    code, out, err = dxl("inspection", "show", str(inspection), *token[:-1])
    assert code == 0, out + err
    code_of = {ident: c for c, ident in env.departments.items()}  # the line names the provider by code
    assert (
        f"  {slot} provider {code_of[grant['provider']]} (receipt: grant {grant['id']}, "
        f"sequence {receipt['sequence']}): presented MATCH, outcome -"
    ) in out.splitlines(), out


@pytest.mark.parametrize("route", ["scorecard", "history"])
def test_a_department_admitted_since_the_index_was_last_brought_up_is_found(
    proxied: tuple[ApiEnv, RpcProxy], route: str
) -> None:
    """The audit routes look a department up in the audit index: one admitted since the last sync (the
    service's follower syncs every DXL_AUDIT_FOLLOW_INTERVAL; here none runs) was 404 DEPARTMENT_NOT_FOUND,
    its scorecard too, though the scorecard brings the index up to the chain's head before it computes the
    card, and `dxl audit scorecard` (which looks it up after that) answered it."""
    env, _ = proxied
    code = "NEW" + secrets.token_hex(3).upper()
    body = {"action": "admit_department", "code": code, "name": "New Bureau",
            "signer": Account.create().address, "encryption_key": "0x" + secrets.token_hex(32)}  # fmt: skip
    assert ok(govern(env, body))["record"]["executed"] is True
    found = ok(env.call("GET", f"/audit/{route}?department={code}", "auditor"))
    if route == "scorecard":
        assert found["department"]["code"] == code and found["resources"]["total"] == 0, found
    else:
        assert [i["event"] for i in found["items"]] == ["DepartmentAdmitted"], found
