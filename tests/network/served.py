"""The API served on the local network (the ``served`` fixture of this directory's conftest)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from api.settings import ApiSettings, load_api_settings
from node.endpoint import NodeEndpoint
from node.network import CLIQUE_CONFIRMATIONS
from tests.api.api_helpers import PASSPHRASE, ApiEnv
from tests.reliability.records import RETRYABLE_409_CODES

#: How long a write is asked again while the service answers "not settled yet".
RETRY_FOR_S = 60.0
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def network_settings(home: Path, endpoint: NodeEndpoint, **settings: Any) -> ApiSettings:
    """The service's settings on ``home`` as ``dxl run --network`` makes them: through ``endpoint`` with its
    other members as failover, Clique's confirmation depth, the test keystore's passphrase; ``settings`` on
    top."""
    return load_api_settings(
        home=home,
        rpc_url=endpoint.rpc_url,
        chain_id=endpoint.chain_id,
        rpc_failover_urls=",".join(endpoint.failover_urls),
        confirmations=CLIQUE_CONFIRMATIONS,
        keystore_passphrase=PASSPHRASE,
        **settings,
    )


@dataclass
class NetworkApi(ApiEnv):
    """The API as ``dxl run --network`` serves it; its app's chain client names the node in use."""

    @property
    def node_in_use(self) -> str:
        """The RPC URL the service's chain client talks to now (a failover moves it)."""
        return str(self.app.state.dxl.ledger.client.rpc_url)

    def call(self, method: str, path: str, who: str | None, *, json: Any = None, **kw: Any) -> httpx.Response:
        """As a client of a Clique network calls: a write goes under its own Idempotency-Key, asked again with
        it while the answer is 409 TRANSACTION_PENDING or IDEMPOTENCY_IN_FLIGHT. A signer sealing out of turn
        under load replaces its block with the one in turn a moment later; a write mined in the dropped block
        is answered TRANSACTION_PENDING (the node no longer shows what it wrote) and is mined again in the
        next block. Asked once, such an answer failed the test (``receipt_grant``'s POST /grants)."""
        if method.upper() not in _WRITES:
            return super().call(method, path, who, json=json, **kw)
        headers = {"Idempotency-Key": f"network-{secrets.token_hex(8)}", **kw.pop("headers", {})}
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            answer = super().call(method, path, who, json=json, headers=headers, **kw)
            if answer.status_code != 409 or time.monotonic() > deadline:
                return answer
            if answer.json().get("error", {}).get("code") not in RETRYABLE_409_CODES:
                return answer
            time.sleep(0.3)
