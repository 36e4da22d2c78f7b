"""A refused batch of deliveries (recordDeliveries) is a refusal too, attributed to the record that failed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from node.audit import models as m
from node.audit.events import EventCodec, decode_delivery_attempts
from node.audit.indexer import Indexer, IndexerConfig
from node.audit.store import open_store
from node.chain import LedgerRevertError
from node.endpoint import NodeEndpoint
from node.rpc import JsonRpc
from node.types import new_delivery_id
from tests.contracts.conftest import Consortium


def test_decode_delivery_attempts_readsBothCallsAndNothingElse(ledger: Consortium) -> None:
    one = (os.urandom(32), 3, os.urandom(32), 1, 10, 2)
    single = ledger.client.contract.encode_abi("recordDelivery", list(one))
    batch = ledger.client.contract.encode_abi(
        "recordDeliveries", [[one, (b"\1" * 32, 4, b"\2" * 32, 2, 5, 0)]]
    )
    assert [a["grantId"] for a in decode_delivery_attempts(single) or []] == [3]
    decoded = decode_delivery_attempts(batch) or []
    assert [(a["grantId"], a["hashAlgorithm"]) for a in decoded] == [(3, 1), (4, 2)]
    assert decoded[0]["deliveryId"] == "0x" + one[0].hex()
    assert decode_delivery_attempts(ledger.client.contract.encode_abi("revokeGrant", [1])) is None
    assert decode_delivery_attempts(batch[:40]) is None  # truncated calldata is not attributed


def test_refusedBatch_isIndexedOnceWithTheFailingRecord(
    ledger: Consortium, node_endpoint: NodeEndpoint, tmp_path: Path, abi: list[dict[str, Any]]
) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    start = ledger.client.block_number()
    good = ledger.grant(psb, ledger.agreement(psb, hrss))
    revoked = ledger.grant(psb, ledger.agreement(psb, hrss))
    ledger.send(psb, "revokeGrant", revoked)
    failing_id = new_delivery_id(psb.id)
    records = [
        (new_delivery_id(psb.id), good, os.urandom(32), 1, 1, 1),
        (failing_id, revoked, os.urandom(32), 1, 1, 1),
    ]
    request = ledger.client.build(psb.account.address, "recordDeliveries", records, gas=500_000)
    pending = ledger.client.submit(psb.account, request)
    try:
        ledger.client.wait(pending)
        raise AssertionError("the batch was not refused")
    except LedgerRevertError as exc:
        assert exc.error_name == "GrantAlreadyRevoked"

    engine = open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    with JsonRpc(node_endpoint.rpc_url) as rpc:
        Indexer(
            engine,
            rpc,
            EventCodec(abi),
            contract=str(ledger.client.address),
            chain_id=ledger.client.chain_id,
            start_block=start,
            config=IndexerConfig(),
        ).sync(to_block=ledger.client.block_number())
    with engine.connect() as c:
        rows = c.execute(
            select(m.refusals.c.tx_hash, m.refusals.c.grant_id, m.refusals.c.delivery_id, m.refusals.c.reason)
        ).all()
    assert [tuple(r) for r in rows] == [
        (pending.tx_hash.lower(), revoked, "0x" + failing_id.hex(), "grant_revoked")
    ]
