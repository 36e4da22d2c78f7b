"""The API served on the local network (the ``served`` fixture of this directory's conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.api.api_helpers import ApiEnv


@dataclass
class NetworkApi(ApiEnv):
    """The API as ``dxl run --network`` serves it, and its app (whose chain client names the node in use)."""

    app: Any = None

    @property
    def node_in_use(self) -> str:
        """The RPC URL the service's chain client talks to now (a failover moves it)."""
        return str(self.app.state.dxl.ledger.client.rpc_url)
