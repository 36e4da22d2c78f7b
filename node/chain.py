"""The chain client: one path to the ledger contract on the embedded node or on an external node by RPC URL.

Everything here uses standard ``eth_*`` JSON-RPC only (the production target is a Besu QBFT network):

* the chain id is checked when connecting, and written into every transaction;
* transactions are signed locally (eth-account, coincurve) with nonces from
  :class:`~node.nonces.NonceManager`; the signed bytes are the unit of retry: a send whose answer is lost or
  that the node calls "already known" / "nonce too low" is looked up by hash, and only a transaction the node
  provably does not hold while another one took its nonce is ever signed again (web3's own retry of
  ``eth_sendRawTransaction`` is switched off, it would turn a lost answer into exactly that complaint);
* gas is estimated on the pending block (the next block's time, which deadlines are compared with), with a
  safety margin; an estimation that reverts is decoded and raised, nothing is sent;
* fees come from the node: EIP-1559 (type 2) from the latest base fee and ``eth_gasPrice``, which also covers
  free-gas private chains where both are 0; a chain without a base fee gets legacy transactions;
* reverts, whether from ``eth_call``, ``eth_estimateGas`` or a mined status-0 receipt, become
  :class:`LedgerRevertError` with the custom error's name, arguments, a stable code and a readable message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.batching import sort_batch_response_by_response_ids
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.base import JSONBaseProvider
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, check_if_retry_on_failure
from web3.types import RPCEndpoint, RPCResponse

from node.contract_errors import describe_revert, show_arg
from node.contract_errors import error_code as error_code
from node.endpoint import (
    PROBE_TIMEOUT_S,
    ChainIdMismatchError,
    NodeEndpoint,
    NodeHead,
    most_advanced,
    read_head,
    rpc_call,
)
from node.errors import DxlError, NodeError
from node.functions import ContractFunctions
from node.nonces import NonceManager, is_nonce_error
from node.rpc import JsonRpc, NodeHttpError, NodeTimeoutError, NodeUnreachableError
from node.settings import DEFAULT_CATCH_UP_TIMEOUT_S, DEFAULT_RPC_TIMEOUT_S, DEFAULT_STALL_TIMEOUT_S
from verifier import abi as abi_codec
from verifier import rpc
from verifier.eth import to_checksum_address

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3.contract import Contract

log = logging.getLogger("dxl.node.chain")

#: Multiplier and fixed headroom on top of ``eth_estimateGas``: state can change between estimation and
#: inclusion (another department's transaction in the same block), and estimation of storage refunds is tight.
GAS_MARGIN = 1.25
GAS_HEADROOM = 20_000
DEFAULT_RECEIPT_TIMEOUT_S = 60.0
#: Widest block range of one eth_getLogs call: Besu refuses wider ones by default (--rpc-max-logs-range).
MAX_LOG_RANGE = 5_000
#: Most requests sent in one JSON-RPC batch: Besu refuses larger batches by default
#: (--rpc-http-max-batch-size 1024), and an answer of this many views stays a few hundred kilobytes.
MAX_BATCH = 500
#: Longest pause between two receipt look-ups of one wait.
RECEIPT_POLL_MAX_S = 0.1
_FEE_CACHE_S = 1.0
_CATCH_UP_POLL_S = 0.5
#: While the head of the node in use stands still and no other node is yet far enough ahead of it, the
#: others are asked again this share of the stall timeout later (a look costs one request per node).
_STALL_RECHECK = 0.2
#: JSON-RPC error codes of a method the node does not serve (-32601; -32604 from some nodes whose method is
#: not enabled on the interface asked).
_NO_SUCH_METHOD = (-32601, -32604)
_NONCE_RETRIES = 3

#: Methods web3 may re-send after a timeout: all of its default list except those that sign or send, whose
#: re-sending is this module's decision (a lost answer means "look the hash up", never "send something else").
_RETRIED_METHODS = tuple(
    m for m in REQUEST_RETRY_ALLOWLIST if m not in ("eth_sendRawTransaction", "eth_sign", "eth_signTypedData")
)
#: The first pause before asking a node again after an HTTP error status, doubling after each (web3's own).
_RETRY_BACKOFF_S = 0.125


def receipt_poll_delays() -> Iterator[float]:
    """Pauses between look-ups of one transaction's receipt: 5 ms, doubling up to :data:`RECEIPT_POLL_MAX_S`.

    An auto-mining node has the receipt a few milliseconds after the transaction is sent, so a fixed 0.1 s
    poll cost every transaction 0.1 s; on an interval-mining node the short first pauses add five look-ups
    per block.
    """
    delay = 0.005
    while True:
        yield delay
        delay = min(delay * 2, RECEIPT_POLL_MAX_S)


_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

_PANIC_REASONS = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


#: The warning the client logs when it moves to another node: the cause (a :class:`Failover`), the node left,
#: why, the node now in use. ``make reliability`` counts the service's failovers by cause from these lines.
FAILOVER_LOG_FORMAT = "failover (%s): node %s %s; now using %s"


class Failover(StrEnum):
    """Why the client moved to another node of its endpoint, named in the warning it logs
    (:data:`FAILOVER_LOG_FORMAT`)."""

    #: The node in use did not answer (dead, or hung past the request timeout).
    UNREACHABLE = "unreachable"
    #: It answered, but lagged behind the most advanced node (:meth:`~node.endpoint.NodeHead.lags_behind`).
    STALLED = "stalled"
    #: It has not reached a block the caller needs, which another node holds.
    BEHIND = "behind"
    #: The client it follows (:meth:`LedgerClient.follow`) moved.
    FOLLOWED = "followed"


class LedgerRevertError(DxlError, RuntimeError):
    """Thrown when the ledger contract reverts (call, estimation, or a mined transaction with status 0).

    Attributes:
        error_name: the Solidity error's name (``"GrantExpired"``), ``"Error"``/``"Panic"`` for the built-ins,
            or ``None`` when the revert data is unknown or absent.
        error_args: decoded arguments by ABI parameter name.
        selector: the 4-byte selector as ``0x``-hex (``None`` without revert data).
        tx_hash: hash of the mined transaction, when the revert happened on chain.
        view: the view function whose call reverted (a read: nothing was sent); ``None`` for a transaction
            or its gas estimation.
    """

    view: str | None = None

    def __init__(
        self,
        error_name: str | None,
        error_args: Mapping[str, Any] | None = None,
        *,
        selector: str | None = None,
        data: bytes = b"",
        tx_hash: str | None = None,
        message: str | None = None,
    ) -> None:
        self.error_name = error_name
        self.error_args = dict(error_args or {})
        self.selector = selector
        self.data = data
        self.tx_hash = tx_hash
        code = error_code(error_name)
        if message is None:
            message = self._describe()
        if tx_hash:
            message = f"{message} (transaction {tx_hash})"
        super().__init__(message, code=code)

    def _describe(self) -> str:
        name, args = self.error_name, self.error_args
        if name is None:
            return (
                f"ledger reverted with unknown error {self.selector}" if self.selector else "ledger reverted"
            )
        return (
            describe_revert(name, args)
            or f"{name}({', '.join(f'{k}={show_arg(k, v)}' for k, v in args.items())})"
        )


class TransactionTimeoutError(NodeError, TimeoutError):
    """Thrown when a sent transaction is not mined within the timeout."""

    code = "TRANSACTION_TIMEOUT"

    def __init__(self, tx_hash: str, timeout: float) -> None:
        self.tx_hash = tx_hash
        super().__init__(
            f"transaction {tx_hash} was not mined within {timeout:g} s; is the node producing blocks?"
        )


class TransactionRefusedError(NodeError):
    """Thrown when the node refuses a signed transaction for a reason other than its nonce."""

    code = "TRANSACTION_REFUSED"

    def __init__(self, sender: str, reason: str) -> None:
        self.sender, self.reason = sender, reason
        super().__init__(f"node refused transaction from {sender}: {reason}")


class NonceTakenError(NodeError):
    """Thrown when the node refuses a signed transaction for its nonce and does not hold it: by its pool,
    another transaction of the same sender holds that nonce. Bytes sent for the first time can then never be
    mined; bytes sent before may be, by a pool behind its chain's head (the chain's count:
    :meth:`LedgerClient.mined_nonce`)."""

    code = "NONCE_TAKEN"

    def __init__(self, tx_hash: str, sender: str, nonce: int) -> None:
        self.tx_hash, self.sender, self.nonce = tx_hash, sender, nonce
        super().__init__(f"transaction {tx_hash}: nonce {nonce} of {sender} is held by another transaction")


class NodeBehindError(NodeError):
    """Thrown when the node in use has not reached a block a caller needs (the deployment's, a journaled
    write's) and no other node of the endpoint holds that block: the node may still import it, or the chain
    may replace it; which, only a later look can tell."""

    def __init__(self, rpc_url: str, head: int, number: int, what: str) -> None:
        self.rpc_url, self.head, self.number = rpc_url, head, number
        super().__init__(
            f"node at {rpc_url} is at block {head}, behind block {number} ({what}), and no other node of the "
            "endpoint holds that block"
        )


class BlockStanding(StrEnum):
    """Where a block seen earlier stands on the chain now (:meth:`LedgerClient.standing`)."""

    #: The node in use holds it.
    HELD = "held"
    #: No node reached its height yet: a node behind the others may still import it.
    NOT_YET = "not yet"
    #: The chain holds another block at its height, or a lone node that is not syncing stopped below it.
    REPLACED = "replaced"


@dataclass(frozen=True)
class ErrorDef:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]


class ErrorDecoder:
    """Maps revert data to errors declared in an ABI (built once per ABI)."""

    def __init__(self, abi: Iterable[Mapping[str, Any]]) -> None:
        self.by_selector: dict[bytes, ErrorDef] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = abi_to_signature(entry)  # type: ignore[arg-type]
            inputs = entry.get("inputs", [])
            self.by_selector[function_signature_to_4byte_selector(signature)] = ErrorDef(
                entry["name"],
                tuple(i.get("name") or f"arg{n}" for n, i in enumerate(inputs)),
                tuple(_canonical_type(i) for i in inputs),
            )

    def decode(self, data: object, *, tx_hash: str | None = None) -> LedgerRevertError:
        """The error for revert ``data`` (hex or bytes); unknown data gives an error with its selector."""
        raw = bytes(HexBytes(data)) if isinstance(data, bytes | str) and data else b""
        if len(raw) < 4:
            return LedgerRevertError(None, data=raw, tx_hash=tx_hash)
        selector, body = raw[:4], raw[4:]
        sel_hex = "0x" + selector.hex()
        try:
            if selector == _ERROR_STRING_SELECTOR:
                (reason,) = abi_decode(["string"], body)
                return LedgerRevertError(
                    "Error", {"reason": reason}, selector=sel_hex, data=raw, tx_hash=tx_hash, message=reason
                )
            if selector == _PANIC_SELECTOR:
                (panic,) = abi_decode(["uint256"], body)
                why = _PANIC_REASONS.get(panic, "unknown panic")
                return LedgerRevertError(
                    "Panic", {"code": panic}, selector=sel_hex, data=raw, tx_hash=tx_hash,
                    message=f"contract panic 0x{panic:02x}: {why}",
                )  # fmt: skip
            known = self.by_selector.get(selector)
            if known is None:
                return LedgerRevertError(None, selector=sel_hex, data=raw, tx_hash=tx_hash)
            values = abi_decode(list(known.types), body)
        except DecodingError:
            return LedgerRevertError(None, selector=sel_hex, data=raw, tx_hash=tx_hash)
        args = {n: _arg(t, v) for n, t, v in zip(known.names, known.types, values, strict=True)}
        return LedgerRevertError(known.name, args, selector=sel_hex, data=raw, tx_hash=tx_hash)


def genesis_hash(genesis: Mapping[str, Any], second: object) -> str:
    """The hash of a chain's first block as its history commits to it: the parent hash of block 1 (``second``,
    a raw ``eth_getBlockByNumber`` reply), or block 0's own hash (``genesis``) while the chain has no block 1.

    Block 0's own hash is not stable on the embedded node: anvil makes a new genesis block at each start and a
    state dump taken after a restart carries it, so from the second restart on block 0 is another block,
    while block 1 and the blocks after it (their parent hashes too) are kept (tests/node/test_anvil.py)."""
    block = second.get("result") if isinstance(second, Mapping) else None
    parent = block.get("parentHash") if isinstance(block, Mapping) else None
    return str(parent or genesis.get("hash") or "")


def _arg(kind: str, value: Any) -> Any:
    if kind == "address":
        return str(to_checksum_address(value))
    return bytes(value) if isinstance(value, bytes | bytearray) else value


def _canonical_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    args: dict[str, Any]
    log_index: int
    address: str
    #: The transaction that emitted it.
    tx_hash: str
    #: The block it is in, where the node's answer named it (a log of a mined block always does).
    block_hash: str | None = None


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    events: list[DecodedEvent] = field(default_factory=list)
    contract_address: str | None = None

    def event(self, name: str) -> DecodedEvent:
        """The first event called ``name``.

        Raises:
            NodeError: the transaction emitted no such event.
        """
        for ev in self.events:
            if ev.name == name:
                return ev
        raise NodeError(
            f"transaction {self.tx_hash} emitted no {name} event ({[e.name for e in self.events]})"
        )

    def events_named(self, name: str) -> list[DecodedEvent]:
        return [ev for ev in self.events if ev.name == name]


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction: its exact bytes are what gets (re-)sent, so every send has the same hash."""

    tx_hash: str
    raw: bytes
    sender: str
    nonce: int


