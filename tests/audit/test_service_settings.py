"""The audit trail runs on the settings it is handed, never on ones it reads from the environment itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.anvil import free_port
from node.audit.service import open_context
from node.deploy import Deployment
from node.endpoint import NodeEndpoint
from node.errors import NodeError
from node.rpc import JsonRpc
from node.settings import Settings


def test_open_context_uses_the_settings_passed_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "given"
    home.mkdir()
    record = Deployment(
        chain_id=31337, address="0x" + "ab" * 20, tx_hash="0x" + "00" * 32, block_number=7,
        block_hash="0x" + "11" * 32, deployer="0x" + "cd" * 20, artifact="DataExchangeLedger",
        bytecode_hash="0x" + "22" * 32, code_hash="0x" + "33" * 32, compiler_version="0.8.30",
        governors=[], threshold=1, deployed_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    (home / "deployment.json").write_text(record.to_json())
    # The environment names another home, node, database and indexer tuning: none of it may be used.
    monkeypatch.setenv("DXL_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DXL_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("DXL_CHAIN_ID", "1")
    monkeypatch.setenv("DXL_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("DXL_AUDIT_BATCH_BLOCKS", "99")
    settings = Settings(
        home=home, rpc_url="http://127.0.0.1:9", chain_id=31337,
        database_url=f"sqlite:///{tmp_path / 'given.sqlite3'}", audit_batch_blocks=7, audit_confirmations=2,
    )  # fmt: skip
    ctx = open_context(settings)
    try:
        assert (ctx.contract, ctx.start_block, ctx.rpc_url) == (record.address, 7, "http://127.0.0.1:9")
        assert str(ctx.engine.url) == f"sqlite:///{tmp_path / 'given.sqlite3'}"
        config = ctx.indexer(ctx.rpc()).config
        assert (config.batch_blocks, config.confirmations) == (7, 2)
        # The confirmation depth holds the indexer back too: it indexes only blocks dxl calls final.
        deeper = open_context(
            settings.model_copy(update={"confirmations": 5, "rpc_failover_urls": "http://127.0.0.1:10"})
        )
        assert deeper.indexer(deeper.rpc()).config.confirmations == 5
        assert deeper.failover_urls == ("http://127.0.0.1:10",)
        deeper.engine.dispose()
        assert not (tmp_path / "env.sqlite3").exists()
    finally:
        ctx.engine.dispose()


def test_the_audit_reader_moves_to_the_next_node_when_one_does_not_answer(
    node_endpoint: NodeEndpoint,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with JsonRpc(dead, failover_urls=(node_endpoint.rpc_url,)) as rpc:
        assert rpc.chain_id() == node_endpoint.chain_id
        assert rpc.active_url == node_endpoint.rpc_url
        assert rpc.block_number() >= 0  # stays on the node that answers
    with JsonRpc(dead) as alone, pytest.raises(NodeError, match=f"no usable JSON-RPC answer from {dead}"):
        alone.block_number()
    # An error answer is the node's word, not a reason to ask another one.
    with JsonRpc(node_endpoint.rpc_url, failover_urls=(dead,)) as rpc, pytest.raises(NodeError):
        rpc.call("eth_noSuchMethod")
    assert rpc.active_url == node_endpoint.rpc_url
