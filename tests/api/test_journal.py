"""The transaction journal and reconciliation: every 2xx write is on the chain exactly once, whatever is lost.

One regression test per way a write used to be lost, doubled or answered 500: blocks lost by the node
(``evm_snapshot``/``evm_revert`` on the real anvil), the nonce gap they leave, a lost answer to
``eth_sendRawTransaction`` (a loopback proxy), the claims of a crashed API process, a node stalled with
SIGSTOP while reads pile up, and an unavailable database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import connect_ledger, create_app
from api.auth import Principal, Role
from api.db import IdempotencyRecord, JournaledTransaction, init_db, make_engine, session_factory
from api.demo import ensure_demo_tokens
from api.errors import ApiError
from api.idempotency import ClaimOwner, IdempotencyStore, fingerprint
from api.journal import (
    STALE_AFTER_S,
    ChainWatcher,
    Claim,
    Journal,
    JournalChain,
    JournalChainMismatchError,
    JournaledSender,
    Reconciler,
    TxStatus,
)
from api.ledger import Finish
from api.receipts.anchorer import Anchorer, journaled_reverted, journaled_submit, journaled_void
from api.receipts.journal import batches_table
from api.settings import ApiSettings
from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.chain import BlockRef, LedgerClient
from node.endpoint import rpc_call
from node.errors import NodeError
from node.provision import LedgerSetup, setup_ledger
from node.tls import tls_context
from tests.api.api_helpers import (
    PASSPHRASE,
    ServerThread,
    api_home,
    b32,
    full_disk,
    grant_between,
    journal_receipts,
    make_settings,
    ok,
    outlive_caches,
    receipt_body,
    some_receipts,
)
from tests.rpc_proxy import RpcProxy
from verifier.receipts import ReceiptProof

# One deployment per module, and tests that rewind or pause the module's node: keep them on one worker.
pytestmark = pytest.mark.xdist_group("api-journal")


@dataclass
class JournalEnv:
    url: str
    app: FastAPI
    settings: ApiSettings
    setup: LedgerSetup
    tokens: dict[str, str]
    client: httpx.Client
    proxy: RpcProxy
    node: EmbeddedNode

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.tokens['demo-' + who]}"}
        return found | ({"Idempotency-Key": key} if key else {})

    def register(self, who: str, key: str | None, body: dict[str, object] | None = None) -> httpx.Response:
        return self.client.post("/resources", json=body or _resource(), headers=self.headers(who, key))

    def call(self, method: str, path: str, who: str, *, json: Any = None) -> httpx.Response:
        """As ``ApiEnv.call``, so that the shared helpers (``grant_between``) run here."""
        return self.client.request(method, path, headers=self.headers(who), json=json)

    def request_body(self, resource_id: int) -> dict[str, object]:
        """A request for a resource, valid for 30 days from the node's clock (which the tests move)."""
        now = int(self.setup.client.w3.eth.get_block("latest")["timestamp"])
        return {"resource_id": resource_id, "purpose": "benefit eligibility check", "scope_hash": b32(),
                "terms_hash": b32(), "valid_from": now - 3600, "valid_until": now + 30 * 86400}  # fmt: skip

    def node_rpc(self, method: str, *params: object) -> object:
        return rpc_call(self.node.endpoint.rpc_url, method, list(params))

    def resource_count(self) -> int:
        return int(self.setup.client.call("resourceCount"))

    def sent_by(self, who: str) -> int:
        """The node's pending nonce of a department's custodied key."""
        return self.setup.client.pending_nonce(self.setup.keystore.address(f"dept-{who}"))

    def sessions(self) -> sessionmaker[Session]:
        sessions: sessionmaker[Session] = self.app.state.dxl.sessions
        return sessions

    @contextmanager
    def watcher_asleep(self) -> Iterator[None]:
        """The chain watcher looks no more unless a write wakes it: the node can lose blocks unnoticed."""
        watcher = self.app.state.dxl.extra["chain_watcher"]
        watcher.interval = 3600.0
        time.sleep(0.3)  # its current 0.1 s wait ends; the next lasts an hour unless a write wakes it
        try:
            yield
        finally:
            watcher.interval = 0.1
            self.app.state.dxl.ledger.sender.on_chain_changed()


def _resource() -> dict[str, object]:
    return {"metadata_hash": b32(), "schema_hash": b32(), "share_type": "conditional", "sensitivity": 1}


@pytest.fixture(scope="module")
def journal_env(
    embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JournalEnv]:
    """An API whose node is reached through a loopback proxy, watching the node every 0.1 s."""
    direct = make_settings(api_home(tmp_path_factory, "journal-home"), embedded_node)
    setup = setup_ledger(embedded_node.endpoint, direct, dev_funding=True)
    tokens = {k: v for k, v in ensure_demo_tokens(direct).items() if v is not None}
    with RpcProxy(embedded_node.endpoint.rpc_url) as proxy, pytest.MonkeyPatch.context() as env:
        settings = direct.model_copy(update={"rpc_url": proxy.url, "chain_watch_interval": 0.1})
        env.setenv("DXL_HOME", str(settings.home))
        env.setenv("DXL_RPC_URL", proxy.url)
        env.setenv("DXL_CHAIN_ID", str(settings.chain_id))
        env.setenv("DXL_KEYSTORE_PASSPHRASE", PASSPHRASE)
        app = create_app(settings, idempotency_wait=5)
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=30, verify=tls_context()) as client:
            yield JournalEnv(url, app, settings, setup, tokens, client, proxy, embedded_node)


def _until(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# --- the journal itself -------------------------------------------------------------------------------------


def test_the_signed_bytes_are_journaled_with_the_claim_before_they_are_sent(journal_env: JournalEnv) -> None:
    env = journal_env
    response = ok(env.register("psb", "journal-1"), 201)
    tx_hash = response["transaction"]["hash"]
    with env.sessions()() as session:
        row = session.scalar(select(JournaledTransaction).where(JournaledTransaction.tx_hash == tx_hash))
        claim = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "journal-1"))
    assert row is not None and claim is not None
    assert "0x" + keccak(row.raw).hex() == tx_hash  # the exact bytes that were sent
    assert row.sender == to_checksum_address(env.setup.keystore.address("dept-psb"))
    assert row.status == TxStatus.MINED
    assert row.block_number == response["transaction"]["block_number"]
    assert row.finish == {
        "view": "resource",
        "record_id": None,
        "event": "ResourceRegistered",
        "arg": "resourceId",
    }
    assert claim.tx_hash == tx_hash and claim.status_code == 201


# --- cause 1: blocks the node lost --------------------------------------------------------------------------


def test_lost_blocks_are_healed_from_the_journal_and_a_replay_answers_the_re_mined_write(
    journal_env: JournalEnv,
) -> None:
    """The node loses the blocks of acknowledged writes (restarted from an older state): the journal re-sends
    the same bytes in their first order, and each key's replay answers from the re-mined transaction."""
    env = journal_env
    before = env.resource_count()
    snapshot = env.node_rpc("evm_snapshot")
    writes = [("hrss", "healed-1", _resource()), ("psb", "healed-2", _resource())]
    first = [ok(env.register(who, key, body), 201) for who, key, body in writes]
    assert env.resource_count() == before + 2
    assert env.node_rpc("evm_revert", snapshot) is True
    assert env.resource_count() == before  # the acknowledged writes are gone from the node
    _until(lambda: env.resource_count() == before + 2)  # healed by the watcher, without any request
    again = [ok(env.register(who, key, body), 201) for who, key, body in writes]
    for was, now in zip(first, again, strict=True):
        assert now["transaction"]["hash"] == was["transaction"]["hash"]  # the same bytes, no new signature
        assert now["record"] == was["record"]  # re-mined in their first order: the same ids
    assert env.resource_count() == before + 2


def test_a_write_sent_before_the_watcher_saw_lost_blocks_does_not_take_an_acknowledged_write_s_id(
    journal_env: JournalEnv,
) -> None:
    """The node restarts from an older state between two looks of the watcher and a write of another
    department arrives: mined first, it would get the resource id the lost write was answered with. The send
    notices the lost block itself and has the journal re-sent first."""
    env = journal_env
    with env.watcher_asleep():
        snapshot = env.node_rpc("evm_snapshot")
        body = _resource()
        first = ok(env.register("hrss", "order-1", body), 201)
        assert env.node_rpc("evm_revert", snapshot) is True
        later = ok(env.register("psb", "order-2"), 201)  # another key: no nonce gap holds it back
        assert later["record"]["id"] == first["record"]["id"] + 1
        again = ok(env.register("hrss", "order-1", body), 201)
        assert again["transaction"]["hash"] == first["transaction"]["hash"]
        assert again["record"] == first["record"]


def test_a_retry_after_lost_blocks_does_not_push_its_write_ahead_of_an_acknowledged_one(
    journal_env: JournalEnv,
) -> None:
    """A write answered 409 (its transaction journaled, never sent) is retried after the node lost the block
    of an acknowledged write, before the watcher looked: the retry waits for reconciliation rather than
    pushing its bytes first, so the acknowledged write keeps its id."""
    env = journal_env
    with env.watcher_asleep():
        try:
            snapshot = env.node_rpc("evm_snapshot")
            first_body, later_body = _resource(), _resource()
            first = ok(env.register("hrss", "gate-1", first_body), 201)
            env.proxy.swallow_sends = 1
            pending = env.register("psb", "gate-2", later_body)
            assert pending.status_code == 409, pending.text
            assert env.node_rpc("evm_revert", snapshot) is True
            later = ok(env.register("psb", "gate-2", later_body), 201)
            assert later["transaction"]["hash"] == pending.json()["error"]["tx_hash"]
            assert later["record"]["id"] == first["record"]["id"] + 1
            again = ok(env.register("hrss", "gate-1", first_body), 201)
            assert again["record"] == first["record"]
        finally:
            env.proxy.swallow_sends = 0


