"""Where the chain is: an RPC URL and the chain id dxl expects there.

The embedded node and an external network (a Besu QBFT network in production) are both just a
:class:`NodeEndpoint`; nothing downstream knows which one it talks to. Only standard ``eth_*`` methods are
used.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from node.errors import ConfigurationError, NodeError


class ChainIdMismatchError(NodeError):
    """Thrown when the node at an RPC URL serves a different chain than the one configured."""

    code = "CHAIN_ID_MISMATCH"

    def __init__(self, rpc_url: str, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"node at {rpc_url} serves chain id {actual}, expected {expected}")


def rpc_call(
    rpc_url: str, method: str, params: list[object] | None = None, *, timeout: float = 5.0
) -> object:
    """One JSON-RPC call over HTTP; returns ``result``.

    Raises:
        NodeError: the URL does not answer, answers with something that is not JSON-RPC, or with an error.
    """
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise NodeError(f"no JSON-RPC answer from {rpc_url} to {method}: {exc}") from exc
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise NodeError(f"{rpc_url} answered {method} with something that is not JSON-RPC: {reply!r:.200}")
    if "error" in reply:
        raise NodeError(f"{rpc_url} rejected {method}: {reply['error']}")
    return reply["result"]


def fetch_chain_id(rpc_url: str, *, timeout: float = 5.0) -> int:
    """The chain id reported by ``eth_chainId`` at ``rpc_url``.

    Raises:
        NodeError: the node is unreachable or reports no usable chain id.
    """
    result = rpc_call(rpc_url, "eth_chainId", timeout=timeout)
    try:
        return int(str(result), 16)
    except ValueError as exc:
        raise NodeError(f"{rpc_url} reported an unusable chain id {result!r}") from exc


@dataclass(frozen=True)
class NodeEndpoint:
    """An Ethereum JSON-RPC endpoint (embedded anvil or external Besu) and the chain id it must serve."""

    rpc_url: str
    chain_id: int
    #: Other nodes of the same network, tried in order when the current one stops answering
    #: (:class:`~node.chain.LedgerClient` fails over; everything else talks to ``rpc_url``).
    failover_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for url in (self.rpc_url, *self.failover_urls):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(f"RPC URL must be http(s)://host[:port][/path], got {url!r}")
        if not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise ConfigurationError(f"chain id must be a positive integer, got {self.chain_id!r}")

    @property
    def rpc_urls(self) -> tuple[str, ...]:
        """``rpc_url`` first, then the failover URLs."""
        return (self.rpc_url, *self.failover_urls)

    def is_reachable(self, *, timeout: float = 2.0) -> bool:
        """Whether the URL answers ``eth_chainId`` (with any chain id)."""
        try:
            fetch_chain_id(self.rpc_url, timeout=timeout)
        except NodeError:
            return False
        return True

    def verify(self, *, timeout: float = 5.0) -> int:
        """Check the node answers and serves :attr:`chain_id`; returns the current block number.

        Raises:
            NodeError: the node is unreachable.
            ChainIdMismatchError: it serves another chain.
        """
        actual = fetch_chain_id(self.rpc_url, timeout=timeout)
        if actual != self.chain_id:
            raise ChainIdMismatchError(self.rpc_url, self.chain_id, actual)
        return int(str(rpc_call(self.rpc_url, "eth_blockNumber", timeout=timeout)), 16)
