"""A minimal Ethereum JSON-RPC client over HTTP(S), on the standard library.

The on-chain check needs six read-only methods (``eth_chainId``, ``eth_getCode``, ``eth_call``,
``eth_blockNumber``, ``eth_getLogs`` and nothing that signs); web3.py would add most of a second of imports to
every ``dxl verify``. Errors of any kind (transport, HTTP status, JSON, a JSON-RPC error object) become one
:class:`RpcError` carrying the method and the reason.
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


class JsonRpc:
    """Calls JSON-RPC methods at ``url``, one HTTP POST per call."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, *params: Any) -> Any:
        """The ``result`` of ``method(params)``.

        Raises:
            RpcError: no result (transport failure, HTTP status, malformed answer or a JSON-RPC error).
        """
        return result_of(method, self._post(method, request(next(self._ids), method, params)))

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
            raise RpcError(method, f"{type(e).__name__}: {e}") from None


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