@contextmanager
def _interval_mining(env: JournalEnv) -> Iterator[None]:
    """The node mines at intervals (a block a second here), as ``dxl run``'s does, instead of one per
    transaction: a transaction re-sent is not mined at once."""
    env.node_rpc("evm_setIntervalMining", 1)
    try:
        yield
    finally:
        env.node_rpc("evm_setAutomine", True)


@pytest.mark.parametrize("mining", ["auto", "interval"])
def test_a_write_over_a_record_the_node_lost_waits_for_it_instead_of_a_404(
    journal_env: JournalEnv, mining: str
) -> None:
    """A resource was acknowledged, the node lost its block, and before the watcher looked a department
    requests access to it: the request is checked once the journal has re-mined the resource, not refused
    with 404 over a record that was acknowledged. With interval mining, re-sent is not yet re-mined (the
    404s of make reliability)."""
    env = journal_env
    with env.watcher_asleep():
        snapshot = env.node_rpc("evm_snapshot")
        # Mined at once either way: the mining that matters is the one from the loss on (what is re-sent).
        resource_id = ok(env.register("hrss", f"lost-resource-{mining}-1"), 201)["record"]["id"]
        with _interval_mining(env) if mining == "interval" else contextlib.nullcontext():
            assert env.node_rpc("evm_revert", snapshot) is True
            body = env.request_body(resource_id)
            answer = env.client.post(
                "/requests", json=body, headers=env.headers("psb", f"lost-resource-{mining}-2")
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["record"]["resource_id"] == resource_id


def test_a_write_whose_block_is_lost_before_its_record_is_read_is_pending_not_a_404(
    journal_env: JournalEnv,
) -> None:
    """Mined, then its block replaced before the service read the record it wrote (a short reorganisation of
    a proof-of-authority chain, a failover to a node one block behind: make reliability's network profile
    got final 404s for writes that were on chain): the answer is 409 TRANSACTION_PENDING, and the retry with
    the same key answers the record once the journal has it mined again."""
    env = journal_env
    body = _resource()
    count = env.resource_count()
    with env.watcher_asleep():
        snapshot = env.node_rpc("evm_snapshot")

        def lose_the_block() -> None:
            env.proxy.after_receipt = None
            assert env.node_rpc("evm_revert", snapshot) is True

        env.proxy.after_receipt = lose_the_block
        try:
            first = env.register("hrss", "lost-before-read", body)
        finally:
            env.proxy.after_receipt = None
        assert first.status_code == 409, first.text
        assert first.json()["error"]["code"] == "TRANSACTION_PENDING"
    # As a client does with TRANSACTION_PENDING: ask again with the key until the final answer.
    deadline = time.monotonic() + 30
    while (retry := env.register("hrss", "lost-before-read", body)).status_code == 409:
        assert retry.json()["error"]["code"] == "TRANSACTION_PENDING" and time.monotonic() < deadline
        time.sleep(0.3)
    again = ok(retry, 201)
    assert again["record"]["id"] == count + 1 and env.resource_count() == count + 1


def test_receipts_for_a_grant_the_node_lost_wait_for_it_instead_of_a_404(journal_env: JournalEnv) -> None:
    """A grant was acknowledged, the node lost its blocks, and receipts are posted for it while the journal
    is being reconciled (1 s blocks: re-sent is not yet re-mined). Their grant check reads the chain without
    sending anything; it waits for the journal's gate before calling the grant unknown, instead of 404
    GRANT_NOT_FOUND for an acknowledged grant (seen in make reliability)."""
    env = journal_env
    watcher = env.app.state.dxl.extra["chain_watcher"]
    with env.watcher_asleep():
        snapshot = env.node_rpc("evm_snapshot")
        # Made at a block per write (5 s of 1 s blocks otherwise); the interval mining is for what follows the
        # lost blocks: the grant re-sent, and not yet mined again while the receipts are checked.
        grant = grant_between(env, "psb", "hrss")  # type: ignore[arg-type]
        with _interval_mining(env):
            assert env.node_rpc("evm_revert", snapshot) is True
            outlive_caches(env.app)  # the grant's state, cached when it was created, expires
            body = receipt_body(grant)
            env.app.state.dxl.ledger.sender.hold()  # what the watcher does from seeing the node changed on
            answers: list[httpx.Response] = []
            post = threading.Thread(
                target=lambda: answers.append(env.call("POST", "/receipts", "psb", json={"receipts": [body]}))
            )
            post.start()
            time.sleep(0.5)  # the post checks the grant meanwhile
            watcher.tick()  # reconciled (by this look or the watcher's own): the grant re-sent, mined again
            post.join(30)
            assert answers and answers[0].status_code == 202, answers[0].text if answers else "no answer"


def test_a_kept_signature_still_concludes_after_the_decision_is_mined_again_later(
    journal_env: JournalEnv,
) -> None:
    """The consumer's signature is kept (answered 200), then the node loses the approval's block and the
    journal mines the approval again a minute later: the decision's time, from which the terms' deadline is
    derived, moved. The provider's signature still concludes the agreement over the terms the consumer signed,
    instead of dropping the consumer's as stale and answering ``awaiting_counter_signature`` (an acknowledged
    signature gone: the lost conclusions of make reliability)."""
    env = journal_env
    resource_id = ok(env.register("hrss", None), 201)["record"]["id"]
    request_id = ok(env.call("POST", "/requests", "psb", json=env.request_body(resource_id)), 201)["record"][
        "id"
    ]
    signatures = f"/requests/{request_id}/signatures"
    snapshot = env.node_rpc("evm_snapshot")
    decided = ok(env.call("POST", f"/requests/{request_id}/approve", "hrss"))["record"]["decided_at"]
    kept = ok(env.call("POST", signatures, "psb", json={}))
    assert kept["status"] == "awaiting_counter_signature" and kept["signing"]["signed_by"] == ["consumer"]
    assert env.node_rpc("evm_revert", snapshot) is True
    env.node_rpc("evm_increaseTime", 60)  # the node's clock: the approval is mined again a minute later

    def decided_again() -> int | None:
        record = env.call("GET", f"/requests/{request_id}", "hrss").json()
        return record["decided_at"] if record["status"] == "approved" else None

    _until(lambda: decided_again() is not None)  # healed by the watcher
    assert decided_again() != decided
    outcome = ok(env.call("POST", signatures, "hrss", json={}))
    assert outcome["status"] == "concluded", outcome
    assert outcome["signing"]["typed_data"] == kept["signing"]["typed_data"]  # the terms the consumer signed
    assert outcome["agreement"]["request_id"] == request_id and outcome["transaction"] is not None


def _signed_by_both(env: JournalEnv) -> tuple[int, list[Any], list[Any]]:
    """A request approved and its terms signed by both parties outside the service, for someone to relay
    (``concludeAgreement(terms, consumerSignature, providerSignature)``): the request, the terms, the two
    signatures."""
    resource_id = ok(env.register("hrss", None), 201)["record"]["id"]
    request_id = ok(env.call("POST", "/requests", "psb", json=env.request_body(resource_id)), 201)["record"][
        "id"
    ]
    ok(env.call("POST", f"/requests/{request_id}/approve", "hrss"))
    typed = ok(env.call("GET", f"/requests/{request_id}/terms", "psb"))["typed_data"]
    signatures = [
        env.setup.keystore.unlock(f"dept-{who}").sign_typed_data(full_message=typed).signature
        for who in ("hrss", "psb")
    ]
    terms = [bytes.fromhex(v[2:]) if isinstance(v, str) else v for v in typed["message"].values()]
    return int(request_id), terms, signatures


def test_an_agreement_another_party_relayed_is_journaled_when_it_is_reported(journal_env: JournalEnv) -> None:
    """Both signatures were relayed to the ledger by someone outside the service, and a party signing through
    the API is answered ``concluded`` with that agreement. The node then loses the relay's block: the journal
    sends the relayed bytes again, so the answer stays true, instead of holding only if the relayer does."""
    env = journal_env
    request_id, terms, signatures = _signed_by_both(env)
    snapshot = env.node_rpc("evm_snapshot")
    relayed = env.setup.client.transact(Account.create(), "concludeAgreement", terms, *signatures)
    outcome = ok(env.call("POST", f"/requests/{request_id}/signatures", "hrss", json={}))
    assert outcome["status"] == "concluded" and outcome["transaction"] is None
    assert outcome["agreement"]["id"] == relayed.event("AgreementConcluded").args["agreementId"]
    assert env.node_rpc("evm_revert", snapshot) is True
    _until(lambda: env.setup.client.receipt(relayed.tx_hash) is not None)  # sent again by the journal
    assert ok(env.call("GET", f"/agreements/{outcome['agreement']['id']}", "psb")) == outcome["agreement"]


def test_an_agreement_another_party_relayed_is_reported_under_the_confirmation_depth(
    journal_env: JournalEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a confirmation depth, the agreement a relay concluded is reported as a write of the service is:
    only once the relay's block has that many blocks on top of it. Before, the answer is 409
    TRANSACTION_PENDING, which does not settle the key; once the blocks are there, the retry with the same
    key reports the agreement."""
    env = journal_env
    request_id, terms, signatures = _signed_by_both(env)
    relayed = env.setup.client.transact(Account.create(), "concludeAgreement", terms, *signatures)
    sender = env.app.state.dxl.ledger.sender
    monkeypatch.setattr(sender, "confirmations", 2)
    monkeypatch.setattr(sender.client, "receipt_timeout", 1.0)
    path, key = f"/requests/{request_id}/signatures", f"relayed-deep-{request_id}"
    early = env.client.post(path, json={}, headers=env.headers("hrss", key))
    assert early.status_code == 409 and early.json()["error"]["code"] == "TRANSACTION_PENDING", early.text
    for _ in range(2):
        env.node_rpc("evm_mine")
    outcome = ok(env.client.post(path, json={}, headers=env.headers("hrss", key)))
    assert outcome["status"] == "concluded"
    assert outcome["agreement"]["id"] == relayed.event("AgreementConcluded").args["agreementId"]


def test_a_lost_write_whose_nonce_the_node_used_without_it_is_reported_and_not_signed_again(
    journal_env: JournalEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """The node restarted from a state holding a lost block's effects without the block (anvil's own state
    save, see node/statekeeper.py): its nonce counts as used, by no transaction. The acknowledged write can
    never be mined again, and signing it again could record it twice: it is reported lost, not re-signed."""
    env = journal_env
    hrss = env.setup.keystore.address("dept-hrss")
    ledger = env.app.state.dxl.ledger
    with caplog.at_level(logging.ERROR, logger="dxl.api.journal"):
        # No reconciliation between the lost block and its nonce used (the restart does both at once).
        with ledger.reconciler._lock:
            snapshot = env.node_rpc("evm_snapshot")
            tx_hash = ok(env.register("hrss", "used-nonce-1"), 201)["transaction"]["hash"]
            assert env.node_rpc("evm_revert", snapshot) is True
            with env.sessions()() as session:
                nonce = session.scalar(
                    select(JournaledTransaction.nonce).where(JournaledTransaction.tx_hash == tx_hash)
                )
            assert nonce is not None and env.sent_by("hrss") == nonce
            env.node_rpc("anvil_setNonce", hrss, hex(nonce + 1))  # used, by no transaction
            before = env.resource_count()
        ledger.sender.on_chain_changed()

        def superseded() -> bool:
            with env.sessions()() as session:
                status = session.scalar(
                    select(JournaledTransaction.status).where(JournaledTransaction.tx_hash == tx_hash)
                )
            return status == TxStatus.SUPERSEDED

        _until(superseded)
    assert any(tx_hash in r.getMessage() and "lost" in r.getMessage() for r in caplog.records)
    assert env.sent_by("hrss") == nonce + 1 and env.resource_count() == before  # nothing signed again


def test_a_lost_write_the_lagging_pool_refuses_as_nonce_too_low_is_sent_again_and_mined_once(
    journal_env: JournalEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """geth's pool judges nonces by the old head's state for a moment after a reorganisation: the re-sent
    write of the lost block is answered "nonce too low" although the chain has its nonce free. That is no
    proof the write is lost: it is sent again at a later pass, mined once, and answers its id unchanged."""
    env = journal_env
    hrss = env.setup.keystore.address("dept-hrss")
    before, body = env.resource_count(), _resource()
    with caplog.at_level(logging.ERROR, logger="dxl.api.journal"):
        snapshot = env.node_rpc("evm_snapshot")
        first = ok(env.register("hrss", "lagging-pool-1", body), 201)
        tx_hash = first["transaction"]["hash"]
        sends = env.proxy.sends
        env.proxy.refuse_sends = 1  # the reconciler's first re-send, as the lagging pool answers it
        assert env.node_rpc("evm_revert", snapshot) is True

        def mined() -> bool:
            with env.sessions()() as session:
                status = session.scalar(
                    select(JournaledTransaction.status).where(JournaledTransaction.tx_hash == tx_hash)
                )
            return status == TxStatus.MINED

        _until(lambda: env.proxy.refuse_sends == 0)  # the lost block seen, its write re-sent and refused
        _until(mined)  # healed, by a later send of the same bytes
    refused_then_mined = env.proxy.raw_sent[sends:]
    assert len(refused_then_mined) >= 2
    assert {"0x" + keccak(hexstr=raw).hex() for raw in refused_then_mined} == {tx_hash}  # never signed again
    assert not [r for r in caplog.records if tx_hash in r.getMessage()]  # not reported lost
    again = ok(env.register("hrss", "lagging-pool-1", body), 201)
    assert again["transaction"]["hash"] == tx_hash and again["record"] == first["record"]
    assert env.resource_count() == before + 1  # mined once
    assert env.sent_by("hrss") == env.setup.client.mined_nonce(hrss)


def _status(env: JournalEnv, tx_hash: str) -> TxStatus | None:
    with env.sessions()() as session:
        status = session.scalar(
            select(JournaledTransaction.status).where(JournaledTransaction.tx_hash == tx_hash)
        )
    return None if status is None else TxStatus(status)


def test_a_retry_whose_bytes_the_lagging_pool_refuses_as_nonce_too_low_is_pending_not_signed_again(
    journal_env: JournalEnv,
) -> None:
    """A write's send never reached the node (409 TRANSACTION_PENDING). Its key's retry sends the same bytes
    to a node whose pool lags behind its head (after a reorganisation, or on the node a failover moved to) and
    answers "nonce too low" while the chain has the nonce free. No proof the bytes can never be mined: the
    pool may yet mine them, and a new signature would then be a second write. The retry answers 409
    TRANSACTION_PENDING for the same transaction, and the next one gets it mined and answers it."""
    env = journal_env
    hrss = env.setup.keystore.address("dept-hrss")
    before, body = env.resource_count(), _resource()
    with env.watcher_asleep():  # no re-send of the watcher's between the requests: the retry meets the pool
        env.proxy.swallow_sends = 1
        first = env.register("hrss", "lagging-retry-1", body)
        assert first.status_code == 409 and first.json()["error"]["code"] == "TRANSACTION_PENDING", first.text
        tx_hash = first.json()["error"]["tx_hash"]
        sends = env.proxy.sends
        env.proxy.refuse_sends = 1  # the retry's send, as the lagging pool answers it
        retry = env.register("hrss", "lagging-retry-1", body)
        assert env.proxy.refuse_sends == 0
        assert retry.status_code == 409 and retry.json()["error"]["code"] == "TRANSACTION_PENDING", retry.text
        assert retry.json()["error"]["tx_hash"] == tx_hash and _status(env, tx_hash) is TxStatus.SENT
    again = ok(env.register("hrss", "lagging-retry-1", body), 201)
    assert again["transaction"]["hash"] == tx_hash
    assert {"0x" + keccak(hexstr=raw).hex() for raw in env.proxy.raw_sent[sends:]} == {tx_hash}
    assert env.resource_count() == before + 1  # mined once
    assert env.sent_by("hrss") == env.setup.client.mined_nonce(hrss)


def test_a_write_never_seen_mined_the_lagging_pool_refuses_is_sent_again_not_given_up(
    journal_env: JournalEnv,
) -> None:
    """The watcher re-sends a write whose send never reached the node, to a pool that answers "nonce too low"
    while the chain has its nonce free. The write is not marked never minable (its key's retry would then
    sign it again while the pool may still mine it): a later look sends the same bytes again, and the retry
    of the key answers it."""
    env = journal_env
    hrss = env.setup.keystore.address("dept-hrss")
    watcher = env.app.state.dxl.extra["chain_watcher"]
    before, body = env.resource_count(), _resource()
    env.proxy.swallow_sends = 1
    first = env.register("hrss", "lagging-resend-1", body)
    assert first.status_code == 409, first.text
    tx_hash = first.json()["error"]["tx_hash"]
    sends = env.proxy.sends
    env.proxy.refuse_sends = 1  # the watcher's first re-send, as the lagging pool answers it
    watcher.stale_after = 0.5
    try:
        _until(lambda: env.proxy.refuse_sends == 0)
        _until(lambda: _status(env, tx_hash) is TxStatus.MINED)  # by a later re-send of the same bytes
    finally:
        watcher.stale_after = STALE_AFTER_S
    assert {"0x" + keccak(hexstr=raw).hex() for raw in env.proxy.raw_sent[sends:]} == {tx_hash}
    again = ok(env.register("hrss", "lagging-resend-1", body), 201)
    assert again["transaction"]["hash"] == tx_hash
    assert env.resource_count() == before + 1
    assert env.sent_by("hrss") == env.setup.client.mined_nonce(hrss)


def test_a_nonce_used_only_above_the_confirmation_depth_proves_nothing_and_the_retry_is_pending(
    journal_env: JournalEnv, tmp_path: Path
) -> None:
    """With a confirmation depth (Clique, where the last blocks may be reorganised), another transaction of
    the key took a journaled write's nonce in the newest block: the node refuses the write's bytes as "nonce
    too low", and the count at the head is past their nonce. That block may be replaced by one without it,
    and the bytes mined after all: the retry of the key is 409 TRANSACTION_PENDING, not a new signature, and
    once the block is reorganised away the same bytes are mined and answered."""
    env = journal_env
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    sessions = session_factory(engine)
    client = LedgerClient(env.node.endpoint, [], receipt_timeout=10)
    sender = JournaledSender(client, Journal(lambda: sessions), confirmations=2)
    account = Account.create()
    env.node_rpc("anvil_setBalance", account.address, hex(10**18))
    try:
        journaled = client.sign(
            account, client.build(account.address, "", to=account.address, value=0, gas=21_000), 0
        )
        sender.journal.record(journaled, claim=None, finish=None)  # its send never reached the node
        snapshot = env.node_rpc("evm_snapshot")
        elsewhere = client.build(account.address, "", to=Account.create().address, value=0, gas=21_000)
        taken = client.sign(account, elsewhere, 0)
        client.send_signed(taken)  # another client of the key
        _until(lambda: client.receipt(taken.tx_hash) is not None)
        head, holder = client.block_number(), to_checksum_address(account.address)
        assert [client.w3.eth.get_transaction_count(holder, head - d) for d in (0, 2)] == [1, 0]
        entry = sender.journal.entry(journaled.tx_hash)
        assert entry is not None
        with pytest.raises(ApiError) as refused:
            sender.resume(entry)
        assert refused.value.code == "TRANSACTION_PENDING"
        assert refused.value.details["tx_hash"] == journaled.tx_hash
        assert sender.journal.entry(journaled.tx_hash) == entry  # still sent: nothing proven

        assert env.node_rpc("evm_revert", snapshot) is True  # the newest block is reorganised away
        resumed: list[Any] = []
        retry = threading.Thread(target=lambda: resumed.append(sender.resume(entry)), daemon=True)
        retry.start()
        _until(lambda: client.receipt(journaled.tx_hash) is not None)
        env.node_rpc("evm_mine")
        env.node_rpc("evm_mine")
        retry.join(30)
        assert resumed and resumed[0].tx_hash == journaled.tx_hash
        mined = sender.journal.entry(journaled.tx_hash)
        assert mined is not None and mined.status is TxStatus.MINED
        assert client.receipt(taken.tx_hash) is None  # the key's one transaction at that nonce
    finally:
        engine.dispose()


# --- cause 2: the nonce gap lost blocks leave ---------------------------------------------------------------


def test_writes_after_lost_blocks_do_not_wait_behind_a_nonce_gap(journal_env: JournalEnv) -> None:
    env = journal_env
    snapshot = env.node_rpc("evm_snapshot")
    ok(env.register("hrss", "gap-1"), 201)
    env.node_rpc("evm_revert", snapshot)
    started = time.monotonic()
    later = env.client.post("/resources", json=_resource(), headers=env.headers("hrss", "gap-2"), timeout=20)
    assert later.status_code == 201, later.text  # not a 60 s wait ending in 409 TRANSACTION_PENDING
    assert time.monotonic() - started < 10
    _until(lambda: env.sent_by("hrss") == env.setup.client.w3.eth.get_transaction_count(
        to_checksum_address(env.setup.keystore.address("dept-hrss")), "latest"))  # fmt: skip


# --- cause 3: a lost answer to eth_sendRawTransaction -------------------------------------------------------


def test_a_lost_send_answer_records_once(journal_env: JournalEnv) -> None:
    env = journal_env
    before, sent = env.resource_count(), env.sent_by("civil")
    env.proxy.lose_sends = 1
    body = _resource()
    first = env.register("civil", "lost-answer-1", body)
    retry = env.register("civil", "lost-answer-1", body)
    assert first.status_code == 201, first.text
    assert retry.json() == first.json()
    assert env.resource_count() == before + 1 and env.sent_by("civil") == sent + 1


# --- cause 4: claims of a crashed API process ---------------------------------------------------------------


def test_a_crashed_process_s_claim_is_finished_by_the_retry_at_once(journal_env: JournalEnv) -> None:
    """A process journaled and sent a write, then died before answering (here: its send never reached the
    node). The next process reconciles at start; the client's retry finishes that transaction — no wait for
    a timeout, no second transaction."""
    env = journal_env
    before, sent = env.resource_count(), env.sent_by("samr")
    body = json.dumps(_resource()).encode()
    dead = ClaimOwner()
    store = IdempotencyStore(env.sessions(), dead)
    principal = "department:SAMR"
    claim = store.claim(principal, "crash-1", fingerprint("POST", "/resources", b"", body))
    assert isinstance(claim, Claim)
    service = connect_ledger(env.settings, env.sessions).bound(claim)
    account = service.department_account(
        service.department_id_of(Principal(Role.DEPARTMENT, department="SAMR"))
    )
    data = json.loads(body)
    request = service.client.build(
        account.address, "registerResource", bytes.fromhex(data["metadata_hash"][2:]),
        bytes.fromhex(data["schema_hash"][2:]), 1, 1,
    )  # fmt: skip
    env.proxy.swallow_sends = 1
    finish = Finish("resource", event="ResourceRegistered", arg="resourceId").as_json()
    with pytest.raises(ApiError) as info:
        service.sender.send(account, request, claim=claim, finish=finish)
    assert info.value.code == "TRANSACTION_PENDING"
    journaled = info.value.details["tx_hash"]
    # The process is gone; its claim row still says it works on the key.
    restarted = create_app(env.settings.model_copy(update={"chain_watch_interval": 0}), idempotency_wait=1)
    with (
        ServerThread(restarted) as url,
        httpx.Client(base_url=url, timeout=30, verify=tls_context()) as client,
    ):
        started = time.monotonic()
        response = client.post(
            "/resources", content=body,
            headers={**env.headers("samr", "crash-1"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 10
    assert response.json()["transaction"]["hash"] == journaled
    assert env.resource_count() == before + 1 and env.sent_by("samr") == sent + 1


def test_a_crashed_process_s_demand_is_finished_by_the_retry(journal_env: JournalEnv) -> None:
    """The same for a write to the sharing practice contract: the retry answers the journaled demand, decoded
    with that contract's events, and no second demand is published."""
    env = journal_env
    document = {"title": "t", "purpose": "p", "legal_basis": "l"}
    body = json.dumps({"document": document, "due_by": 2**40}).encode()
    dead = ClaimOwner()
    claim = IdempotencyStore(env.sessions(), dead).claim(
        "department:SAMR", "crash-demand", fingerprint("POST", "/demands", b"", body)
    )
    assert isinstance(claim, Claim)
    service = connect_ledger(env.settings, env.sessions).bound(claim)
    assert service.practice is not None
    before = int(service.practice.client.call("demandCount"))
    account = service.department_account(
        service.department_id_of(Principal(Role.DEPARTMENT, department="SAMR"))
    )
    digest = bytes.fromhex(service.documents.put(document)[2:])  # stored, as before the sending
    request = service.practice.client.build(account.address, "publishDemand", digest, 0, 2**40)
    env.proxy.swallow_sends = 1
    finish = Finish("practice.demand", event="DemandPublished", arg="demandId").as_json()
    with pytest.raises(ApiError) as info:
        service.sender.send(account, request, claim=claim, finish=finish)
    journaled = info.value.details["tx_hash"]
    restarted = create_app(env.settings.model_copy(update={"chain_watch_interval": 0}), idempotency_wait=1)
    with (
        ServerThread(restarted) as url,
        httpx.Client(base_url=url, timeout=30, verify=tls_context()) as client,
    ):
        response = client.post(
            "/demands", content=body,
            headers={**env.headers("samr", "crash-demand"), "Content-Type": "application/json"},
        )  # fmt: skip
    assert response.status_code == 201, response.text
    written = response.json()
    assert written["transaction"]["hash"] == journaled
    assert written["record"]["id"] == before + 1 and written["record"]["document"] == document
    assert int(service.practice.client.call("demandCount")) == before + 1


# --- twins of a key in one process -------------------------------------------------------------------------


def test_a_twin_does_not_take_over_a_claim_whose_id_a_released_claim_had(journal_env: JournalEnv) -> None:
    """A key sent twice at once while writes are held (the node came back, the journal is being reconciled),
    its claim inserted as another request's claim is released (its 422, or a 503 with nothing sent) under the
    same row id: SQLite gives a deleted row's id to the next row. The release used to deactivate that id after
    the new claim had activated it, so the twin read the running claim as abandoned, took it over, and both
    signed: two resources for one key, as a full reliability run recorded one access request twice. The
    moment between the release's commit and its end is reached with a session event; nothing is replaced."""
    env = journal_env
    sessions, sender = env.sessions(), env.app.state.dxl.ledger.sender
    before = env.resource_count()
    body = _resource()
    answers: dict[str, list[httpx.Response]] = {"first": [], "twin": []}

    def post(who: str) -> threading.Thread:
        thread = threading.Thread(target=lambda: answers[who].append(env.register("hrss", "twin-1", body)))
        thread.start()
        return thread

    def claimed() -> bool:
        with sessions() as session:
            found = session.scalar(select(IdempotencyRecord.id).where(IdempotencyRecord.key == "twin-1"))
        return found is not None

    released: list[tuple[Session, int]] = []
    threads: list[threading.Thread] = []

    def note_release(session: Session, _: object) -> None:
        released.extend(
            (session, r.id) for r in session.deleted if isinstance(r, IdempotencyRecord) and r.key == "gone-1"
        )

    def first_claims_meanwhile(session: Session) -> None:
        if released and released[0][0] is session and not threads:
            threads.append(post("first"))
            # Its claim is inserted now, or (with the release and the insert under one lock) once the release
            # is over.
            with contextlib.suppress(AssertionError):
                _until(claimed, timeout=1.5)

    event.listen(sessions, "after_flush", note_release)
    event.listen(sessions, "after_commit", first_claims_meanwhile)
    try:
        with env.watcher_asleep():
            sender.hold()  # what the watcher does from seeing the node back until the journal is reconciled
            try:
                gone = env.client.post("/resources", json={"share_type": "conditional"},
                                       headers=env.headers("hrss", "gone-1"))  # fmt: skip
                assert gone.status_code == 422, gone.text
                _until(claimed)
                twin = post("twin")
                time.sleep(0.5)  # the twin claims the key meanwhile, the first waiting for sends to resume
            finally:
                sender.resume_sending()
            for thread in [*threads, twin]:
                thread.join(30)
    finally:
        event.remove(sessions, "after_flush", note_release)
        event.remove(sessions, "after_commit", first_claims_meanwhile)
    with sessions() as session:
        row = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "twin-1"))
    assert row is not None and [i for _, i in released] == [row.id]  # the id reused: the ground of the race
    first, second = answers["first"][0], answers["twin"][0]
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json() == second.json()
    assert env.resource_count() == before + 1