@dataclass(frozen=True)
class BlockRef:
    number: int
    hash: str

    @classmethod
    def of_receipt(cls, receipt: Mapping[str, Any]) -> BlockRef:
        """The block a transaction receipt names."""
        return cls(int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex())


@dataclass(frozen=True)
class _Header:
    """What the client reads of a block: where it is, its time, its transactions' hashes in block order."""

    ref: BlockRef
    time: int
    transactions: list[str]


def _hash(value: Any) -> str:
    """A 32-byte hash of a JSON-RPC answer, as ``0x`` and lowercase hex.

    Raises:
        ValueError: not 32 bytes of hex.
    """
    found = rpc.data(value)
    if len(found) != 32:
        raise ValueError(f"not a 32-byte hash: {value!r:.80}")
    return "0x" + found.hex()


def _log(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A log of a JSON-RPC answer, the fields :meth:`LedgerClient.decode_logs` and its callers read made what
    web3 makes them.

    Raises:
        KeyError, TypeError, ValueError: not a log.
    """
    return {
        "address": raw["address"],
        "topics": [HexBytes(t) for t in raw["topics"]],
        "data": HexBytes(raw["data"]),
        "logIndex": rpc.quantity(raw["logIndex"]),
        "transactionHash": HexBytes(raw["transactionHash"]),
        "blockNumber": rpc.quantity(raw["blockNumber"]),
        "blockHash": HexBytes(raw["blockHash"]) if raw.get("blockHash") else None,
    }


def _address(value: Any) -> str | None:
    """A checksummed address of a JSON-RPC answer; None for null (no recipient, no contract created).

    Raises:
        ValueError, TypeError: not an address.
    """
    return None if value is None else str(to_checksum_address(value))


@dataclass(frozen=True)
class PendingTx:
    """A signed and sent transaction not yet known to be mined."""

    tx_hash: str
    sender: str
    nonce: int
    request: dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return (
            type(value)(_plain(v) for v in value) if isinstance(value, tuple) else [_plain(v) for v in value]
        )
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class NodeProvider(JSONBaseProvider):
    """web3's provider for one node of the endpoint: each request posted through the node layer's one
    JSON-RPC client (:class:`node.rpc.JsonRpc`, made without failover URLs: :class:`LedgerClient` moves
    between nodes itself), so web3 only encodes the calls and formats the answers.

    Only an answer that is an HTTP error status (it came at once) is asked again of the same node, and only
    for the methods of :data:`_RETRIED_METHODS` (``eth_sendRawTransaction`` never: a lost answer means "look
    the hash up"): ``attempts`` in all, pausing :data:`_RETRY_BACKOFF_S` and doubling, as web3's provider did.
    One not answered within the client's timeout, or whose connection failed, is not: then ``DXL_RPC_TIMEOUT``
    is what a caller waits for a node that stopped answering, and :meth:`LedgerClient._rpc` moves the request
    to the next node of the endpoint.

    The node's chain id is asked once (web3 asks it again for its own checks); a failover makes a new
    provider, so each node is asked once.

    Raises (``make_request``, ``make_batch_request``): as :meth:`node.rpc.JsonRpc.post`.
    """

    def __init__(self, client: JsonRpc, *, attempts: int) -> None:
        super().__init__()
        self.client = client
        self.endpoint_uri = client.url
        self._attempts = attempts
        self._chain_id: RPCResponse | None = None

    def __str__(self) -> str:
        return f"RPC connection {self.client.url}"

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId" and self._chain_id is not None:
            return self._chain_id
        body = rpc.request(next(self.request_counter), method, params or [])
        attempts = self._attempts if check_if_retry_on_failure(method, _RETRIED_METHODS) else 1
        for attempt in range(attempts):
            try:
                answer = self.client.post(method, body)
                break
            except NodeHttpError:
                if attempt == attempts - 1:
                    raise
                time.sleep(_RETRY_BACKOFF_S * 2**attempt)
        if method == "eth_chainId" and isinstance(answer, dict) and "result" in answer:
            self._chain_id = cast("RPCResponse", answer)
        return cast("RPCResponse", answer)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        body = [
            rpc.request(next(self.request_counter), method, params or []) for method, params in batch_requests
        ]
        answer = self.client.post(batch_requests[0][0] if batch_requests else "batch", body)
        if not isinstance(answer, list):
            return cast("RPCResponse", answer)  # a node refusing the batch answers one error object
        return sort_batch_response_by_response_ids(answer)

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            return "result" in self.make_request(RPCEndpoint("web3_clientVersion"), [])
        except NodeError:
            if show_traceback:
                raise
            return False


class LedgerClient:
    """Signs, sends and reads ledger transactions on one node.

    ``abi`` is the contract ABI used to encode calls and decode events and errors; ``address`` may be set
    later (:meth:`at`) once the contract is deployed.

    Raises (constructor):
        NodeError: the node is unreachable.
        ChainIdMismatchError: the node serves another chain than ``endpoint.chain_id``.
    """

    def __init__(
        self,
        endpoint: NodeEndpoint,
        abi: Sequence[Mapping[str, Any]],
        address: str | None = None,
        *,
        receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT_S,
        request_timeout: float = DEFAULT_RPC_TIMEOUT_S,
        catch_up_timeout: float = DEFAULT_CATCH_UP_TIMEOUT_S,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self.chain_id = endpoint.chain_id
        self.abi = list(abi)
        self.receipt_timeout = receipt_timeout
        self.catch_up_timeout = catch_up_timeout
        self.stall_timeout = stall_timeout
        #: How long each request to the node in use is waited for (``DXL_RPC_TIMEOUT``): the one wait for this
        #: client's node, also for the head a read of the API names as its block (:meth:`node_head`, and
        #: ``pin_to_head`` on the readers made on this client's node). The head is the first read of an
        #: answer whose every other read waits this long: waited less, a node merely slow would answer 503
        #: where the rest of the answer would have waited for it; waited more, a request would hang on a node
        #: this client gives up on.
        self.request_timeout = request_timeout
        self._urls = endpoint.rpc_urls
        self._active = 0
        self._switch = threading.Lock()
        #: How many times this client moved to another node; the API's journal watches it (a transaction the
        #: dead node held in its pool alone is re-sent, as the same bytes, to the node now in use).
        self.failovers = 0
        #: The head of the node in use as :meth:`leave_stalled` last saw it change: (node, head, since when).
        self._head_seen: tuple[int, BlockRef, float] | None = None
        #: When :meth:`leave_stalled` may next ask the other nodes for their heads.
        self._next_stall_look = 0.0
        #: The client whose node in use this one takes before each call (:meth:`follow`).
        self._leader: LedgerClient | None = None
        self.w3 = Web3(self._provider(self._urls[0]))
        # web3's validation middleware checks a chainId field of eth_call/eth_estimateGas requests against the
        # node's (this client sends none: its transactions are signed here with the chain id checked below)
        # and the length of blocks' extraData (the PoA middleware below moves it aside); ENS resolution turns
        # names into addresses (this client takes addresses only). Run for each request they cost a quarter of
        # the CPU of a read (~0.5 ms), on the API's every write and read of the ledger.
        self.w3.middleware_onion.remove("validation")
        self.w3.middleware_onion.remove("ens_name_to_address")
        self.errors = ErrorDecoder(self.abi)
        self._events = {
            abi_codec.event_topic(e): e
            for e in self.abi
            if e.get("type") == "event" and not e.get("anonymous")
        }
        self._codec = self.w3.codec
        self.nonces = NonceManager(
            lambda addr: int(self._rpc(self.w3.eth.get_transaction_count, addr, "pending"))
        )
        self._fees: tuple[float, dict[str, int]] | None = None
        self._fees_lock = threading.Lock()
        #: Whether the node may serve ``debug_traceTransaction`` (until it says it does not).
        self._traces = True
        # Read below from the node in use; until then (a first node that does not answer moves this client
        # to another node while it is made) another node is taken by its chain id alone.
        self.genesis_hash = ""
        self._same_chain: dict[int, bool] = {}
        actual = int(self._rpc(lambda: self.w3.eth.chain_id))
        if actual != endpoint.chain_id:
            raise ChainIdMismatchError(self.rpc_url, endpoint.chain_id, actual)
        genesis = self._genesis()
        #: The hash of the chain's first block: with the chain id, which chain this is (two chains of one id,
        #: such as two local networks or two anvils, differ there). The API's journal is bound to it.
        self.genesis_hash = genesis_hash(
            genesis,
            self._rpc(
                lambda: self.w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), ["0x1", False])
            ),
        )
        #: Whether each other node of the endpoint serves this chain (its chain id and first block), once it
        #: answered (:meth:`_serves_this_chain`); the node the client was made on is its chain by definition.
        self._same_chain = {self._active: True}
        if len(str(genesis.get("extraData") or "0x").removeprefix("0x")) // 2 > 32:
            # Clique and QBFT headers carry signers and seals in extraData (longer than the 32 bytes web3
            # accepts otherwise); the middleware moves it aside so blocks decode.
            self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self.address: str | None = None
        self._contract: Contract | None = None
        #: Calldata and results of the ABI's functions, each resolved once (web3 searches the ABI per call).
        self.functions = ContractFunctions(self.abi, self.w3.codec, lambda: self.contract)
        if address is not None:
            self.at(address)

    def for_abi(self, abi: Sequence[Mapping[str, Any]]) -> LedgerClient:
        """A client of another contract on this client's endpoint, with this client's waits (a companion
        contract deployed beside the ledger): made otherwise, it would wait the defaults, not the operator's
        settings this one was made with."""
        return LedgerClient(
            self.endpoint,
            abi,
            receipt_timeout=self.receipt_timeout,
            request_timeout=self.request_timeout,
            catch_up_timeout=self.catch_up_timeout,
            stall_timeout=self.stall_timeout,
        )

    def __repr__(self) -> str:
        return f"LedgerClient({self.rpc_url!r}, chain_id={self.chain_id}, address={self.address!r})"

    def _provider(self, url: str) -> NodeProvider:
        # With other nodes to turn to, one attempt: a node answering errors is left quickly (by the caller).
        return NodeProvider(
            JsonRpc(url, timeout=self.request_timeout), attempts=5 if len(self._urls) == 1 else 1
        )

    @property
    def rpc_url(self) -> str:
        """The URL of the node in use now (the endpoint's first, or a failover URL after a failover)."""
        return self._urls[self._active]

    @property
    def endpoint_in_use(self) -> NodeEndpoint:
        """The endpoint with the node in use first, the others after it: a client made from it starts where
        this one is (the contracts beside the ledger, on the node its writes go to)."""
        return NodeEndpoint(self.rpc_url, self.chain_id, tuple(self._urls[i] for i in self._others()))

    def _genesis(self) -> Mapping[str, Any]:
        # Read raw: without the middleware, web3 refuses to decode exactly the blocks of proof of authority.
        reply = self._rpc(
            lambda: self.w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), ["0x0", False])
        )
        block = reply.get("result") if isinstance(reply, Mapping) else None
        return block if isinstance(block, Mapping) else {}

    def _fail_over(self, failed: int) -> bool:
        """Move to the most advanced other node that answers (the next URL when none does, if it serves this
        chain: :meth:`_use`) unless another thread already moved away from ``failed``; False when the endpoint
        has no other URL.

        The most advanced: a node behind the others lacks the blocks of the writes already answered, and the
        contracts deployed lately."""
        if len(self._urls) == 1:
            return False
        with self._switch:
            if self._active == failed:
                ahead = self._most_advanced()
                target = self._urls.index(ahead.rpc_url) if ahead else (failed + 1) % len(self._urls)
                self._use(target, Failover.UNREACHABLE, "stopped answering")
        return True

    def _others(self) -> list[int]:
        """The other URLs of the endpoint, in the order after the one in use."""
        count = len(self._urls)
        return [(self._active + step) % count for step in range(1, count)]

    def _probe(self, index: int, method: str, params: list[object]) -> object | None:
        """One call to another node of the endpoint; None when it does not answer (or refuses)."""
        try:
            return rpc_call(self._urls[index], method, params, timeout=PROBE_TIMEOUT_S)
        except NodeError:
            return None

    def _serves_this_chain(self, index: int) -> bool | None:
        """Whether node ``index`` of the endpoint serves this client's chain: its chain id, and the first
        block this client's first node has; None when it does not answer. Asked once per node. A failover URL
        of another network (a mistyped port, another local network of the same chain id) is never moved to:
        there, the journal's blocks are none of the chain's, and its transactions would be sent to it again or
        marked never minable."""
        known = self._same_chain.get(index)
        if known is not None:
            return known
        chain_id = self._probe(index, "eth_chainId", [])
        first = self._probe(index, "eth_getBlockByNumber", ["0x0", False])
        if chain_id is None or not isinstance(first, Mapping):
            return None
        if not self.genesis_hash:
            return int(str(chain_id), 16) == self.chain_id  # the client is being made: see __init__
        genesis = genesis_hash(first, {"result": self._probe(index, "eth_getBlockByNumber", ["0x1", False])})
        same = int(str(chain_id), 16) == self.chain_id and genesis == self.genesis_hash
        if not same:
            log.error(
                "node %s of the endpoint serves chain id %d (genesis block %s), not this chain, chain id %d"
                " (genesis block %s) of %s: it is never used",
                self._urls[index], int(str(chain_id), 16), genesis, self.chain_id, self.genesis_hash,
                self._urls[0],
            )  # fmt: skip
        self._same_chain[index] = same
        return same

    def _head_of(self, index: int) -> NodeHead | None:
        """The head of node ``index`` of the endpoint; None when it does not answer, or serves another
        chain."""
        if not self._serves_this_chain(index):
            return None
        try:
            return read_head(self._urls[index])
        except NodeError:
            return None

    def _most_advanced(self) -> NodeHead | None:
        """The head of the other node with the highest head (the first in order among equals); None when no
        other node answers."""
        return most_advanced(h for i in self._others() if (h := self._head_of(i)) is not None)

    def _use(self, index: int, cause: Failover, why: str) -> None:
        """Talk to URL ``index`` from now on (the caller holds ``_switch`` or checks nothing else moved),
        unless it is not known to serve this chain (:meth:`_serves_this_chain`): the client stays where it
        is."""
        if index == self._active or not self._serves_this_chain(index):
            return
        left = self.rpc_url
        self._active = index
        self.w3.provider = self._provider(self._urls[index])
        self.failovers += 1
        log.warning(FAILOVER_LOG_FORMAT, cause.value, left, why, self.rpc_url)

    def _syncing(self) -> bool:
        """Whether the node in use says it is importing blocks it knows the network has (``eth_syncing``)."""
        try:
            return bool(self._rpc(lambda: self.w3.eth.syncing))
        except Web3RPCError:
            return False

    def _may_catch_up(self) -> bool:
        """Whether a node below a block may yet import it: the endpoint names other nodes (a network, whose
        members come back), or the node says it is syncing. A lone node that is not syncing (the embedded node
        restarted from an older state) has nothing to import it from."""
        return len(self._urls) > 1 or self._syncing()

    def reach(self, number: int, *, what: str) -> None:
        """Have the node in use hold block ``number``, a block the caller needs (``what``: the deployment's).
        Below it, the client moves to the most advanced other node of the endpoint if that one has reached it;
        when none has, it waits for one to (logged), up to :attr:`catch_up_timeout`, where a node may catch up
        (:meth:`_may_catch_up`). A lone node that is not syncing is left where it is: the caller's own check
        says what is missing.

        Raises:
            NodeBehindError: still no node at that height when the wait is over.
            NodeError: the node does not answer.
        """
        deadline: float | None = None
        while (head := self.block_number()) < number:
            with self._switch:
                ahead = self._most_advanced()
                if ahead is not None and ahead.number >= number:
                    at = self._urls.index(ahead.rpc_url)
                    self._use(at, Failover.BEHIND, f"is at block {head}, behind block {number} ({what})")
                    continue
            if not self._may_catch_up():
                return
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.catch_up_timeout
                log.warning(
                    "node %s is at block %d, behind block %d (%s), as every other node of the endpoint that"
                    " answers: waiting up to %g s for it to catch up",
                    self.rpc_url, head, number, what, self.catch_up_timeout,
                )  # fmt: skip
            elif now > deadline:
                raise NodeBehindError(self.rpc_url, head, number, what)
            time.sleep(_CATCH_UP_POLL_S)

    def leave_stalled(self, head: BlockRef) -> bool:
        """Move to the most advanced other node of the endpoint when the node in use has stalled: its head,
        ``head`` (just read from it), has not changed for :attr:`stall_timeout` and lags behind the most
        advanced node's (:meth:`~node.endpoint.NodeHead.lags_behind`, the rule a command applies when it picks
        its node). Such a node is cut off from the signers: it mines nothing, and what is sent to it waits in
        its pool; the caller re-sends what is not mined where the client now is (the journal). Returns whether
        the client moved.

        The other nodes are asked only once the head stood still that long, and then again every fifth of
        :attr:`stall_timeout` while none is far enough ahead (an idle chain that seals nothing stands still
        too). Callers look at regular intervals (the API's chain watcher).
        """
        now = time.monotonic()
        with self._switch:
            seen = self._head_seen
            if seen is None or seen[0] != self._active or seen[1] != head:
                self._head_seen = (self._active, head, now)
                return False
            still = now - seen[2]
            if len(self._urls) == 1 or still < self.stall_timeout or now < self._next_stall_look:
                return False
            self._next_stall_look = now + self.stall_timeout * _STALL_RECHECK
            own, ahead = self._head_of(self._active), self._most_advanced()
            if own is None or ahead is None or own.number != head.number:
                return False  # not answering is _rpc's to handle; a head that moved is looked at again
            if not own.lags_behind(ahead, self.stall_timeout):
                return False
            self._use(
                self._urls.index(ahead.rpc_url),
                Failover.STALLED,
                f"has stayed at block {head.number} for {still:.1f} s while {ahead.rpc_url} is at block "
                f"{ahead.number}, sealed {ahead.timestamp - own.timestamp} s later",
            )
            self._head_seen = None
            return True

    def follow(self, leader: LedgerClient) -> None:
        """Talk, from each call on, to the node ``leader`` uses when it is one of this client's endpoint: a
        contract beside the ledger (receipt anchors, sharing practice) read on a node the ledger's client
        left, its head stalled while another's moved on, reads a chain that lags behind the ledger's writes
        (a batch number taken, a confirmation depth never reached). A node that stops answering is still
        left as :meth:`_rpc` says."""
        self._leader = leader

    def _take_leaders_node(self) -> None:
        leader = self._leader
        if leader is None or leader.rpc_url == self.rpc_url or leader.rpc_url not in self._urls:
            return
        with self._switch:
            self._use(
                self._urls.index(leader.rpc_url),
                Failover.FOLLOWED,
                f"was left by the client of {leader.address}",
            )

    def standing(self, block: BlockRef) -> BlockStanding:
        """Where ``block``, seen earlier, stands now. The node in use answers for heights it has reached; for
        one above its head the other nodes of the endpoint are asked, and the client moves to one that holds
        the block (a node behind the others lacks it only for now).

        Raises:
            NodeError: the node in use does not answer.
        """
        held = self.block_hash(block.number)
        if held is not None:
            return BlockStanding.HELD if held == block.hash else BlockStanding.REPLACED
        replaced = False
        for index in self._others():
            if not self._serves_this_chain(index):
                continue  # another chain's block at that height replaces nothing of this one
            found = self._probe(index, "eth_getBlockByNumber", [hex(block.number), False])
            if not isinstance(found, Mapping):
                continue
            if str(found.get("hash")) == block.hash:
                with self._switch:
                    self._use(index, Failover.BEHIND, f"has not reached block {block.number} yet")
                return BlockStanding.HELD
            replaced = True
        if replaced or not self._may_catch_up():
            return BlockStanding.REPLACED
        return BlockStanding.NOT_YET

    def at(self, address: str) -> LedgerClient:
        """Bind to the contract at ``address``; returns self."""
        self.address = to_checksum_address(address)
        self._contract = None
        return self

    @property
    def contract(self) -> Contract:
        """web3's contract object for the ABI (at :attr:`address` once bound), made on first use: calls,
        transactions and events are encoded and decoded without it (:attr:`functions`), and web3 builds an
        object per function and event of the ABI (some 7 ms of CPU for the ledger's)."""
        if self._contract is None:
            if self.address is None:
                self._contract = cast("Contract", self.w3.eth.contract(abi=self.abi))
            else:
                self._contract = self.w3.eth.contract(
                    address=cast("ChecksumAddress", self.address), abi=self.abi
                )
        return self._contract

    def _rpc(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one web3 call, on the next node of the endpoint when the one in use does not answer (each node
        tried once); transport failures of all of them become :class:`NodeError`.

        Running the same call again elsewhere is safe for every call this client makes: reads, and
        ``eth_sendRawTransaction`` of bytes signed once, which has the same hash on every node.
        """
        self._take_leaders_node()
        for _ in self._urls:
            using = self._active
            try:
                return fn(*args)
            except NodeUnreachableError as exc:
                failure = exc
                if not self._fail_over(using):
                    break
        # A node that answers too slowly is told apart from one that refuses connections: the operator's
        # remedy differs (DXL_RPC_TIMEOUT, or the node itself).
        late = (
            f" (no answer within {self.request_timeout:g} s)" if isinstance(failure, NodeTimeoutError) else ""
        )
        raise NodeError(f"node at {self._urls[using]} is unreachable: {failure.kind}{late}") from failure

    def _require_address(self) -> str:
        if self.address is None:
            raise NodeError("the ledger client is not bound to a contract address (deploy first)")
        return self.address

    # --- reading ----------------------------------------------------------------------------------------

    def call(self, fn: str, *args: Any, block: str | int = "latest", sender: str | None = None) -> Any:
        """Call a view function; returns its decoded result (structs as tuples).

        Raises:
            LedgerRevertError: the call reverted.
            NodeError: the node is unreachable.
        """
        address = self._require_address()
        tx: dict[str, Any] = {"from": sender} if sender else {}
        try:
            data = self.functions.plain_calldata(fn, args)
            if data is not None:
                # What web3's call() sends and returns, without its search of the ABI nor its formatting of
                # the request and the answer (a fifth of the CPU of the API's reads): as call_many reads.
                request = [
                    {**tx, "to": address, "data": data},
                    block if isinstance(block, str) else hex(block),
                ]
                answer = self._rpc(lambda: self.w3.provider.make_request(RPCEndpoint("eth_call"), request))
                error = answer.get("error") if isinstance(answer, Mapping) else None
                if isinstance(error, Mapping) and isinstance(error.get("data"), str):
                    raise self._reverted(fn, error["data"])
                if error is None and isinstance(answer, Mapping):
                    try:
                        return self._view_result(fn, answer)
                    except (DecodingError, TypeError, ValueError):
                        pass  # web3's call below says why (no contract at the address?)
            return _plain(self._rpc(self.contract.functions[fn](*args).call, tx, block))
        except ContractLogicError as exc:
            raise self._reverted(fn, exc.data) from None

    def _reverted(self, fn: str, data: object) -> LedgerRevertError:
        """The contract's error view ``fn`` reverted with (its revert ``data``), naming the view."""
        error = self.errors.decode(data)
        error.view = fn
        return error

    def _view_result(self, fn: str, answer: Mapping[str, Any]) -> Any:
        """View ``fn``'s result decoded from an ``eth_call`` answer (structs as tuples).

        Raises:
            DecodingError, TypeError, ValueError: the answer is not ``fn``'s result.
        """
        return _plain(self.functions.result(fn, bytes(HexBytes(answer.get("result") or b""))))

    def _batch(self, asked: Sequence[tuple[str, list[Any]]]) -> list[Mapping[str, Any]]:
        """The JSON-RPC answers (``result`` or ``error``, in order) of ``asked``, sent in batches of at
        most :data:`MAX_BATCH`: one round trip for many reads, where a remote node costs its latency per
        request. A node that refuses batches (one error object for the whole batch, or an HTTP error status)
        is asked each request alone.

        Raises:
            NodeError: the node is unreachable.
        """
        answers: list[Mapping[str, Any]] = []

        def provider() -> NodeProvider:  # at each try: a failover in _rpc gives the client another one
            return cast("NodeProvider", self.w3.provider)

        for start in range(0, len(asked), MAX_BATCH):
            chunk = [(RPCEndpoint(method), params) for method, params in asked[start : start + MAX_BATCH]]
            try:
                reply = self._rpc(lambda c=chunk: provider().make_batch_request(c))
            except NodeHttpError:
                reply = None
            if not isinstance(reply, list) or len(reply) != len(chunk):
                reply = [self._rpc(lambda m=m, p=p: provider().make_request(m, p)) for m, p in chunk]
            answers += reply
        return answers

    def call_many(self, fn: str, calls: Sequence[Sequence[Any]], *, block: str | int = "latest") -> list[Any]:
        """:meth:`call` of ``fn`` for each argument list of ``calls``, all at ``block``, in JSON-RPC batches
        (:meth:`_batch`): a department's scorecard reads every demand and inspection, one round trip each
        before. Results in the order of ``calls``.

        Raises:
            LedgerRevertError: a call reverted (the first in order).
            NodeError: the node is unreachable or refuses a call.
        """
        address = self._require_address()
        tag = block if isinstance(block, str) else hex(block)
        data = [self.functions.plain_calldata(fn, tuple(args)) for args in calls]
        encoded = [(i, d) for i, d in enumerate(data) if d is not None]
        answers = self._batch([("eth_call", [{"to": address, "data": d}, tag]) for _, d in encoded])
        results: dict[int, Any] = {}
        for (i, _), answer in zip(encoded, answers, strict=True):
            error = answer.get("error")
            if isinstance(error, Mapping):
                if error.get("data"):
                    raise self._reverted(fn, error.get("data"))
                raise NodeError(f"node at {self.rpc_url} refused {fn}: {error.get('message', error)}")
            try:
                results[i] = self._view_result(fn, answer)
            except DecodingError:
                results[i] = self.call(fn, *calls[i], block=block)  # web3's call says why
        # Arguments this module does not encode itself go through web3's call, one by one.
        return [
            results[i] if i in results else self.call(fn, *calls[i], block=block) for i in range(len(calls))
        ]

    def block_times(self, numbers: Iterable[int]) -> dict[int, int]:
        """The timestamp of each block of ``numbers``, read in JSON-RPC batches (:meth:`_batch`).

        Raises:
            NodeError: the node is unreachable or does not know one of the blocks.
        """
        wanted = sorted(set(numbers))
        answers = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
        times = {}
        for number, answer in zip(wanted, answers, strict=True):
            block = answer.get("result")
            if not isinstance(block, Mapping):
                raise NodeError(f"node at {self.rpc_url} does not know block {number}")
            times[number] = int(str(block["timestamp"]), 16)
        return times

    def _read(self, method: str, *params: Any) -> Any:
        """One read's ``result`` as the node gave it, through the provider (its retries) and :meth:`_rpc`
        (failover), without web3's formatting: the head and block reads below want a field or two, and web3
        formatted each block whole (some 0.2 ms of CPU) on every write's wait and expiry check.

        Raises:
            NodeError: the node is unreachable or answers with an error.
        """
        # The provider is looked up at each try: a failover in _rpc gives the client another one.
        answer = self._rpc(lambda: self.w3.provider.make_request(RPCEndpoint(method), list(params)))
        return self._answered(method, list(params), answer)

    def _answered(self, method: str, params: list[Any], answer: object) -> Any:
        """The ``result`` of one JSON-RPC answer to ``method(params)``.

        Raises:
            NodeError: the answer is an error, or no answer at all.
        """
        if not isinstance(answer, Mapping) or answer.get("error") is not None:
            raise NodeError(f"{self.rpc_url} rejected {method}{params!r}: {answer!r:.200}")
        return answer.get("result")

    def _block(self, at: int | str) -> _Header | None:
        """The number, hash, time and transaction hashes of block ``at`` (a number or ``latest``); None when
        the chain is not that long.

        Raises:
            NodeError: the node is unreachable, or answers with something else than a block.
        """
        block = self._read("eth_getBlockByNumber", hex(at) if isinstance(at, int) else at, False)
        if block is None:
            return None
        try:
            return _Header(
                BlockRef(rpc.quantity(block["number"]), _hash(block["hash"])),
                rpc.quantity(block["timestamp"]),
                [_hash(h) for h in block["transactions"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(
                f"{self.rpc_url} answered eth_getBlockByNumber with no usable block: {exc}"
            ) from None

    def _latest(self) -> _Header:
        """The head block (:meth:`_block`).

        Raises:
            NodeError: as :meth:`_block`, or the node has no head.
        """
        head = self._block("latest")
        if head is None:
            raise NodeError(f"{self.rpc_url} has no latest block")
        return head

    def block_number(self) -> int:
        try:
            return rpc.quantity(self._read("eth_blockNumber"))
        except ValueError as exc:
            raise NodeError(f"{self.rpc_url} answered eth_blockNumber with {exc}") from None

    def node_head(self) -> NodeHead:
        """The latest block (number and time) of the node in use, asked once, waited for
        :attr:`request_timeout`: the block a read that names its block (``X-Chain-Block``) reads at.

        Raises:
            NodeError: the node does not answer, or answers with no usable block.
        """
        return read_head(self.rpc_url, timeout=self.request_timeout)

    def head(self) -> BlockRef:
        """Number and hash of the latest block."""
        return self._latest().ref

    def head_time(self) -> int:
        """The latest block's timestamp: the ledger's clock, which every expiry and deadline it checks is read
        on (a node's clock may run ahead of this machine's: anvil after ``evm_increaseTime``)."""
        return self._latest().time

    def next_block_time(self) -> int:
        """The time a check of an expiry before sending compares with: the next block's earliest timestamp on
        a chain whose block times strictly increase (geth's Clique, Besu's QBFT: one past the head's), and not
        before this machine's clock, since a node stamps its blocks with its own clock (the head of a chain
        mining on demand lags it while nothing is sent). anvil mining several blocks a second stamps them
        with the same second, so there the next block may carry the head's own time and the answer is a
        second ahead: on the side of refusing early (the contract judges at the block the transaction lands
        in). Assumes the node's clock is not behind this machine's."""
        return max(self.head_time() + 1, int(time.time()))

    def block_hash(self, number: int) -> str | None:
        """Hash of block ``number``, or None when the chain is not that long."""
        block = self._block(number)
        return None if block is None else block.ref.hash

    def transaction(self, tx_hash: str) -> Mapping[str, Any] | None:
        """The transaction as the node answers ``eth_getTransactionByHash`` (its fields as sent: hex strings),
        or None when the node does not know it.

        Raises:
            NodeError: the node is unreachable, or answers with something else than a transaction.
        """
        found = self._read("eth_getTransactionByHash", tx_hash)
        if found is not None and not isinstance(found, Mapping):
            raise NodeError(f"{self.rpc_url} answered eth_getTransactionByHash with {found!r:.200}")
        return found

    def block_transactions(self, number: int) -> tuple[BlockRef, list[str]] | None:
        """Block ``number`` and the hashes of its transactions in block order; None when the chain is not
        that long."""
        block = self._block(number)
        return None if block is None else (block.ref, block.transactions)

    def pending_nonce(self, address: str) -> int:
        """The node's next nonce for ``address``, counting transactions in its pool."""
        return int(self._rpc(self.w3.eth.get_transaction_count, to_checksum_address(address), "pending"))

    def mined_nonce(self, address: str, *, depth: int = 0) -> int:
        """The next nonce for ``address`` on the node's chain ``depth`` blocks below its head (0: the latest
        block): its mined transactions only. A pool that has not caught up with a new head yet may judge
        nonces by another state; this is the chain's. Where the last blocks may be reorganised (Clique), a
        nonce used only in them may be free again on the branch that replaces them: read at the confirmation
        depth, the count holds only what is as final as an answered write."""
        checksummed = to_checksum_address(address)
        block: int | str = "latest" if depth == 0 else max(self.block_number() - depth, 0)
        return int(self._rpc(self.w3.eth.get_transaction_count, checksummed, block))

    def is_known(self, tx_hash: str) -> bool:
        """Whether the node holds the transaction, in its pool or mined."""
        try:
            self._rpc(self.w3.eth.get_transaction, tx_hash)
        except TransactionNotFound:
            return False
        return True

    def signed_transaction(self, tx_hash: str) -> SignedTx | None:
        """The signed bytes of a transaction the node holds, whoever sent it, with its sender and nonce;
        None when the node does not hold it, or does not serve signed bytes (``eth_getRawTransactionByHash``).

        Raises:
            NodeError: the node is unreachable.
        """
        try:
            tx = self._rpc(self.w3.eth.get_transaction, tx_hash)
            raw = self._rpc(self.w3.eth.get_raw_transaction, tx_hash)
        except (TransactionNotFound, Web3RPCError):
            return None
        return SignedTx(tx_hash, bytes(raw), to_checksum_address(tx["from"]), int(tx["nonce"]))

    def receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        """The transaction's receipt, or None while it is not mined (on this node's chain): its fields that
        the client and the service read, made what web3 makes them (ints, bytes, checksummed addresses) from
        the answer as the node gave it. web3 formatted every field of it and of its logs (0.3 ms of CPU a
        read), and a write reads its receipt until it is mined.

        Raises:
            NodeError: the node is unreachable, or answers with something else than a receipt.
        """
        return self._receipt_record(self._read("eth_getTransactionReceipt", tx_hash))

    def receipts(self, tx_hashes: Sequence[str]) -> list[Mapping[str, Any] | None]:
        """:meth:`receipt` of each of ``tx_hashes``, in order, read in JSON-RPC batches (:meth:`_batch`): the
        anchorer follows every anchor it has sent at each new block, one round trip for them all.

        Raises:
            NodeError: the node is unreachable, refuses a read, or answers with something else than a
                receipt.
        """
        asked = [("eth_getTransactionReceipt", [h]) for h in tx_hashes]
        answers = self._batch(asked)
        return [
            self._receipt_record(self._answered(method, params, answer))
            for (method, params), answer in zip(asked, answers, strict=True)
        ]

    def _receipt_record(self, found: Any) -> Mapping[str, Any] | None:
        """A receipt as the node answered it, the fields :meth:`receipt` gives made what web3 makes them.

        Raises:
            NodeError: something else than a receipt, or null.
        """
        if found is None:
            return None
        try:
            return {
                "transactionHash": HexBytes(found["transactionHash"]),
                "transactionIndex": rpc.quantity(found["transactionIndex"]),
                "blockHash": HexBytes(found["blockHash"]),
                "blockNumber": rpc.quantity(found["blockNumber"]),
                "from": to_checksum_address(found["from"]),
                "to": _address(found.get("to")),
                "gasUsed": rpc.quantity(found["gasUsed"]),
                "status": rpc.quantity(found["status"]),
                "contractAddress": _address(found.get("contractAddress")),
                "logs": [_log(log) for log in found["logs"]],
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(
                f"{self.rpc_url} answered eth_getTransactionReceipt with no usable receipt: {exc}"
            ) from None

    def code_at(self, address: str) -> bytes:
        return bytes(self._rpc(self.w3.eth.get_code, to_checksum_address(address)))

    def balance(self, address: str) -> int:
        return int(self._rpc(self.w3.eth.get_balance, to_checksum_address(address)))

    def decode_logs(self, logs: Iterable[Mapping[str, Any]]) -> list[DecodedEvent]:
        """Decode the logs the ledger emitted (logs of other contracts and unknown topics are skipped)."""
        decoded = []
        for log in logs:
            address = to_checksum_address(log["address"])
            if self.address is not None and address != self.address:
                continue
            topics = log.get("topics") or []
            abi = self._events.get(bytes(topics[0])) if topics else None
            if abi is None:
                continue
            # The one log decoder (verifier.abi), which dxl verify and the audit trail's codec read with too.
            args = abi_codec.decode_log(abi, [bytes(t) for t in topics], bytes(log["data"]))
            decoded.append(
                DecodedEvent(
                    abi["name"],
                    args,
                    int(log["logIndex"]),
                    str(address),
                    "0x" + bytes(log["transactionHash"]).hex(),
                    "0x" + bytes(log["blockHash"]).hex() if log.get("blockHash") else None,
                )
            )
        return decoded

    def _logs(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``eth_getLogs`` of ``query``, each log's fields that :meth:`decode_logs` and :meth:`get_logs` read
        made what web3 makes them (bytes, ints), the rest left out: web3 formatted every field of every log.

        Raises:
            NodeError: the node is unreachable, refuses the query, or answers with something else than logs.
        """
        found = self._read("eth_getLogs", query)
        try:
            return [_log(log) for log in found]
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(f"{self.rpc_url} answered eth_getLogs with no usable logs: {exc}") from None

    def get_logs(
        self,
        event: str,
        *topics: bytes | None,
        from_block: int = 0,
        to_block: int | None = None,
        newest_first: bool = False,
        max_range: int = MAX_LOG_RANGE,
    ) -> Iterator[tuple[DecodedEvent, int]]:
        """The ledger's ``event`` logs whose indexed arguments equal ``topics`` (None matches any), with their
        block numbers, read in ranges of at most ``max_range`` blocks so that nodes capping ``eth_getLogs``
        (Besu) answer too. ``newest_first`` walks the ranges backwards, so a look-up that stops at its first
        hit reads only as far back as it must.

        Raises:
            NodeError: the node is unreachable or refuses the query.
        """
        abi = next((e for e in self._events.values() if e["name"] == event), None)
        if abi is None:
            raise NodeError(f"the ledger has no event {event!r}")
        topic_list: list[str | None] = ["0x" + abi_codec.event_topic(abi).hex()]
        topic_list += ["0x" + bytes(t).hex() if t is not None else None for t in topics]
        last = self.block_number() if to_block is None else to_block
        ranges = [(a, min(a + max_range - 1, last)) for a in range(from_block, last + 1, max_range)]
        for first, end in reversed(ranges) if newest_first else ranges:
            query = {
                "address": self._require_address(),
                "fromBlock": hex(first),
                "toBlock": hex(end),
                "topics": topic_list,
            }
            logs = self._logs(query)
            pairs = list(zip(self.decode_logs(logs), (int(log["blockNumber"]) for log in logs), strict=True))
            yield from reversed(pairs) if newest_first else pairs

    # --- fees and gas -----------------------------------------------------------------------------------

    def fee_fields(self) -> dict[str, int]:
        """Fee fields for a new transaction (cached for a second: many transactions share a block)."""
        with self._fees_lock:
            now = time.monotonic()
            if self._fees is not None and now - self._fees[0] < _FEE_CACHE_S:
                return dict(self._fees[1])
            latest = self._rpc(self.w3.eth.get_block, "latest")
            gas_price = int(self._rpc(lambda: self.w3.eth.gas_price))
            base_fee = latest.get("baseFeePerGas")
            if base_fee is None:
                fees = {"gasPrice": gas_price}
            else:
                tip = max(gas_price - int(base_fee), 0)
                # Twice the base fee survives six full blocks of growth; 0 stays 0 on free-gas chains.
                fees = {"maxFeePerGas": 2 * int(base_fee) + tip, "maxPriorityFeePerGas": tip}
            self._fees = (now, fees)
            return dict(fees)

    def estimate_gas(self, request: Mapping[str, Any]) -> int:
        """``eth_estimateGas`` plus the safety margin, run on the block the transaction can be mined in next
        (``pending``): with its time and number, which every expiry and deadline of the contracts is compared
        with.

        On the latest block, the previous second or block period, a write near a deadline passed the estimate
        and was mined, and refused, in the next block (a grant a second before its agreement's end), or was
        refused though the next block would take it (a grant a second before the agreement's validity
        begins). Without a block the node picks: geth the latest, anvil its clock now, not the time set for
        its next block (tests/network/test_network.py, tests/api/test_errors.py).

        The pending block also holds the node's pool: other writes, which may yet be mined after this one or
        not at all. A refusal there while the pool holds any is judged again on the latest block, as the
        service's reads are: sent when the latest block takes it (a concurrent draw of the same inspection
        reverts behind the one ahead of it, and is answered by that one's draw), the latest block's refusal
        otherwise.

        Raises:
            LedgerRevertError: the transaction would revert.
        """
        probe = {k: v for k, v in request.items() if k in ("from", "to", "data", "value")}
        try:
            estimate = self._estimate(probe, "pending")
        except LedgerRevertError:
            if not self._pool_pending():
                raise
            estimate = self._estimate(probe, "latest")
        return int(estimate * GAS_MARGIN) + GAS_HEADROOM

    def _estimate(self, probe: Mapping[str, Any], block: str) -> int:
        try:
            return int(self._rpc(self.w3.eth.estimate_gas, probe, block))
        except ContractLogicError as exc:
            raise self.errors.decode(exc.data) from None
        except Web3RPCError as exc:
            raise NodeError(f"gas estimation failed: {_rpc_message(exc)}") from None

    def _pool_pending(self) -> bool:
        """Whether the node's pending block holds transactions (a node that gives its latest block as the
        pending one answers yes: its estimate is then judged on the latest, as without a pending block)."""
        reply = self._rpc(self.w3.provider.make_request, "eth_getBlockByNumber", ["pending", False])
        block = reply.get("result") if isinstance(reply, Mapping) else None
        return not isinstance(block, Mapping) or bool(block.get("transactions"))

    # --- sending ----------------------------------------------------------------------------------------

    def build(
        self, sender: str, fn: str, *args: Any, value: int = 0, gas: int | None = None, to: str | None = None
    ) -> dict[str, Any]:
        """The unsigned transaction calling ``fn(*args)`` on the ledger (``fn=""``: a transfer to ``to``).

        Gas is estimated (with margin) unless given; an estimation revert is raised as
        :class:`LedgerRevertError`.
        """
        if fn:
            target = self._require_address()
            data = self.functions.calldata(fn, args)
        else:
            if to is None:
                raise NodeError("a transfer needs a recipient")
            target, data = to_checksum_address(to), "0x"
        request: dict[str, Any] = {
            "from": to_checksum_address(sender),
            "to": target,
            "data": data,
            "value": value,
            "chainId": self.chain_id,
        }
        request["gas"] = gas if gas is not None else self.estimate_gas(request)
        request.update(self.fee_fields())
        return request

    def sign(self, account: LocalAccount, request: Mapping[str, Any], nonce: int) -> SignedTx:
        """``request`` signed by ``account`` with ``nonce`` (nothing is sent)."""
        tx = {k: v for k, v in request.items() if k != "from"}
        signed = account.sign_transaction({**tx, "nonce": nonce})
        return SignedTx(
            "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction), str(account.address), nonce
        )

    def send_signed(self, signed: SignedTx) -> None:
        """Send the exact signed bytes; sending bytes the node already holds succeeds (so this is idempotent).

        A lost or late answer, "already known" or "nonce too low" all mean: look the hash up.

        Raises:
            NonceTakenError: the node does not hold this transaction and its nonce is used by another one.
            TransactionRefusedError: the node refused it for another reason.
            NodeError: the node is unreachable: whether it got the transaction is unknown.
        """
        try:
            self._rpc(self.w3.eth.send_raw_transaction, signed.raw)
            return
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            if not is_nonce_error(message):
                raise TransactionRefusedError(signed.sender, message) from None
        except NodeError:
            if self.is_known(signed.tx_hash):
                return
            raise
        if not self.is_known(signed.tx_hash):
            raise NonceTakenError(signed.tx_hash, signed.sender, signed.nonce)

    def submit(self, account: LocalAccount, request: Mapping[str, Any]) -> PendingTx:
        """Sign ``request`` with a fresh nonce and send it (see :meth:`send_signed`). Signs again, with a new
        nonce, only when the first transaction provably cannot be mined (:class:`NonceTakenError`).

        Raises:
            NodeError: the node refused the transaction for another reason, or is unreachable.
        """
        sender = str(account.address)
        for attempt in range(_NONCE_RETRIES + 1):
            nonce = self.nonces.reserve(sender)
            signed = self.sign(account, request, nonce)
            try:
                self.send_signed(signed)
            except NonceTakenError:
                if attempt < _NONCE_RETRIES:
                    self.nonces.resync(sender)
                    continue
                raise
            except TransactionRefusedError:
                self.nonces.release(sender, nonce)
                raise
            except NodeError:
                self.nonces.forget(sender)
                raise
            return PendingTx(signed.tx_hash, sender, nonce, dict(request))
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(self, pending: PendingTx | str, *, timeout: float | None = None) -> TxResult:
        """Wait for a transaction's receipt.

        Raises:
            TransactionTimeoutError: not mined within ``timeout`` (default: the client's receipt timeout).
            LedgerRevertError: mined with status 0 (the revert reason is recovered by replaying the call).
        """
        tx_hash = pending.tx_hash if isinstance(pending, PendingTx) else pending
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delays = receipt_poll_delays()
        while (receipt := self.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise TransactionTimeoutError(tx_hash, limit)
            time.sleep(next(delays))
        return self._result(receipt, pending if isinstance(pending, PendingTx) else None)

    def wait_all(self, pending: Sequence[PendingTx], *, timeout: float | None = None) -> list[TxResult]:
        """Wait for many transactions at once, polling only the ones not yet mined; results in input order.

        Raises:
            TransactionTimeoutError: some transaction was not mined in time (the first one missing is named).
            LedgerRevertError: a transaction was mined with status 0 (the first one, in input order).
        """
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delays = receipt_poll_delays()
        receipts: dict[int, Any] = {}
        while len(receipts) < len(pending):
            for i, tx in enumerate(pending):
                if i in receipts:
                    continue
                try:
                    receipts[i] = self._rpc(self.w3.eth.get_transaction_receipt, tx.tx_hash)
                except TransactionNotFound:
                    # Receipts arrive block by block: the rest of this block's transactions are not mined yet.
                    break
            else:
                continue
            if time.monotonic() > deadline:
                missing = next(i for i in range(len(pending)) if i not in receipts)
                raise TransactionTimeoutError(pending[missing].tx_hash, limit)
            time.sleep(next(delays))
        return [self._result(receipts[i], pending[i]) for i in range(len(pending))]

    def outcome(self, receipt: Mapping[str, Any]) -> TxResult:
        """The result of a mined transaction from its receipt.

        Raises:
            LedgerRevertError: it was mined with status 0.
        """
        return self._result(receipt, None)

    def _result(self, receipt: Mapping[str, Any], pending: PendingTx | None) -> TxResult:
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        if receipt["status"] != 1:
            raise self._replay_revert(receipt, tx_hash, pending)
        created = receipt.get("contractAddress")
        return TxResult(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            block_hash="0x" + bytes(receipt["blockHash"]).hex(),
            gas_used=int(receipt["gasUsed"]),
            events=self.decode_logs(receipt["logs"]),
            contract_address=str(created) if created else None,
        )

    def _replay_revert(self, receipt: Mapping[str, Any], tx_hash: str, pending: PendingTx | None) -> DxlError:
        """Recover the revert reason of a mined failed transaction.

        The node's trace of the transaction first (``debug_traceTransaction``, top call only): it ran on the
        state the transaction met, after the transactions ahead of it in its block, so a cause in the same
        block (a party suspended just before it) is named. Tracing is not enabled on every production node;
        without it the call is replayed with standard ``eth_call``: on the previous block's state, and when
        it passes there (its cause came in its own block), on the state after its block, which holds that
        cause unless a later transaction of the block undid it.
        """
        traced = self._traced_revert(tx_hash)
        if traced is not None:
            return traced
        try:
            tx = pending.request if pending else self._rpc(self.w3.eth.get_transaction, tx_hash)
            call = {
                "from": tx["from"],
                "to": tx["to"],
                "data": tx.get("data") or tx.get("input"),
                "gas": tx["gas"],
            }
            block = int(receipt["blockNumber"])
            for state in (block - 1, block):
                self._rpc(self.w3.eth.call, call, state)
        except ContractLogicError as exc:
            return self.errors.decode(exc.data, tx_hash=tx_hash)
        except (Web3RPCError, NodeError, KeyError):
            pass
        if int(receipt["gasUsed"]) >= int((pending.request if pending else {}).get("gas", 1 << 62)):
            return LedgerRevertError(None, tx_hash=tx_hash, message="transaction ran out of gas")
        return LedgerRevertError(
            None, tx_hash=tx_hash, message="transaction reverted; the reason is not recoverable"
        )

    def _traced_revert(self, tx_hash: str) -> LedgerRevertError | None:
        """The revert of a mined transaction as the node's trace gives it; None when the node does not trace
        (asked once per client: a node without the debug API is not asked again) or the trace carries no
        revert data."""
        if not self._traces:
            return None
        try:
            answer = self._rpc(
                lambda: self.w3.provider.make_request(
                    RPCEndpoint("debug_traceTransaction"),
                    [tx_hash, {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}],
                )
            )
        except NodeError:
            return None
        result = answer.get("result") if isinstance(answer, Mapping) else None
        if not isinstance(result, Mapping):
            error = answer.get("error") if isinstance(answer, Mapping) else None
            if isinstance(error, Mapping) and error.get("code") in _NO_SUCH_METHOD:
                self._traces = False
            return None
        output = result.get("output")
        if not result.get("error") or not isinstance(output, str) or len(output) < 10:
            return None
        return self.errors.decode(output, tx_hash=tx_hash)

    def transact(
        self, account: LocalAccount, fn: str, *args: Any, gas: int | None = None, timeout: float | None = None
    ) -> TxResult:
        """Call ``fn(*args)`` on the ledger as ``account`` and wait until it is mined.

        Raises:
            LedgerRevertError: it reverts (at estimation, or mined with status 0).
            TransactionTimeoutError: not mined in time.
            NodeError: the node refused it or is unreachable.
        """
        return self.wait(
            self.submit(account, self.build(str(account.address), fn, *args, gas=gas)), timeout=timeout
        )

    def transfer(
        self, account: LocalAccount, to: str, value: int, *, timeout: float | None = None
    ) -> TxResult:
        """Send ``value`` wei from ``account`` to ``to`` and wait until mined."""
        request = self.build(str(account.address), "", to=to, value=value, gas=21_000)
        return self.wait(self.submit(account, request), timeout=timeout)

    def deploy(
        self, account: LocalAccount, bytecode: str, *ctor_args: Any, timeout: float | None = None
    ) -> TxResult:
        """Deploy a contract with this client's ABI; the result's ``contract_address`` is the new contract's.

        Raises:
            LedgerRevertError: the constructor reverts.
            TransactionTimeoutError: not mined in time.
        """
        factory = self.w3.eth.contract(abi=self.abi, bytecode=bytecode)
        data = factory.constructor(*ctor_args).data_in_transaction
        request: dict[str, Any] = {
            "from": str(account.address),
            "data": data,
            "value": 0,
            "chainId": self.chain_id,
        }
        request["gas"] = self.estimate_gas(request)
        request.update(self.fee_fields())
        return self.wait(self.submit(account, request), timeout=timeout)

    def send_batch(
        self,
        calls: Sequence[tuple[LocalAccount, str, Sequence[Any]]],
        *,
        gas: int | None = None,
        timeout: float | None = None,
    ) -> list[TxResult]:
        """Sign and send every ``(account, fn, args)`` first, then wait for all receipts (results in order).

        With ``gas`` given, no estimation is done (the fast path for many similar transactions).

        Raises:
            LedgerRevertError, TransactionTimeoutError, NodeError: as :meth:`transact`, for the first failure.
        """
        pending = [
            self.submit(acct, self.build(str(acct.address), fn, *args, gas=gas)) for acct, fn, args in calls
        ]
        return self.wait_all(pending, timeout=timeout)


def _rpc_message(exc: Web3RPCError) -> str:
    answer = getattr(exc, "rpc_response", None)
    if isinstance(answer, Mapping) and isinstance(answer.get("error"), Mapping):
        return str(answer["error"].get("message", answer["error"]))
    return str(exc)


def selector_of(signature: str) -> str:
    """``0x``-hex 4-byte selector of an error or function signature."""
    return "0x" + keccak(text=signature)[:4].hex()
