"""The node loses blocks (restarted from an older state, here by ``evm_revert`` to a snapshot): the audit
trail notices, says so at WARNING, re-indexes from the fork point, and provenance never names a lost
delivery. Real node, real follower thread, real database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account

from node.audit.check import check_store
from node.audit.errors import NotFoundError
from node.audit.events import EventCodec
from node.audit.follower import AuditFollower
from node.audit.queries import provenance
from node.audit.rpc import JsonRpc
from node.audit.service import AuditContext
from node.audit.store import open_store
from node.endpoint import NodeEndpoint
from node.settings import Settings
from tests.contracts.conftest import Consortium, deploy

#: Bound of every wait for the follower; generous for a loaded 2-core machine, never reached when it works.
WAIT = 30.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def _known(ctx: AuditContext, delivery_id: bytes) -> bool:
    try:
        return bool(provenance(ctx.engine, delivery_id="0x" + delivery_id.hex()))
    except NotFoundError:
        return False


def _revert(rpc: JsonRpc, snapshot: str) -> None:
    """Back to the older state, with the clock of a node restarted now (a revert also winds anvil's clock
    back, which later tests of this node would feel)."""
    assert rpc.call("evm_revert", snapshot) is True
    # Never behind the restored head: other tests of this worker's node may have moved its clock ahead.
    head = rpc.call("eth_getBlockByNumber", "latest", False)
    rpc.call("evm_setNextBlockTimestamp", max(int(time.time()), int(head["timestamp"], 16)) + 1)


def _mine_past(rpc: JsonRpc, block: int) -> None:
    """The node carries on from the older state: new blocks at the lost heights, and beyond."""
    while rpc.block_number() <= block:
        rpc.call("evm_mine")


def test_lost_blocks_are_healed_and_never_reported(
    node_endpoint: NodeEndpoint,
    codec: EventCodec,
    abi: list[dict],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = JsonRpc(node_endpoint.rpc_url)
    start = rpc.block_number()
    governors = [Account.create() for _ in range(3)]
    c = Consortium(deploy(node_endpoint, governors, 2), governors)
    psb, hrss, civil = (c.admit(code) for code in ("PSB", "HRSS", "CIVIL"))
    psb_grant = c.grant(psb, c.agreement(psb, hrss))
    civil_grant = c.grant(civil, c.agreement(civil, hrss))
    ctx = AuditContext(
        engine=open_store(f"sqlite:///{tmp_path / 'audit.sqlite3'}"),
        rpc_url=node_endpoint.rpc_url,
        chain_id=node_endpoint.chain_id,
        contract=str(c.client.address),
        start_block=start,
        codec=codec,
        abi=abi,
        settings=Settings(home=tmp_path),  # type: ignore[call-arg]
    )
    follower = AuditFollower(lambda: ctx, interval=0.1)
    try:
        # 1. The follower indexes a delivery that the node will lose.
        snapshot = rpc.call("evm_snapshot")
        lost_id, lost = c.deliver(psb, psb_grant)
        follower.start()
        _until(lambda: _known(ctx, lost_id), "the follower indexed the delivery")
        follower.stop()
        _revert(rpc, snapshot)
        # 2. Another delivery on the node's new history; the follower heals, says so and indexes it.
        kept_id, _ = c.deliver(civil, civil_grant)
        _mine_past(rpc, lost.block_number)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dxl.audit.indexer"):
            follower = AuditFollower(lambda: ctx, interval=0.1)
            follower.start()
            _until(lambda: _known(ctx, kept_id) and not _known(ctx, lost_id), "the follower healed")
            follower.stop()
        warnings = [
            r for r in caplog.records if r.name == "dxl.audit.indexer" and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 1, caplog.text
        message = warnings[0].getMessage()
        assert "the chain diverged from the audit index" in message and "dropped 1 events" in message
        result = check_store(ctx.engine, rpc, codec)
        assert result.ok, [d.describe() for d in result.differences]

        # 3. Lost again, with no follower round in between: provenance (as the API and CLI answer it) heals
        # the index first and does not name the lost delivery.
        snapshot = rpc.call("evm_snapshot")
        again_id, again = c.deliver(civil, civil_grant)
        with ctx.index_lock, ctx.rpc() as own:
            ctx.indexer(own).sync()
        assert _known(ctx, again_id)
        _revert(rpc, snapshot)
        _mine_past(rpc, again.block_number)
        ctx.heal()
        assert not _known(ctx, again_id) and _known(ctx, kept_id)
        assert check_store(ctx.engine, rpc, codec).ok
    finally:
        follower.stop()
        rpc.close()
        ctx.engine.dispose()