# --- cause 5: sessions held while waiting for the chain -----------------------------------------------------


def test_reads_stalled_on_the_node_hold_no_database_connection(journal_env: JournalEnv) -> None:
    """16+ reads wait on a node paused with SIGSTOP; a request that needs only the database still answers at
    once (the pool holds 15 connections), and once the node resumes every read answers 200."""
    env = journal_env
    pid = env.node.pid
    assert pid is not None
    statuses: list[int] = []
    os.kill(pid, signal.SIGSTOP)
    try:

        def read() -> None:
            # A look-up reads the chain (lists read the audit index, which needs no node).
            statuses.append(env.client.get("/departments", headers=env.headers("psb")).status_code)

        readers = [threading.Thread(target=read) for _ in range(20)]
        for reader in readers:
            reader.start()
        time.sleep(0.5)
        # Authenticated, claimed under a key and refused by validation: database only, no chain.
        probe = env.client.post(
            "/resources", json={"share_type": "nonsense"}, headers=env.headers("psb", "probe-1"), timeout=5
        )
        assert probe.status_code == 422, probe.text
    finally:
        os.kill(pid, signal.SIGCONT)
    for reader in readers:
        reader.join(timeout=60)
    assert statuses == [200] * 20


# --- an unavailable database --------------------------------------------------------------------------------


