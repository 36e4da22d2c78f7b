"""Shared fixtures: one real embedded node per xdist worker, and a web3 client on it.

The node runs with its own temporary DXL_HOME and a free port, and is stopped (the real anvil binary killed)
at the end of the session. For speed it auto-mines one block per transaction (``DXL_TEST_BLOCK_TIME``
seconds of interval mining instead, if set); the product default stays 1 s interval mining (see
node/anvil.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from web3 import Web3

from node.anvil import EmbeddedNode, NodeSettings, free_port
from node.endpoint import NodeEndpoint


def _test_block_time() -> float | None:
    value = os.environ.get("DXL_TEST_BLOCK_TIME")
    return float(value) if value else None


@pytest.fixture(scope="session")
def embedded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A started embedded node for this worker; stopped at the end of the session."""
    node = EmbeddedNode(
        tmp_path_factory.mktemp("dxl-home"),
        NodeSettings(port=free_port(), block_time=_test_block_time()),
        die_with_parent=True,
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def node_endpoint(embedded_node: EmbeddedNode) -> NodeEndpoint:
    """RPC URL and chain id of the worker's node."""
    return embedded_node.endpoint


@pytest.fixture(scope="session")
def w3(node_endpoint: NodeEndpoint) -> Web3:
    """A web3 client connected to the worker's node."""
    return Web3(Web3.HTTPProvider(node_endpoint.rpc_url, request_kwargs={"timeout": 60}))
