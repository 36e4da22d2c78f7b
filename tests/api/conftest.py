"""API test fixtures: one deployment per module on the worker's embedded node, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_helpers import PASSPHRASE, ApiEnv, ServerThread, api_home, make_settings

from api.app import create_app
from api.demo import ensure_demo_tokens
from node.anvil import EmbeddedNode
from node.provision import setup_ledger


@pytest.fixture(scope="module")
def api_env(embedded_node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    settings = make_settings(api_home(tmp_path_factory, "api-home"), embedded_node)
    setup = setup_ledger(embedded_node.endpoint, settings, dev_funding=True)
    tokens = {k: v for k, v in ensure_demo_tokens(settings).items() if v is not None}
    # As under `dxl run`, the environment names the same home and node as the app's settings, so routes of
    # other components that read their settings from the environment find this module's deployment.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DXL_HOME", str(settings.home))
        env.setenv("DXL_RPC_URL", str(settings.rpc_url))
        env.setenv("DXL_CHAIN_ID", str(settings.chain_id))
        env.setenv("DXL_KEYSTORE_PASSPHRASE", PASSPHRASE)
        with ServerThread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as client:
            yield ApiEnv(url, settings, setup, tokens, client, dict(setup.report.departments))