def test_database_unavailable_is_a_503_and_sends_nothing(journal_env: JournalEnv, tmp_path: Path) -> None:
    env = journal_env
    state = env.app.state.dxl
    working, sent, before = state.sessions, env.sent_by("psb"), env.resource_count()
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'dxl.sqlite3'}")
    state.sessions = session_factory(gone)
    try:
        for key in ("down-1", None):
            response = env.register("psb", key)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    finally:
        state.sessions = working
        gone.dispose()
    assert env.sent_by("psb") == sent and env.resource_count() == before
    ok(env.register("psb", "down-1"), 201)  # the retry, once the database is back, records once


def test_a_journal_that_cannot_be_written_sends_nothing(journal_env: JournalEnv, tmp_path: Path) -> None:
    env = journal_env
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'dxl.sqlite3'}")
    client = env.setup.client
    sender = JournaledSender(client, Journal(lambda: session_factory(gone)))
    account = env.setup.keystore.unlock("dept-civil")
    request = client.build(account.address, "", to=account.address, value=0, gas=21_000)
    node_next = client.pending_nonce(account.address)
    with pytest.raises(ApiError) as info:
        sender.send(account, request, claim=None, finish=None)
    gone.dispose()
    assert info.value.code == "DATABASE_UNAVAILABLE"
    assert client.pending_nonce(account.address) == node_next  # nothing sent
    assert client.nonces.peek(account.address) in (None, node_next)  # and the nonce was given back


