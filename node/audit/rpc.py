"""The audit tools' only view of the chain: the verifier's JSON-RPC client with batches, a kept-alive
connection and failover.

Only standard ``eth_*`` methods are used (``eth_blockNumber``, ``eth_getLogs``, ``eth_getBlockByNumber``,
``eth_getTransactionReceipt``, ``eth_chainId``), so any node will do (Besu, Geth, anvil). Separate from the
ledger client on purpose: the report verifier must run with nothing of the service but this file and
:mod:`node.audit.events`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import orjson

from node.errors import NodeError
from node.settings import DEFAULT_RPC_TIMEOUT_S
from node.tls import tls_context
from verifier import rpc

log = logging.getLogger("dxl.audit.rpc")

#: Requests per JSON-RPC batch; Besu accepts 1,024 by default (--rpc-http-max-batch-size).
BATCH_SIZE = 200


def quantity(value: Any) -> int:
    """A JSON-RPC quantity (``0x``-prefixed hex string) or an int already decoded, as int."""
    return value if isinstance(value, int) else rpc.quantity(value)


class JsonRpc(rpc.JsonRpc):
    """The verifier's JSON-RPC client over a kept-alive HTTP(S) connection, with batches and failover.

    ``failover_urls``: other nodes of the same network, used in turn when the one in use does not answer (a
    connection or timeout failure; an answer that is an error is not a reason to move). Every method here is
    a read, safe to run again elsewhere; the indexer's block hashes catch a node on another branch.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT_S,
        failover_urls: Sequence[str] = (),
        block: int | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, block=block)
        self._urls = (url, *failover_urls)
        self._active = 0
        self._client = httpx.Client(timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active_url(self) -> str:
        """The URL in use now (``url``, or a failover URL after a failover)."""
        return self._urls[self._active]

    def _post(self, method: str, body: Any) -> Any:
        for _ in self._urls:
            url = self.active_url
            try:
                response = self._client.post(url, json=body)
                response.raise_for_status()
                # orjson bounds nesting (1,024 levels) without the standard library's recursion, which an
                # answer nested deeper ended in a traceback (and, under eth-account's raised recursion limit,
                # a crash); faster on the indexer's large log pages too.
                return orjson.loads(response.content)
            except httpx.TransportError as exc:
                failure: Exception = exc
                if isinstance(exc, httpx.TimeoutException):
                    failure = NodeError(f"no answer within {self.timeout:g} s ({type(exc).__name__})")
                if len(self._urls) == 1:
                    break
                self._active = (self._active + 1) % len(self._urls)
                log.warning("node %s stopped answering; now using %s", url, self.active_url)
            except (httpx.HTTPError, ValueError) as exc:
                raise NodeError(f"no usable JSON-RPC answer from {url} to {method}: {exc}") from exc
        raise NodeError(f"no usable JSON-RPC answer from {url} to {method}: {failure}") from failure

    def call(self, method: str, *params: Any) -> Any:
        """One call; returns ``result``.

        Raises:
            NodeError: unreachable node, non-JSON-RPC answer, or an error reply.
        """
        try:
            return super().call(method, *params)
        except rpc.RpcError as exc:
            raise NodeError(
                f"{self.active_url} rejected {method}{list(params)!r:.120}: {exc.reason}"
            ) from None

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Many calls, sent in batches of :data:`BATCH_SIZE`; results in the order of ``calls``.

        Raises:
            NodeError: as :meth:`call`, for any call of the batch.
        """
        results: list[Any] = []
        for start in range(0, len(calls), BATCH_SIZE):
            chunk = calls[start : start + BATCH_SIZE]
            # Read at the pinned block as a single call is; what the pin answers alone is not sent.
            pinned = [self.at_pin(m, list(p)) for m, p in chunk]
            asked = [(i, m, p) for i, ((m, _), p) in enumerate(zip(chunk, pinned, strict=True))
                     if not isinstance(p, rpc.Answered)]  # fmt: skip
            reply = self._post(chunk[0][0], [rpc.request(i, m, p) for i, m, p in asked]) if asked else []
            if not isinstance(reply, list) or len(reply) != len(asked):
                raise NodeError(f"{self.active_url} answered a batch of {len(asked)} with {reply!r:.300}")
            by_id = {r.get("id"): r for r in reply if isinstance(r, dict)}
            for i, (method, params) in enumerate(chunk):
                given = pinned[i]
                if isinstance(given, rpc.Answered):
                    results.append(given.result)
                    continue
                try:
                    results.append(rpc.result_of(method, by_id.get(i)))
                except rpc.RpcError as exc:
                    raise NodeError(
                        f"{self.active_url} rejected {method}{params!r:.120}: {exc.reason}"
                    ) from None
        return results

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def head_time(self) -> int:
        """The timestamp of the head block: the ledger's clock, which every fact's block time is read on."""
        return quantity(self.call("eth_getBlockByNumber", "latest", False)["timestamp"])

    def block_time(self, number: int) -> int:
        """The timestamp of block ``number``.

        Raises:
            NodeError: the block does not exist (beyond the head) or the node fails.
        """
        (block,) = self.blocks([number])
        return quantity(block["timestamp"])

    def logs(self, address: str | Sequence[str], from_block: int, to_block: int) -> list[dict[str, Any]]:
        """Logs of one contract, or of several (one request: ``eth_getLogs`` takes a list of addresses and
        answers in chain order)."""
        where = address if isinstance(address, str) else list(address)
        return list(
            self.call(
                "eth_getLogs", {"address": where, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
            )
        )

    def logs_with_headers(
        self, address: str | Sequence[str], first: int, last: int, *, batch_blocks: int
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Each live log of ``address`` in blocks ``first..last``, in chain order, with its block's header;
        read ``batch_blocks`` blocks per ``eth_getLogs`` so no single answer grows with the range.

        Raises:
            NodeError: the node fails or a block is missing.
        """
        for start in range(first, last + 1, batch_blocks):
            end = min(start + batch_blocks - 1, last)
            logs = [log for log in self.logs(address, start, end) if not log.get("removed")]
            numbers = sorted({quantity(log["blockNumber"]) for log in logs})
            headers = {quantity(b["number"]): b for b in self.blocks(numbers)} if numbers else {}
            for log in logs:
                yield log, headers[quantity(log["blockNumber"])]

    def blocks(self, numbers: Sequence[int], *, full: bool = False) -> list[dict[str, Any]]:
        """Blocks by number (``full``: with transaction objects).

        Raises:
            NodeError: a block does not exist (beyond the head) or the node fails.
        """
        found = self.batch([("eth_getBlockByNumber", [hex(n), full]) for n in numbers])
        for n, block in zip(numbers, found, strict=True):
            if block is None:
                raise NodeError(f"{self.url} has no block {n}")
        return found

    def receipts(self, tx_hashes: Sequence[str]) -> list[dict[str, Any]]:
        return self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
