"""Where the chain is: an RPC URL and the chain id dxl expects there, and which node of a network to use.

The embedded node and an external network (a Besu QBFT network in production) are both just a
:class:`NodeEndpoint`; nothing downstream knows which one it talks to. Only standard ``eth_*`` methods are
used.

A node that answers but no longer imports blocks (cut off from the signers) is told from one that is merely a
block behind by one rule, :meth:`NodeHead.lags_behind`: the service's chain client applies it to a node whose
head stood still (:meth:`~node.chain.LedgerClient.leave_stalled`), a command applies it once, as it picks the
node it reads (:func:`configured_node`, through :meth:`NodeEndpoint.choose`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from node.errors import ConfigurationError, NodeError
from node.rpc import JsonRpc
from verifier.rpc import request
from verifier.text import counted

if TYPE_CHECKING:
    from node.settings import Settings
    from verifier import rpc


class ChainIdMismatchError(NodeError):
    """Thrown when the node at an RPC URL serves a different chain than the one configured."""

    code = "CHAIN_ID_MISMATCH"

    def __init__(self, rpc_url: str, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"node at {rpc_url} serves chain id {actual}, expected {expected}")


def rpc_call(
    rpc_url: str, method: str, params: list[object] | None = None, *, timeout: float = 5.0
) -> object:
    """One JSON-RPC call through the node layer's client (:class:`node.rpc.JsonRpc`, one kept per node and
    timeout: :func:`_client`); returns ``result``.

    Raises:
        NodeError: the URL does not answer, answers with something that is not JSON-RPC, or with an error.
    """
    # Every node of the list is asked (NodeEndpoint.choose), whichever answers: JSON nested past the parser's
    # recursion is a malformed answer (NodeError), not a RecursionError, nor SIGSEGV in a process that
    # imported eth-account (py_ecc raises the recursion limit to 100,000).
    reply = _client(rpc_url, timeout).post(method, request(1, method, params or []))
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise NodeError(f"{rpc_url} answered {method} with something that is not JSON-RPC: {reply!r:.200}")
    if "error" in reply:
        raise NodeError(f"{rpc_url} rejected {method}: {reply['error']}")
    return reply["result"]


@functools.lru_cache(maxsize=64)
def _client(rpc_url: str, timeout: float) -> JsonRpc:
    """The client :func:`rpc_call` asks ``rpc_url`` through, kept for the process so that its connection
    stays open between looks: the head a read of the API names (:meth:`~node.chain.LedgerClient.node_head`)
    and the looks at the other nodes of a network are asked often, and a client and a connection made for
    each cost three times the CPU of the call itself (0.6 ms against 0.2 ms)."""
    return JsonRpc(rpc_url, timeout=timeout)


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


#: How long another node of the network is given to answer a look at its head.
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class NodeHead:
    """A node's latest block as it answered at one moment: its number and the time its sealer put on it."""

    rpc_url: str
    number: int
    timestamp: int

    def lags_behind(self, best: NodeHead, stall_timeout: float) -> bool:
        """Whether this node is stalled or behind: ``best`` (the most advanced head of the network) is above
        this one and was sealed ``stall_timeout`` seconds or more after it, on the chain's clock.

        A node a block or two behind (a block being propagated) does not lag; one cut off from the signers
        does once the network has sealed on for ``stall_timeout``. The sealers' timestamps are compared, not
        this machine's clock: a node whose clock is off makes no difference, and neither does a network that
        seals nothing for a while (QBFT's empty-block period), where every head stays where it is.
        """
        return best.number > self.number and best.timestamp - self.timestamp >= stall_timeout

    def to_dict(self) -> dict[str, object]:
        """The node and block a command's answer was read at, as its ``--json`` output names them."""
        return {"rpc_url": self.rpc_url, "block": self.number, "block_timestamp": self.timestamp}

    def __str__(self) -> str:
        return f"{self.rpc_url} at block {self.number}"


def read_head(rpc_url: str, *, timeout: float = PROBE_TIMEOUT_S) -> NodeHead:
    """The latest block of the node at ``rpc_url`` (``eth_getBlockByNumber("latest")``).

    Raises:
        NodeError: the node does not answer, or answers with no usable block.
    """
    block = rpc_call(rpc_url, "eth_getBlockByNumber", ["latest", False], timeout=timeout)
    try:
        if isinstance(block, dict):
            return NodeHead(rpc_url, int(str(block["number"]), 16), int(str(block["timestamp"]), 16))
    except (KeyError, ValueError):
        pass
    raise NodeError(f"{rpc_url} answered its latest block with {block!r:.200}")


def pin_to_head(client: rpc.JsonRpc) -> NodeHead:
    """The head of the node ``client`` reads, with ``client`` pinned to it (:meth:`verifier.rpc.JsonRpc.pin`):
    what a command that names the node and block it read calls as its check begins, so that every read of
    its answer is of that block, whatever is mined meanwhile. The head is waited for as long as any read of
    ``client`` is (its timeout), not :data:`PROBE_TIMEOUT_S`'s quick look at another node of a network: a busy
    node a second slow to answer is the node read, not one to pass over.

    Raises:
        NodeError: the node does not answer, or answers with no usable block.
    """
    head = read_head(client.url, timeout=client.timeout)
    client.pin(head.number)
    return head


