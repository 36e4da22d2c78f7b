"""A minimal Ethereum JSON-RPC client over HTTP(S), on the standard library.

The on-chain check needs six read-only methods (``eth_chainId``, ``eth_getCode``, ``eth_call``,
``eth_blockNumber``, ``eth_getLogs`` and nothing that signs); web3.py would add most of a second of imports to
every ``dxl verify``. Errors of any kind (transport, HTTP status, JSON, a JSON-RPC error object) become one
:class:`RpcError` carrying the method and the reason.

A client pinned to a block (:meth:`JsonRpc.pin`) reads the chain as it stood at that block, whatever is mined
meanwhile: a check that names the block it read (``read from URL at block N``) makes every read of its answer
there, or a block mined between two of its reads gives an answer that held at no block.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any

from verifier import jsontext


class RpcError(Exception):
    """Thrown when a JSON-RPC call does not return a result (unreachable, HTTP error, error object)."""

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"{method}: {reason}")
        self.method = method
        self.reason = reason


#: The position of the block parameter of the methods that read state at a block.
_BLOCK_PARAMETER = {
    "eth_call": 1,
    "eth_getCode": 1,
    "eth_getBalance": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getBlockByNumber": 0,
}
#: Block tags that name the head, or beyond it, as the node sees it at the moment it answers.
_HEAD_TAGS = ("latest", "pending")
#: The block parameter of a read of a value set once and never changed (an immutable of a contract, its code,
#: a grant's agreement): read at the pinned block, and at the head where the node no longer holds that block's
#: state, which gives the same value. A node keeps the state of its last blocks only (the embedded node 64,
#: Besu and geth 128 to 512 unless they archive), and a re-check reading for longer than that would otherwise
#: end in the node's refusal of a value that could not have differed. Unpinned, it is ``latest``.
SET_ONCE = "set-once"
#: How long one call waits for the node's answer unless the caller says otherwise (``DXL_RPC_TIMEOUT``'s
#: default, ``dxl verify``'s too): one attempt, never repeated here, so a node that accepts the connection and
#: never answers costs its caller this long and no more.
DEFAULT_TIMEOUT_S = 30.0


class JsonRpc:
    """Calls JSON-RPC methods at ``url``, one HTTP POST per call; pinned to ``block`` when one is given
    (:meth:`pin`)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S, block: int | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)
        self.block: int | None = None
        if block is not None:
            self.pin(block)

    def pin(self, block: int) -> None:
        """Read the chain as it stood at ``block`` from now on: ``eth_blockNumber`` answers ``block``, the
        head tags (``latest``, ``pending``) of state reads and ``eth_getBlockByNumber`` name it, and
        ``eth_getLogs`` ends there. A block above it does not exist for this client (``eth_getBlockByNumber``
        answers null, a log range starting above it is empty).
        """
        if type(block) is not int or block < 0:
            raise ValueError(f"a block number is a non-negative integer, got {block!r}")
        self.block = block

    def view(self) -> JsonRpc:
        """A client of the same node, pinned where this one is (or not), whose :meth:`pin` is its own: what a
        request takes of a client that many requests share, so that pinning it to the head the request read
        does not move the others' reads."""
        return JsonRpc(self.url, timeout=self.timeout, block=self.block)

    def call(self, method: str, *params: Any) -> Any:
        """The ``result`` of ``method(params)`` (at the pinned block, if any; see :data:`SET_ONCE`).

        Raises:
            RpcError: no result (transport failure, HTTP status, malformed answer or a JSON-RPC error).
        """
        asked = list(params)
        at = _BLOCK_PARAMETER.get(method)
        if at is None or at >= len(asked) or asked[at] != SET_ONCE:
            return self._call(method, asked, pinned=True)
        asked[at] = "latest"
        try:
            return self._call(method, asked, pinned=True)
        except RpcError:
            if self.block is None:
                raise
        return self._call(method, asked, pinned=False)

    def _call(self, method: str, params: list[Any], *, pinned: bool) -> Any:
        """One call, at the pinned block if ``pinned``, else as ``params`` say."""
        sent = self.at_pin(method, params) if pinned else params
        if isinstance(sent, Answered):
            return sent.result
        return result_of(method, self._post(method, request(next(self._ids), method, sent)))

    def at_pin(self, method: str, params: list[Any]) -> list[Any] | Answered:
        """``params`` of ``method`` as they read the pinned block, or the answer itself when the pin alone
        gives it (the head's number; a block or range beyond the pin); ``params`` as they are if unpinned.
        :data:`SET_ONCE` names the pinned block here (``latest`` unpinned): only :meth:`call` falls back."""
        at = _BLOCK_PARAMETER.get(method)
        if at is not None and at < len(params) and params[at] == SET_ONCE:
            params = [*params[:at], "latest", *params[at + 1 :]]
        pin = self.block
        if pin is None:
            return params
        if method == "eth_blockNumber":
            return Answered(hex(pin))
        if method == "eth_getLogs" and params and isinstance(params[0], dict):
            where = dict(params[0])
            if "blockHash" in where:
                return params
            start = _block_at(where.get("fromBlock", "latest"), pin)
            end = _block_at(where.get("toBlock", "latest"), pin)
            if start is not None and start > pin:
                return Answered([])
            if start is not None:
                where["fromBlock"] = hex(start)
            if end is not None:
                where["toBlock"] = hex(min(end, pin))
            return [where, *params[1:]]
        number = None if at is None or at >= len(params) else _block_at(params[at], pin)
        if at is None or number is None:
            return params
        if number > pin:
            # A block the pinned chain has not reached: no such block; state there is the node's to refuse.
            return Answered(None) if method == "eth_getBlockByNumber" else params
        return [*params[:at], hex(number), *params[at + 1 :]]

    def _post(self, method: str, body: Any) -> Any:
        """POST one JSON-RPC request (or batch) and return the decoded answer; the transport of this client.

        Raises:
            RpcError: transport failure, HTTP status or an answer that is not JSON.
        """
        raw = json.dumps(body).encode("utf-8")
        post = urllib.request.Request(
            self.url, data=raw, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(post, timeout=self.timeout) as response:
                # Any node an auditor names answers here: JSON nested past the parser's recursion is a
                # malformed answer (RpcError), not a traceback ending the check with a mismatch's status.
                return jsontext.loads(response.read(), unique_keys=False)
        except urllib.error.HTTPError as e:
            raise RpcError(method, f"HTTP {e.code} {e.reason}") from None
        except (OSError, ValueError) as e:  # URLError, timeouts and refused connections are OSErrors
            if timed_out(e):
                raise RpcError(method, f"no answer within {self.timeout:g} s") from None
            raise RpcError(method, f"{type(e).__name__}: {e}") from None


class Answered:
    """The answer a pinned client gives without asking the node (:meth:`JsonRpc.at_pin`)."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


def _block_at(tag: Any, pin: int) -> int | None:
    """A block parameter (a number, a hex quantity or a tag) as a block number, the head tags as ``pin``;
    None for the tags below the head (``earliest``, ``safe``, ``finalized``), left to the node: the first is
    below any pin, the others a node places at or below its head and so at most a few blocks past the pin
    (no reader of dxl asks for them) -- and for anything else, which the node refuses as it would."""
    if tag in _HEAD_TAGS:
        return pin
    if type(tag) is int:
        return tag
    if isinstance(tag, str) and tag.startswith("0x"):
        try:
            return int(tag, 16)
        except ValueError:
            return None
    return None


def timed_out(failure: BaseException) -> bool:
    """Whether a transport failure of :mod:`urllib` is the node not answering in time: a read's
    ``TimeoutError``, or a connection's, which urllib wraps in a ``URLError``. Told apart from a refused
    connection in what a reader says, since the remedy differs (a longer wait, or the node itself)."""
    return isinstance(failure, TimeoutError) or isinstance(getattr(failure, "reason", None), TimeoutError)


def request(ident: int, method: str, params: Any) -> dict[str, Any]:
    """One JSON-RPC 2.0 request object."""
    return {"jsonrpc": "2.0", "id": ident, "method": method, "params": list(params)}


def result_of(method: str, answer: Any) -> Any:
    """The ``result`` of one JSON-RPC answer object.

    Raises:
        RpcError: the answer is not a JSON-RPC object, carries an error, or has no result.
    """
    if not isinstance(answer, dict):
        raise RpcError(method, "the answer is not a JSON-RPC object")
    if answer.get("error") is not None:
        error = answer["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise RpcError(method, f"node error: {message}")
    if "result" not in answer:
        raise RpcError(method, "the answer has neither result nor error")
    return answer["result"]


def quantity(value: Any) -> int:
    """A JSON-RPC QUANTITY (``0x``-prefixed hex) as an int.

    Raises:
        ValueError: not a hex quantity.
    """
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"not a hex quantity: {value!r}")
    return int(value, 16)


def data(value: Any) -> bytes:
    """A JSON-RPC DATA value (``0x``-prefixed hex) as bytes.

    Raises:
        ValueError: not hex data.
    """
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"not hex data: {value!r}")
    return bytes.fromhex(value[2:])
