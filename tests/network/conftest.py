"""One local proof-of-authority network (three geth Clique signers, node.network) for the network tests.

Skipped, saying why, when geth is not built (``make geth`` needs Go; ``make test`` runs it first). The tests
share the network and kill its members, so they all run on one xdist worker (``xdist_group("network")``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.errors import ToolchainError
from node.network import LocalNetwork, geth_binary


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """The running network (free ports, a temporary DXL_HOME); stopped at the end of the session."""
    try:
        geth_binary()
    except ToolchainError as exc:
        pytest.skip(f"network tests skipped: {exc.message}")
    local = LocalNetwork(tmp_path_factory.mktemp("dxl-network"), rpc_port=0, die_with_parent=True)
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture
def full_network(network: LocalNetwork) -> LocalNetwork:
    """The network with every member running and peered (a test before may have stopped one)."""
    for member in network.members():
        network.start_member(member.index)
    network.wait_peered(timeout=60)
    return network