def test_a_full_disk_after_the_write_was_mined_loses_nothing(journal_env: JournalEnv) -> None:
    """The disk fills up (a file-size limit on this process: SQLite answers "database or disk is full") right
    after the node got the transaction: the journal cannot record where it was mined, so the write is not
    answered 201 yet (a lost block would re-send it out of its first order, and the id answered would go)
    but 409 TRANSACTION_PENDING naming the transaction, and the retry of its key, once there is room again,
    answers 201 without a second transaction — instead of a 500 and a key left claimed."""
    env = journal_env
    before, sent = env.resource_count(), env.sent_by("health")
    body = _resource()
    with full_disk(at_once=False) as fill:

        def after_send() -> None:
            env.proxy.after_send = None
            fill()

        env.proxy.after_send = after_send
        try:
            first = env.register("health", "full-1", body)
        finally:
            env.proxy.after_send = None
    assert first.status_code == 409, first.text
    error = first.json()["error"]
    assert error["code"] == "TRANSACTION_PENDING" and "could not record" in error["message"], error
    with env.sessions()() as session:
        claim = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "full-1"))
    assert claim is not None and claim.status_code is None  # its completion did not fit on the disk
    retry = ok(env.register("health", "full-1", body), 201)
    assert retry["transaction"]["hash"] == error["tx_hash"]
    assert env.resource_count() == before + 1 and env.sent_by("health") == sent + 1


def _registered_id(result: Any) -> int:
    return int(result.event("ResourceRegistered").args["resourceId"])


def _register_in_one_block(env: JournalEnv, who: list[str]) -> list[str]:
    """Each of ``who`` registers a resource through the journal, mined in one block (automine off)."""
    sender = env.app.state.dxl.ledger.sender
    sent = []
    for name in who:
        account = env.setup.keystore.unlock(f"dept-{name}")
        request = sender.client.build(
            account.address, "registerResource", os.urandom(32), os.urandom(32), 1, 1
        )
        sent.append(sender.send(account, request, claim=None, finish=None).tx_hash)
    env.node_rpc("evm_mine")
    return sent


def test_writes_answered_after_a_full_disk_keep_their_ids_when_the_node_loses_their_blocks(
    journal_env: JournalEnv,
) -> None:
    """Three departments register a resource each in one block, then another each in the next; the disk is
    full while the first block's receipts are seen (as in a full make reliability run: a full disk, then the
    node killed). Answered then, the first block's order was not in the journal: the node losing both
    blocks, the journal re-sent the second block's writes first, the node held each department's behind its
    nonce gap and mined it right after the department's first write once that came — and ids answered went
    to other resources. A write is answered only once its block's order, and that of the blocks before it,
    is journaled: every id answered is the chain's again, and the first block's writes, pending on the full
    disk, answer their first ids on retry."""
    env = journal_env
    sender = env.app.state.dxl.ledger.sender
    client = sender.client
    who = ["psb", "hrss", "health"]
    snapshot = env.node_rpc("evm_snapshot")
    env.node_rpc("evm_setAutomine", False)
    try:
        first = _register_in_one_block(env, who)
        answered: dict[str, int] = {}
        with full_disk():
            for tx_hash in first:
                with pytest.raises(ApiError) as pending:
                    sender.wait(tx_hash)
                assert pending.value.code == "TRANSACTION_PENDING", pending.value
        second = _register_in_one_block(env, who)
        answered |= {tx_hash: _registered_id(sender.wait(tx_hash)) for tx_hash in second}
    finally:
        env.node_rpc("evm_setAutomine", True)
    mined = {h: _registered_id(client.outcome(client.receipt(h))) for h in first + second}
    assert mined == {h: mined[first[0]] + i for i, h in enumerate(first + second)}  # numbered as sent
    assert env.node_rpc("evm_revert", snapshot) is True  # the node loses both blocks
    _until(lambda: all(client.receipt(h) is not None for h in first + second))  # the watcher re-sends them
    _until(lambda: sender.gate() is False)  # reconciled
    again = {h: _registered_id(client.outcome(client.receipt(h))) for h in first + second}
    assert {h: again[h] for h in answered} == answered  # every id answered is the chain's
    assert again == mined  # mined again in their first order
    for tx_hash in first:  # the retry of a write left pending answers its first id
        entry = sender.journal.entry(tx_hash)
        assert entry is not None
        result = sender.resume(entry)
        assert result is not None and _registered_id(result) == mined[tx_hash]


def test_a_write_answered_before_an_earlier_block_was_looked_at_keeps_its_id_when_both_are_lost(
    journal_env: JournalEnv,
) -> None:
    """One department's write is mined in a block, another's in the next, and the second is awaited and
    answered first, before any request looked at the first block (threads answer in any order). The node then
    loses both blocks. Placed in the journal only when its own request saw it, the first block's write had no
    place yet and was re-sent after the second, which took its resource id: the id answered went to another
    record. The answer waits until every block up to its own is placed."""
    env = journal_env
    sender = env.app.state.dxl.ledger.sender
    client = sender.client
    snapshot = env.node_rpc("evm_snapshot")
    env.node_rpc("evm_setAutomine", False)
    try:
        (earlier,) = _register_in_one_block(env, ["psb"])
        (later,) = _register_in_one_block(env, ["hrss"])
        answered = _registered_id(sender.wait(later))
    finally:
        env.node_rpc("evm_setAutomine", True)
    assert _registered_id(client.outcome(client.receipt(earlier))) == answered - 1
    assert env.node_rpc("evm_revert", snapshot) is True  # the node loses both blocks
    _until(lambda: all(client.receipt(h) is not None for h in (earlier, later)))  # the watcher re-sends them
    _until(lambda: sender.gate() is False)
    assert _registered_id(client.outcome(client.receipt(later))) == answered
    assert _registered_id(client.outcome(client.receipt(earlier))) == answered - 1


def test_a_full_disk_before_the_write_is_a_503_and_sends_nothing(journal_env: JournalEnv) -> None:
    """The disk is full when the write arrives (a file-size limit on this process): its key cannot be claimed
    nor its transaction journaled, so it is answered 503 DATABASE_UNAVAILABLE with nothing sent and nothing
    left under the key; once there is room, the retry of the key records the write once."""
    env = journal_env
    before, sent = env.resource_count(), env.sent_by("psb")
    body = _resource()
    with full_disk():
        full = env.register("psb", "full-before-1", body)
    assert full.status_code == 503, full.text
    assert full.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert env.sent_by("psb") == sent and env.resource_count() == before
    with env.sessions()() as session:
        assert (
            session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "full-before-1")) is None
        )
    ok(env.register("psb", "full-before-1", body), 201)
    assert env.resource_count() == before + 1 and env.sent_by("psb") == sent + 1


