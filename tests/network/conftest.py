"""One local proof-of-authority network (three geth Clique signers, node.network) for the network tests, and
one API served on it.

Skipped, saying why, when geth is not built (``make geth`` needs Go; ``.ci/run`` runs it, ``make test`` does
not). The tests share the network and kill its members, so they all run on one xdist worker
(``xdist_group("network")``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from api.demo import ensure_demo_tokens
from node.errors import ToolchainError
from node.network import LocalNetwork, geth_binary
from node.provision import setup_ledger
from tests.api.api_helpers import PASSPHRASE, ServerThread, api_home
from tests.network.served import NetworkApi, network_settings


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


def _all_running(network: LocalNetwork) -> LocalNetwork:
    network.heal(timeout=60)
    return network


@pytest.fixture
def full_network(network: LocalNetwork) -> LocalNetwork:
    """The network with every member running and peered (a test before may have stopped or cut off one)."""
    return _all_running(network)


# Module-scoped: it sets DXL_* variables for its API and the CLI calls of its tests, which must end with the
# module (held for the session, they leaked into every later test of the worker: another chain id, a
# passphrase where a test expects none).
@pytest.fixture(scope="module")
def served(network: LocalNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkApi]:
    """What `dxl run --network` does (the London build deployed, the demo consortium provisioned, the API on
    the first signer with the others as failover and Clique's confirmation depth), deployed once for the
    tests that need it; the audit index follows the chain every half second."""
    _all_running(network)
    endpoint = network.endpoint()
    settings = network_settings(
        api_home(tmp_path_factory, "dxl-network-api"), endpoint, audit_follow_interval=0.5
    )
    setup = setup_ledger(endpoint, settings)
    tokens = {k: v for k, v in ensure_demo_tokens(settings).items() if v is not None}
    app = create_app(settings)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DXL_HOME", str(settings.home))
        env.setenv("DXL_RPC_URL", endpoint.rpc_url)
        env.setenv("DXL_CHAIN_ID", str(endpoint.chain_id))
        env.setenv("DXL_KEYSTORE_PASSPHRASE", PASSPHRASE)
        with ServerThread(app) as url, httpx.Client(base_url=url, timeout=120) as http:
            yield NetworkApi(url, settings, setup, tokens, http, app, dict(setup.report.departments))