def most_advanced(heads: Iterable[NodeHead]) -> NodeHead | None:
    """The head with the highest number (the first in order among equals); None when there is none."""
    best: NodeHead | None = None
    for head in heads:
        if best is None or head.number > best.number:
            best = head
    return best


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

    def choose(self, stall_timeout: float, *, timeout: float = PROBE_TIMEOUT_S) -> NodeEndpoint:
        """This endpoint with the node to use first: the first in order that answers and does not lag behind
        the most advanced node (:meth:`NodeHead.lags_behind`), the others after it in their order after it.
        What a command that reads the chain (``dxl audit``, ``dxl status``) or a start does once, with no
        watcher to see a head stand still: the heads of every node are read now and compared.

        Without failover URLs nothing is asked; when no node answers this endpoint is returned as it is (its
        first call says what is wrong).
        """
        if not self.failover_urls:
            return self
        heads: list[NodeHead] = []
        for url in self.rpc_urls:
            try:
                heads.append(read_head(url, timeout=timeout))
            except NodeError:
                continue
        best = most_advanced(heads)
        chosen = next(
            (h.rpc_url for h in heads if best is None or not h.lags_behind(best, stall_timeout)), None
        )
        if chosen is None or chosen == self.rpc_url:
            return self
        urls = self.rpc_urls
        at = urls.index(chosen)
        return NodeEndpoint(chosen, self.chain_id, urls[at + 1 :] + urls[:at])

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


def mines_per_transaction(rpc_url: str, *, timeout: float = 5.0) -> bool:
    """Whether the node at ``rpc_url`` mines a block when a transaction arrives and at no other time: an
    auto-mining anvil (``anvil_getAutomine``; started without ``--block-time``). A node that does not know the
    method (Besu, geth, an anvil a miner drives) does not."""
    try:
        return rpc_call(rpc_url, "anvil_getAutomine", timeout=timeout) is True
    except NodeError:
        return False


def refuse_unreachable_depth(endpoint: NodeEndpoint, confirmations: int) -> None:
    """Refuse to write with a confirmation depth the node never reaches: an auto-mining anvil puts no block on
    top of a write until a later write comes, so with ``DXL_CONFIRMATIONS`` above 0 a lone write would stay
    unconfirmed (``TRANSACTION_PENDING``) for ever, a deployment would wait out its timeout. What a start that
    writes (``dxl run``, ``dxl deploy``, the API service) asks once, before it writes anything.

    Raises:
        ConfigurationError: ``confirmations`` > 0 and the node mines per transaction.
    """
    if confirmations > 0 and mines_per_transaction(endpoint.rpc_url):
        raise ConfigurationError(
            f"DXL_CONFIRMATIONS={confirmations} waits for {counted(confirmations, 'block')} on top of each "
            f"write, but the node at {endpoint.rpc_url} (DXL_RPC_URL, else the embedded node) is an anvil "
            "that mines a block only when a transaction arrives, so a write alone is never confirmed: set "
            "DXL_CONFIRMATIONS=0 (anvil's blocks are final once mined) or run anvil with --block-time"
        )


def configured_node(settings: Settings, *, chain_id: int | None = None) -> NodeEndpoint:
    """The node a command reads the chain from, the same for every command: of ``DXL_RPC_URL`` and
    ``DXL_RPC_FAILOVER_URLS`` the first that answers and does not lag behind the most advanced
    (:meth:`NodeEndpoint.choose`, ``DXL_STALL_TIMEOUT``), the others after it; else ``DXL_HOME``'s own node
    (:func:`home_node`). A dead, stalled or behind ``DXL_RPC_URL`` answers with an error or, worse, with a
    chain that stopped: a delivery recorded since would read as not on the ledger.

    ``chain_id`` is the chain expected there (default ``DXL_CHAIN_ID``; a deployment record's, say).
    """
    if settings.rpc_url:
        expected = chain_id if chain_id is not None else settings.chain_id
        assert expected is not None  # Settings.check() refuses DXL_RPC_URL without DXL_CHAIN_ID
        return NodeEndpoint(settings.rpc_url, expected, settings.failover_urls).choose(settings.stall_timeout)
    return home_node(settings)


def home_node(settings: Settings) -> NodeEndpoint:
    """``DXL_HOME``'s own node, where no ``DXL_RPC_URL`` names one: the members of the local network created
    there (``dxl network up``, ``dxl run --network``: the first that answers and does not lag behind, the
    others as failover), else its embedded node (``DXL_NODE_PORT`` unless its pidfile names another).

    The network first: a home whose ledger is on its network has no embedded node, and the embedded node's
    port (8545) may be another home's node, serving another chain or another ledger at the same address.
    """
    from node.network import LocalNetwork

    network = LocalNetwork(settings.home)
    if network.created:
        return network.endpoint().choose(settings.stall_timeout)
    from node.anvil import EmbeddedNode, NodeSettings

    return EmbeddedNode(settings.home, NodeSettings(port=settings.node_port)).endpoint