def test_a_nonce_taken_by_another_client_of_the_key_is_signed_again_once(journal_env: JournalEnv) -> None:
    """Another client of the same key (a CLI, the receipts anchorer) used the nonce the API counted on: the
    node does not hold the API's bytes, so they can never be mined, and the write is signed again — once."""
    env = journal_env
    ok(env.register("psb", None), 201)  # the API now counts PSB's nonces itself
    psb = env.setup.keystore.unlock("dept-psb")
    env.setup.client.transfer(psb, psb.address, 0)  # behind the API's back
    before, sent = env.resource_count(), env.sent_by("psb")
    response = ok(env.register("psb", "taken-1"), 201)
    assert env.resource_count() == before + 1 and env.sent_by("psb") == sent + 1
    with env.sessions()() as session:
        statuses = sorted(
            session.scalars(
                select(JournaledTransaction.status).where(
                    JournaledTransaction.sender == psb.address,
                    JournaledTransaction.nonce >= sent - 1,
                )
            )
        )
    assert statuses == [TxStatus.MINED, TxStatus.SUPERSEDED]
    assert response["transaction"]["hash"]


def test_a_write_journaled_while_the_node_was_unreachable_is_sent_when_it_comes_back(
    journal_env: JournalEnv,
) -> None:
    """The node becomes unreachable as the write is sent: the client hears 409 TRANSACTION_PENDING with the
    hash, the node comes back, the watcher re-sends the journaled bytes without any retry, and the retry of
    the key answers the mined write."""
    env = journal_env
    before = env.resource_count()
    env.proxy.swallow_sends, env.proxy.down_after_swallow = 1, True
    body = _resource()
    try:
        first = env.register("civil", "unreachable-1", body)
        assert first.status_code == 409, first.text
        assert first.json()["error"]["code"] == "TRANSACTION_PENDING"
        time.sleep(0.3)  # the watcher sees the node unreachable
    finally:
        env.proxy.down = env.proxy.down_after_swallow = False
    tx_hash = first.json()["error"]["tx_hash"]
    _until(lambda: env.setup.client.receipt(tx_hash) is not None)
    again = ok(env.register("civil", "unreachable-1", body), 201)
    assert again["transaction"]["hash"] == tx_hash and env.resource_count() == before + 1


def test_a_transaction_the_node_no_longer_holds_is_re_sent_without_any_retry(journal_env: JournalEnv) -> None:
    """The node lost a sent, unmined transaction but no block (restarted from a state holding every mined
    block; here the send never reached it). Nothing looks moved, yet later nonces of the key would wait behind
    it: the watcher re-sends journaled transactions that stay unmined, and the key's retry answers."""
    env = journal_env
    watcher = env.app.state.dxl.extra["chain_watcher"]
    before = env.resource_count()
    body = _resource()
    env.proxy.swallow_sends = 1
    watcher.stale_after = 0.5
    try:
        first = env.register("samr", "dropped-1", body)
        assert first.status_code == 409, first.text
        tx_hash = first.json()["error"]["tx_hash"]
        _until(lambda: env.setup.client.receipt(tx_hash) is not None)
    finally:
        watcher.stale_after = STALE_AFTER_S
    again = ok(env.register("samr", "dropped-1", body), 201)
    assert again["transaction"]["hash"] == tx_hash and env.resource_count() == before + 1


def test_the_watcher_outlives_a_failed_look_and_sends_are_not_held(
    journal_env: JournalEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reconciliation fails with an error nobody planned for, after it held new sends (here a KeyError, as
    reading ``os.environ`` while another thread changes it raised): the watcher keeps looking, reconciles at
    its next look, and a write goes through at once instead of waiting out the receipt timeout."""
    env = journal_env
    watcher = env.app.state.dxl.extra["chain_watcher"]
    real, failures = watcher.reconciler.reconcile, list[int]()

    def fails_once() -> object:
        if not failures:
            failures.append(1)
            raise KeyError("PYTEST_CURRENT_TEST")
        return real()

    monkeypatch.setattr(watcher.reconciler, "reconcile", fails_once)
    with caplog.at_level(logging.ERROR, logger="dxl.api.journal"):
        watcher._down = True  # the next look reconciles
        _until(lambda: bool(failures), timeout=5)
        started = time.monotonic()
        ok(env.register("civil", None), 201)
    assert time.monotonic() - started < env.setup.client.receipt_timeout / 2
    assert watcher._thread.is_alive()
    assert any("chain watcher's look failed" in r.getMessage() for r in caplog.records)


# --- receipt anchors the contract refused, then the node lost their blocks ----------------------------------


class _Waves:
    """Receipts of one grant posted in waves, each wave anchored in a batch of its own, and what the service
    and the chain say of them."""

    def __init__(self, env: JournalEnv, grant: dict[str, Any], sizes: tuple[int, ...]) -> None:
        self.env, self.grant_id = env, grant["id"]
        self.anchors = env.app.state.dxl.extra["receipts"].anchors
        self.bodies = [[receipt_body(grant) for _ in range(n)] for n in sizes]

    def post(self, wave: int) -> None:
        ok(self.env.call("POST", "/receipts", "psb", json={"receipts": self.bodies[wave]}), 202)

    def views(self, wave: int) -> list[dict[str, Any]]:
        ids = [r["delivery_id"] for r in self.bodies[wave]]
        return list(
            ok(self.env.call("POST", "/receipts/lookup", "auditor", json={"delivery_ids": ids}))["receipts"]
        )

    def on_chain(self, view: dict[str, Any]) -> bool:
        """Whether the chain holds the receipt where its proof says."""
        if not view["proof"]:
            return False
        proof = ReceiptProof.from_json(view["proof"])
        return bool(self.anchors.call("receiptIncluded", self.grant_id, proof.first_sequence,
                                      proof.receipt.as_tuple(), proof.index, list(proof.proof)))  # fmt: skip

    def settled(self, *refused: int) -> bool:
        """Each wave's status is what the chain holds: the ``refused`` waves not anchored, the others final,
        each receipt where its proof says, once (the grant's batches hold exactly their receipts)."""
        anchored = [w for w in range(len(self.bodies)) if w not in refused]
        return (
            all({v["status"] for v in self.views(w)} == {"refused"} for w in refused)
            and all(
                {v["status"] for v in views} == {"final"} and all(self.on_chain(v) for v in views)
                for views in map(self.views, anchored)
            )
            and int(self.anchors.call("nextSequence", self.grant_id))
            == sum(len(self.bodies[w]) for w in anchored)
        )


def _suspension(env: JournalEnv, department: int) -> list[dict[str, Any]]:
    """A governor's approvals that suspend and reinstate active ``department`` (proposals made through the
    service, approvals to send past it: the journal does not know them)."""
    client, governor = env.setup.client, env.setup.keystore.unlock("governor-2")

    def propose(action: str) -> int:
        body = {"action": action, "department_id": department}
        return int(
            ok(env.call("POST", "/governance/proposals", "governor-1", json=body), 201)["record"]["id"]
        )

    def carry(action: str) -> None:
        ok(env.call("POST", f"/governance/proposals/{propose(action)}/approve", "governor-2"))

    # A reinstatement is proposed only while the department is suspended: it is suspended and reinstated
    # through the service around that proposal.
    carry("suspend_department")
    reinstatement = propose("reinstate_department")
    carry("reinstate_department")
    proposals = [propose("suspend_department"), reinstatement]
    # Gas given, not estimated: the reinstatement is estimated to revert while the department is active.
    return [client.build(str(governor.address), "approve", pid, gas=500_000) for pid in proposals]


def _in_pool(env: JournalEnv) -> int:
    return int(str(env.node_rpc("txpool_status")["pending"]), 16)  # type: ignore[index]


def test_lost_blocks_never_mine_again_an_anchor_whose_receipts_were_refused_or_batched_again(
    journal_env: JournalEnv,
) -> None:
    """A grant's consumer is suspended by a governor's approval sent past the service, in the block of the
    grant's first anchor and ahead of it, and reinstated in the same block behind it; a second anchor sent
    behind the first fails out of sequence. The first batch's receipts read refused; the second's are batched
    again into the slot the first left, and anchored. Then the node loses those blocks: the journal re-sends
    what it had journaled, in its first order, and the approvals, never journaled here, are gone. Re-sent as
    they were, the two anchors the service had given up would now be mined (nothing refuses them any more):
    the refused receipts on chain while the service calls them refused (posted again, they would be anchored
    a second time), the second batch's receipts anchored at another slot than the one their proofs name. Their
    nonces are filled by transfers of nothing instead; every receipt's status matches the chain, and the
    refused receipts, posted again, are anchored once."""
    env = journal_env
    civil = env.setup.report.departments["CIVIL"]
    waves = _Waves(env, grant_between(env, "psb", "civil"), (3, 2))  # type: ignore[arg-type]
    journal = env.app.state.dxl.ledger.sender.journal
    client, governor = env.setup.client, env.setup.keystore.unlock("governor-2")
    suspend, reinstate = _suspension(env, civil)
    snapshot = env.node_rpc("evm_snapshot")
    env.node_rpc("evm_setAutomine", False)
    try:
        client.submit(governor, suspend)
        for wave, then in ((0, reinstate), (1, None)):
            waiting = _in_pool(env)
            waves.post(wave)  # the consumer is active on the head

            def anchor_sent(before: int = waiting) -> bool:
                return _in_pool(env) == before + 1

            _until(anchor_sent)  # its anchor sent
            if then is not None:
                client.submit(governor, then)
        env.node_rpc("evm_mine")
    finally:
        env.node_rpc("evm_setAutomine", True)
    _until(lambda: waves.settled(0), timeout=30)
    assert {v["error"] for v in waves.views(0)} == {"DEPARTMENT_NOT_ACTIVE"}

    assert env.node_rpc("evm_revert", snapshot) is True  # the node loses the anchors and the approvals
    client.nonces.forget(str(governor.address))  # the approvals' nonces are free again: read them anew
    assert ok(env.call("GET", f"/departments/{civil}", "auditor"))["status"] == "active"
    _until(lambda: not journal.unsettled(), timeout=30)  # healed: nothing journaled is still to be mined
    _until(lambda: waves.settled(0))  # and the service's statuses say what the chain holds

    waves.post(0)  # refused receipts posted again
    _until(lambda: waves.settled(), timeout=30)  # each receipt anchored once
    assert not journal.unsettled()


def test_an_anchor_mined_again_after_lost_blocks_and_refused_then_reads_refused(
    journal_env: JournalEnv,
) -> None:
    """A batch was anchored (final); the node loses its block, and before the journal sends the anchor again
    a governor's approval sent past the service suspends the grant's consumer. Mined again, the anchor is
    refused: its receipts read refused with the contract's reason, not final on a chain that does not hold
    them (the anchorer compared its batches with the chain only at its start); posted again once the consumer
    is reinstated, they are anchored once."""
    env = journal_env
    civil = env.setup.report.departments["CIVIL"]
    waves = _Waves(env, grant_between(env, "psb", "civil"), (3,))  # type: ignore[arg-type]
    client, governor = env.setup.client, env.setup.keystore.unlock("governor-2")
    suspend, reinstate = _suspension(env, civil)
    try:
        with env.watcher_asleep():
            snapshot = env.node_rpc("evm_snapshot")
            waves.post(0)
            _until(lambda: waves.settled())
            assert env.node_rpc("evm_revert", snapshot) is True
            client.wait(client.submit(governor, suspend))  # mined ahead of the anchor sent again
        # The watcher wakes and reconciles: the anchor is sent again, and refused.
        _until(lambda: waves.settled(0), timeout=30)
        assert {v["error"] for v in waves.views(0)} == {"DEPARTMENT_NOT_ACTIVE"}
    finally:
        client.wait(client.submit(governor, reinstate))
    outlive_caches(env.app)  # the door's cached grant state, read while suspended, expires
    waves.post(0)
    _until(lambda: waves.settled(), timeout=30)


def test_an_anchor_refused_as_the_service_was_killed_is_never_mined_after_lost_blocks(
    journal_env: JournalEnv, tmp_path: Path
) -> None:
    """The service is killed after the contract refused an anchor (its consumer suspended by an approval sent
    past the service), before it settled the refusal: the anchor is journaled as reverted, not voided, its
    batch closed. The next start sends the batch again, refused again, and voids that one. Then the node loses
    the blocks, the suspension with them: the first anchor, sent again as it was, would be mined, its receipts
    on chain while the service calls them refused. The start voided it too. (Anchorers of their own, on a
    receipt journal of their own, sending through the service's transaction journal.)"""
    env = journal_env
    civil, psb = env.setup.report.departments["CIVIL"], env.setup.report.departments["PSB"]
    gid = int(grant_between(env, "psb", "civil")["id"])  # type: ignore[arg-type]
    client, governor = env.setup.client, env.setup.keystore.unlock("governor-2")
    suspend, _reinstate = _suspension(env, civil)
    ledger = env.app.state.dxl.ledger
    anchors = env.app.state.dxl.extra["receipts"].anchors
    engine = make_engine(f"sqlite:///{tmp_path / 'receipts.sqlite3'}")
    init_db(engine)
    journal_receipts(engine, some_receipts(gid, 2), provider=psb, consumer=civil)

    def anchorer(**overrides: Any) -> Anchorer:
        wiring: dict[str, Any] = {
            "void": journaled_void(ledger.sender),
            "reverted": journaled_reverted(ledger.sender),
            **overrides,
        }
        sender = ledger.sender
        return Anchorer(engine=engine, anchors=anchors, account_of=ledger.department_account, batch_size=2,
                        batch_age=60, submit=journaled_submit(sender), on_receipt=sender.record_receipt,
                        gate=sender.gate, **wiring)  # fmt: skip

    def batch() -> Any:
        with engine.connect() as conn:
            return conn.execute(select(batches_table.c.state, batches_table.c.error)).one_or_none()

    killed: list[str] = []

    def killed_while_voiding(_account: Any, pending: Any) -> bool:
        killed.append(pending.tx_hash)
        first._stop.set()  # the process dies here: nothing after this runs
        raise NodeError("killed")

    snapshot = env.node_rpc("evm_snapshot")
    try:
        client.wait(client.submit(governor, suspend))
        first = anchorer(void=killed_while_voiding)
        first.start()
        _until(lambda: bool(killed), timeout=30)
        first.stop()
        assert tuple(batch()) == ("closed", None)  # the refusal was never settled
        second = anchorer()
        second.start()
        try:
            _until(lambda: batch().state == "refused", timeout=30)  # sent again, refused again
        finally:
            second.stop()
        assert ledger.sender.journal.entry(killed[0]).status is TxStatus.VOIDED
    finally:
        assert env.node_rpc("evm_revert", snapshot) is True  # the suspension is lost with the anchors
        client.nonces.forget(str(governor.address))
    journal = ledger.sender.journal

    def reconciled() -> bool:
        """The first anchor's block found lost: the anchor superseded by its standby (or, sent again, mined),
        and nothing journaled left to mine."""
        entry = journal.entry(killed[0])
        settled = (TxStatus.SUPERSEDED, TxStatus.MINED)
        return entry is not None and entry.status in settled and not journal.unsettled()

    _until(reconciled, timeout=30)
    assert int(anchors.call("nextSequence", gid)) == 0  # neither anchor mined: the receipts are refused
    assert tuple(batch()) == ("refused", "DEPARTMENT_NOT_ACTIVE")
    engine.dispose()


def test_a_write_refused_in_its_block_is_never_mined_after_the_node_loses_that_block(
    journal_env: JournalEnv,
) -> None:
    """A department's write passes the service's checks on the head, and a governor's approval sent past the
    service suspends the department in the block that mines it, ahead of it: the write reverts and the client
    is told so (a 4xx, the key's final answer). Then the node loses that block, the approval with it. Sent
    again as it was, the write would now be mined: on the ledger while its client, and every retry of the
    key, is told it was refused. A transfer of nothing takes its nonce instead; the refusal stays true, and
    the department's next write is not held behind a nonce gap."""
    env = journal_env
    civil = env.setup.report.departments["CIVIL"]
    client, governor = env.setup.client, env.setup.keystore.unlock("governor-2")
    suspend, _reinstate = _suspension(env, civil)
    journal = env.app.state.dxl.ledger.sender.journal
    body, before = _resource(), env.resource_count()
    answers: list[httpx.Response] = []
    snapshot = env.node_rpc("evm_snapshot")
    env.node_rpc("evm_setAutomine", False)
    try:
        client.submit(governor, suspend)
        waiting = _in_pool(env)
        writer = threading.Thread(target=lambda: answers.append(env.register("civil", "refused-1", body)))
        writer.start()
        _until(lambda: _in_pool(env) == waiting + 1)  # the write sent, behind the suspension
        env.node_rpc("evm_mine")
        writer.join(timeout=30)
    finally:
        env.node_rpc("evm_setAutomine", True)
    refused = ok(answers[0], 403) if answers[0].status_code == 403 else ok(answers[0], 409)
    assert refused["error"]["code"] == "DEPARTMENT_NOT_ACTIVE"
    assert env.resource_count() == before
    used = env.sent_by("civil")  # the refused write took a nonce of the department's key

    assert env.node_rpc("evm_revert", snapshot) is True  # the block and the suspension are gone
    # The nonce is free again, unless the service saw the height go down and took it back first.
    assert env.sent_by("civil") in (used - 1, used)
    client.nonces.forget(str(governor.address))
    # Healed: a transaction of the key is mined at that nonce again, and nothing journaled is left to mine.
    _until(lambda: env.sent_by("civil") == used and not _in_pool(env) and not journal.unsettled(), 30)
    assert env.resource_count() == before  # the refused write was not mined
    replay = env.register("civil", "refused-1", body)  # the retry is told what the chain holds: refused
    assert replay.status_code == answers[0].status_code and replay.json() == refused
    ok(env.register("civil", "after-refused-1"), 201)  # no nonce gap: the department writes at once
    assert env.resource_count() == before + 1


def test_a_refused_write_an_earlier_process_left_unvoided_is_voided_at_start(journal_env: JournalEnv) -> None:
    """A database journaled before refused requests were voided (or a process killed between a refusal's
    receipt and its voiding) holds an ordinary write reverted and not voided: should the node lose its block,
    its bytes would be sent again and could be mined where the refusal's cause is gone. The next start voids
    it: a transfer of nothing stands by at its nonce."""
    env = journal_env
    service = connect_ledger(env.settings, env.sessions)
    sender, journal = service.sender, service.sender.journal
    account = service.department_account(
        service.department_id_of(Principal(Role.DEPARTMENT, department="SAMR"))
    )
    # Share type 9 is no ShareType: the ledger refuses it when mined. Gas is given, so nothing estimates it.
    request = service.client.build(
        account.address, "registerResource", bytes.fromhex(b32()[2:]), bytes.fromhex(b32()[2:]), 9, 1,
        gas=300_000,
    )  # fmt: skip
    signed = sender.send(account, request, claim=None, finish=None)
    _until(lambda: service.client.receipt(signed.tx_hash) is not None)
    mined = service.client.receipt(signed.tx_hash)
    assert mined is not None
    sender.record_receipt(signed.tx_hash, mined)  # as the journal once did
    reverted = journal.entry(signed.tx_hash)
    assert reverted is not None and reverted.status is TxStatus.REVERTED

    restarted = create_app(env.settings.model_copy(update={"chain_watch_interval": 0}), idempotency_wait=1)
    with ServerThread(restarted):
        voided = journal.entry(signed.tx_hash)
        assert voided is not None and voided.status is TxStatus.VOIDED
    with env.sessions()() as session:
        standby = session.scalars(
            select(JournaledTransaction).where(
                JournaledTransaction.sender == signed.sender,
                JournaledTransaction.nonce == signed.nonce,
                JournaledTransaction.status == TxStatus.STANDBY.value,
            )
        ).all()
    assert len(standby) == 1 and standby[0].tx_hash != signed.tx_hash


def test_a_write_held_back_by_a_node_without_the_journals_newest_block_names_the_block_and_the_node(
    journal_env: JournalEnv,
) -> None:
    """The gate's 503 says which block holding a journaled transaction the node in use does not hold, and
    which node that is: a node behind and a node that lost the block read alike otherwise. (The node loses
    the block of an acknowledged write and the watcher is kept from reconciling, as one waiting for a node
    that is behind.)"""
    env = journal_env
    sender = env.app.state.dxl.ledger.sender
    wake, timeout = sender.on_chain_changed, sender.client.receipt_timeout
    with env.watcher_asleep():
        snapshot = env.node_rpc("evm_snapshot")
        number = ok(env.register("hrss", "named-1"), 201)["transaction"]["block_number"]
        mined = sender.client.block_hash(number)
        assert env.node_rpc("evm_revert", snapshot) is True
        sender.on_chain_changed, sender.client.receipt_timeout = (lambda: None), 0.2
        try:
            with pytest.raises(ApiError) as refused:
                sender.gate()
        finally:
            sender.on_chain_changed, sender.client.receipt_timeout = wake, timeout
            sender.resume_sending()
    assert refused.value.code == "NODE_UNAVAILABLE"
    named = f"the node {sender.client.rpc_url} does not hold block {number} ({mined})"
    assert named in refused.value.message
    _until(sender.chain_intact)  # reconciled once the watcher looks: the write is mined again


class _HeldBlocks:
    """A ledger client whose block reads wait until :attr:`go` is set: the journal's placer reads a block when
    the test lets it."""

    def __init__(self, client: LedgerClient) -> None:
        self._client = client
        self.go = threading.Event()
        #: The blocks read, as the node held them.
        self.found: list[BlockRef] = []

    def block_transactions(self, number: int) -> Any:
        assert self.go.wait(30)
        found = self._client.block_transactions(number)
        if found is not None:
            self.found.append(found[0])
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("placed_first", [True, False], ids=["placed", "replaced-before-placed"])
def test_a_write_whose_block_is_replaced_at_its_height_by_one_holding_it_again_holds_back_no_write(
    journal_env: JournalEnv, tmp_path: Path, placed_first: bool
) -> None:
    """A Clique signer's block out of turn is replaced, at the same height, by the block in turn holding the
    same transactions. The write awaiting its depth follows its receipt to the new block and the journal's
    row with it; the sender's newest block, kept at the replaced one (the new one is no higher), held every
    later write back (503 NODE_UNAVAILABLE: "does not hold block N") for as long as nothing reconciled: the
    watcher, which had not seen the replaced block as a head, found the journal's newest block held and did
    not. A network run answered every write so for minutes. The block may be replaced before the journal
    placed it (``replaced-before-placed``): the journal places the one the node holds, and the write follows
    its receipt there."""
    env = journal_env
    engine = make_engine(f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    init_db(engine)
    sessions = session_factory(engine)
    client = LedgerClient(env.node.endpoint, [], receipt_timeout=5)
    sender = JournaledSender(client, Journal(lambda: sessions), confirmations=2)
    held = _HeldBlocks(client)
    sender.placer.client = held  # type: ignore[assignment]
    if placed_first:
        held.go.set()
    # Looks only when a send wakes it: it does not see the replaced block as the node's head.
    watcher = ChainWatcher(Reconciler(sender), 3600.0, reconciled=True).start()
    account = Account.create()
    env.node_rpc("anvil_setBalance", account.address, hex(10**18))
    # Placed up to the head, as a running service's journal is: the write's block is the next one read.
    head = client.block_number()
    assert sender.placer.await_placed(BlockRef(head, str(client.block_hash(head))), time.monotonic() + 10)
    env.node_rpc("evm_setAutomine", False)
    try:
        snapshot = env.node_rpc("evm_snapshot")
        request = client.build(account.address, "", to=account.address, value=0, gas=21_000)
        signed = sender.send(account, request, claim=None, finish=None)
        waiting: list[Any] = []
        waiter = threading.Thread(target=lambda: waiting.append(sender.wait(signed.tx_hash)), daemon=True)
        waiter.start()
        env.node_rpc("evm_mine")
        first = BlockRef(client.block_number(), str(client.block_hash(client.block_number())))

        def placed() -> int | None:
            entry = sender.journal.entry(signed.tx_hash)
            return None if entry is None else entry.block_number

        _until(lambda: placed() == first.number)  # the write saw its receipt there
        _until(lambda: not placed_first or first in held.found)  # and the journal placed the block
        # Replaced: the node holds no block at that height for a moment, which a node switching branches
        # does not show (the placer reads the block at that height once it holds one).
        assert env.node_rpc("evm_revert", snapshot) is True
        client.send_signed(signed)  # in the block in turn: same height, another hash
        env.node_rpc("evm_mine", int(client.head_time()) + 7)
        again = BlockRef(client.block_number(), str(client.block_hash(client.block_number())))
        assert again.number == first.number and again.hash != first.hash
        held.go.set()
        env.node_rpc("evm_mine")
        env.node_rpc("evm_mine")
        waiter.join(30)
        assert waiting and waiting[0].block_number == again.number
        with sessions() as session:
            row = session.scalar(
                select(JournaledTransaction).where(JournaledTransaction.tx_hash == signed.tx_hash)
            )
            assert row is not None and (row.block_number, row.block_hash) == (again.number, again.hash)
        assert sender.gate() is False  # the node holds the journal's newest block: nothing to wait for
        assert sender.gate() is False
    finally:
        env.node_rpc("evm_setAutomine", True)
        watcher.stop()
        engine.dispose()


def test_a_service_on_another_chain_refuses_this_chains_journal_naming_both_and_sends_nothing(
    journal_env: JournalEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A database whose journal holds this chain's writes given to a service on another chain of the same id
    (an anvil started afresh, the ledger deployed there again): the journal's blocks are none of that
    chain's. Reconciling there, a service on a network held every write back (503 NODE_UNAVAILABLE, "does not
    hold block N") until the new chain reached the journal's newest block, and then sent this chain's signed
    transactions to it; on a lone node it sent them at once. It refuses to start, naming both chains."""
    env = journal_env
    ok(env.register("hrss", None), 201)
    source = env.settings.effective_database_url.removeprefix("sqlite:///")
    given = tmp_path_factory.mktemp("another-chain") / "dxl.sqlite3"
    with contextlib.closing(sqlite3.connect(source)) as db, contextlib.closing(sqlite3.connect(given)) as to:
        db.backup(to)
    started = rpc_call(env.node.endpoint.rpc_url, "eth_getBlockByNumber", ["0x0", False])
    assert isinstance(started, dict)
    # An anvil's first block carries the second it started in, and nothing else of its own: the other's is
    # set a second later (--timestamp), a chain of its own at once rather than after a wait for the clock.
    later = ("--timestamp", str(int(str(started["timestamp"]), 16) + 1))
    other = EmbeddedNode(
        tmp_path_factory.mktemp("another-node"),
        NodeSettings(port=free_port(), extra_args=later),
        die_with_parent=True,
    )
    other.start()
    try:
        block0 = rpc_call(other.endpoint.rpc_url, "eth_getBlockByNumber", ["0x0", False])
        assert isinstance(block0, dict) and block0["hash"] != started["hash"]
        home = api_home(tmp_path_factory, "another-chain-api")
        settings = make_settings(home, other).model_copy(update={"database_url": f"sqlite:///{given}"})
        setup_ledger(other.endpoint, settings, dev_funding=True)
        height = int(str(rpc_call(other.endpoint.rpc_url, "eth_blockNumber")), 16)
        with pytest.raises(JournalChainMismatchError) as refused, TestClient(create_app(settings)):
            pass
        assert int(str(rpc_call(other.endpoint.rpc_url, "eth_blockNumber")), 16) == height  # nothing sent
    finally:
        other.stop()
    here = LedgerClient(env.node.endpoint, [])
    assert refused.value.journaled == JournalChain(here.chain_id, here.genesis_hash)
    assert refused.value.serving.genesis_hash != here.genesis_hash
    message = str(refused.value)
    assert str(refused.value.journaled) in message and str(refused.value.serving) in message
    assert other.endpoint.rpc_url in message and str(given) in message and "DXL_DATABASE_URL" in message
    assert refused.value.code == "JOURNAL_CHAIN_MISMATCH"
