"""The node layer's one JSON-RPC client: the verifier's client (:mod:`verifier.rpc`: framing, errors,
pinning) over a kept-alive connection pool, with batches and, for the audit trail, failover.

Everything above the verifier reads the chain through it: the audit trail (indexer, report verifier, ``dxl
audit``) calls it directly; the service's ledger client (:class:`node.chain.LedgerClient`) gives web3 a
provider that posts through it, so web3 only encodes calls and formats answers. Only standard ``eth_*``
methods are used, so any node will do (Besu, Geth, anvil). The verifier keeps its own transport on the
standard library (``dxl verify`` imports nothing of this layer): this module adds a faster transport to its
client, not a second client.

The transport writes each request on a kept-alive socket and reads the answer with httptools (the C parser
uvicorn serves the API with): 0.012 ms of CPU a call against urllib3's 0.18 ms, most of which went to
``http.client`` parsing the answer's headers with the ``email`` package. ``requests``, before urllib3, cost
0.76 ms of a 1.07 ms ``eth_getBlockByNumber``. Every read and write of the API, the anchorer and the audit
trail pays it, and the suite's API tests spent a fifth of their CPU there. A node behind a proxy is reached
through urllib3's proxy manager. Nothing here sends a request again: a failed call is the caller's to repeat
or not (the ledger client never repeats ``eth_sendRawTransaction``, whose lost answer means "look the hash
up").
"""

from __future__ import annotations

import base64
import logging
import select
import socket
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httptools
import orjson

from node.errors import NodeError
from node.tls import tls_context
from verifier import rpc
from verifier.rpc import DEFAULT_TIMEOUT_S

log = logging.getLogger("dxl.node.rpc")

#: Requests per JSON-RPC batch; Besu accepts 1,024 by default (--rpc-http-max-batch-size).
BATCH_SIZE = 200
#: Connections kept open to each node: as many as the API's worker threads that may call it at once.
POOL_SIZE = 64


class NodeUnreachableError(NodeError):
    """Thrown when a node gives no answer: the connection is refused, reset or closed before the answer, or
    (:class:`NodeTimeoutError`) the answer does not come within the timeout. What makes a caller move to
    another node; an answer, even an error, does not.

    Attributes:
        url: the node's URL. ``kind``: the failure's short name (``ConnectionError``, ``ReadTimeout``...).
    """

    def __init__(self, url: str, method: str, reason: str, *, kind: str = "ConnectionError") -> None:
        self.url, self.method, self.reason, self.kind = url, method, reason, kind
        super().__init__(f"no usable JSON-RPC answer from {url} to {method}: {reason}")


class NodeTimeoutError(NodeUnreachableError, TimeoutError):
    """Thrown when a node does not answer within the client's timeout (connecting or reading)."""


class NodeHttpError(NodeError):
    """Thrown when a node (or a proxy before it) answers with an HTTP error status: it came at once, so asking
    again is the caller's choice (the ledger client's provider does, for reads)."""

    def __init__(self, url: str, method: str, status: int, reason: str) -> None:
        self.url, self.method, self.status = url, method, status
        super().__init__(f"no usable JSON-RPC answer from {url} to {method}: HTTP {status} {reason}".rstrip())


def quantity(value: Any) -> int:
    """A JSON-RPC quantity (``0x``-prefixed hex string) or an int already decoded, as int."""
    return value if isinstance(value, int) else rpc.quantity(value)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP_PROXY``/``HTTPS_PROXY`` by scheme, else
    ``ALL_PROXY``; none for a host ``NO_PROXY`` names), read once when a client is made: a client that read
    the environment per request raced a thread changing it (a KeyError that killed the API's chain
    watcher)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    found = urllib.request.getproxies()
    return found.get(parts.scheme) or found.get("all") or None


class _Transport:
    """POSTs JSON bodies to one node, through the environment's proxy for it if there is one
    (:func:`proxy_for`), and returns the answers' bodies. Credentials in the node's URL are sent as HTTP basic
    authorization, as ``requests`` and httpx did."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(secret).decode("ascii")
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        self.host = host + (f":{parts.port}" if parts.port else "")
        self.address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        self.target = urlunsplit(parts._replace(netloc=self.host))
        self.timeout = timeout
        proxy = proxy_for(url)
        #: TLS to the node (an HTTPS node) with the project's settings (:func:`node.tls.tls_context`).
        self.tls = tls_context() if parts.scheme == "https" or (proxy or "").startswith("https:") else None
        self._via: _Proxied | None = None if proxy is None else _Proxied(self, proxy)
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        request = [f"POST {path}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {self.host}"]
        request += [f"{name}: {value}" for name, value in self.headers.items()]
        self._head = ("\r\n".join(request) + "\r\nContent-Length: ").encode("ascii")
        #: Connections kept open, each used by one thread at a time.
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def post(self, url: str, method: str, body: bytes, seconds: float) -> bytes:
        """The body of the node's answer to ``body``.

        Raises:
            NodeTimeoutError: no connection, or no answer, within the timeout.
            NodeUnreachableError: the connection was refused, reset or closed before the answer, or the answer
                is not HTTP.
            NodeHttpError: an HTTP error status.
        """
        if self._via is not None:
            return self._via.post(url, method, body, seconds)
        conn = self._take() or self._connect(url, method, seconds)
        answer = _Answer()
        try:
            conn.sendall(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
            parser = answer.parser = httptools.HttpResponseParser(answer)
            while not answer.complete:
                data = conn.recv(65536)
                if not data:
                    if not answer.until_close():
                        raise ConnectionResetError("the connection closed before the answer")
                    break
                parser.feed_data(data)
            status, kept = parser.get_status_code(), answer.kept
        except TimeoutError as exc:
            conn.close()
            raise NodeTimeoutError(
                url, method, f"no answer within {seconds:g} s", kind="ReadTimeout"
            ) from exc
        except (OSError, httptools.HttpParserError) as exc:
            conn.close()
            raise NodeUnreachableError(url, method, _reason(exc)) from exc
        if kept:
            self._give(conn)
        else:
            conn.close()
        if status >= 400:
            raise NodeHttpError(url, method, status, answer.reason)
        return b"".join(answer.body)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._via is not None:
            self._via.close()

    def _connect(self, url: str, method: str, seconds: float) -> socket.socket:
        """A new connection to the node (TLS set up for an HTTPS node).

        Raises:
            NodeTimeoutError: not connected within the timeout.
            NodeUnreachableError: refused, or TLS failed (the node's certificate, its name).
        """
        try:
            conn = socket.create_connection(self.address, timeout=self.timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request is one small write
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_hostname=self.address[0])
        except TimeoutError as exc:
            raise NodeTimeoutError(
                url, method, f"no answer within {seconds:g} s", kind="ConnectTimeout"
            ) from exc
        except OSError as exc:
            raise NodeUnreachableError(url, method, _reason(exc)) from exc
        return conn

    def _take(self) -> socket.socket | None:
        """A kept connection still open: one the node closed while it was idle (or that holds bytes nobody
        asked for) is readable, and dropped, as urllib3 did, so a request is not sent on it to be lost."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                poll = select.poll()
                poll.register(conn, select.POLLIN)
                if not poll.poll(0):
                    return conn
                conn.close()
        return None

    def _give(self, conn: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()


class _Answer:
    """An HTTP answer as ``httptools`` reads it (its callbacks)."""

    def __init__(self) -> None:
        self.reason = ""
        self.body: list[bytes] = []
        self.complete = False
        #: Whether the connection may carry the next request (read as the answer completes: the parser
        #: forgets it then).
        self.kept = False
        self.parser: httptools.HttpResponseParser | None = None
        self._headed = False
        self._framed = False

    def until_close(self) -> bool:
        """Whether the body ends where the node closes the connection (no length, not chunked), so that
        the end of the connection completes it."""
        self.complete = self._headed and not self._framed
        return self.complete

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headed = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True
        self.kept = self.parser is not None and self.parser.should_keep_alive()


class _Proxied:
    """POSTs through a proxy: urllib3's proxy manager (CONNECT tunnels, TLS to the proxy and through it).
    Loaded only for a node reached so, which few deployments have."""

    def __init__(self, node: _Transport, proxy: str) -> None:
        import urllib3

        via = urlsplit(proxy)
        auth = None
        if via.username is not None:
            auth = urllib3.make_headers(
                proxy_basic_auth=f"{unquote(via.username)}:{unquote(via.password or '')}"
            )
        self.node = node
        self.timeout = urllib3.Timeout(connect=node.timeout, read=node.timeout)
        self.pool = urllib3.ProxyManager(
            proxy, num_pools=1, maxsize=POOL_SIZE, retries=False, ssl_context=node.tls, proxy_headers=auth,
            proxy_ssl_context=node.tls,
        )  # fmt: skip

    def post(self, url: str, method: str, body: bytes, seconds: float) -> bytes:
        from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            answer = self.pool.request(
                "POST", self.node.target, body=body, headers=self.node.headers, timeout=self.timeout,
                redirect=False,
            )  # fmt: skip
        except NewConnectionError as exc:  # a ConnectTimeoutError to urllib3, a refusal here
            raise NodeUnreachableError(url, method, _reason(exc)) from exc
        except ConnectTimeoutError as exc:
            raise NodeTimeoutError(
                url, method, f"no answer within {seconds:g} s", kind="ConnectTimeout"
            ) from exc
        except ReadTimeoutError as exc:
            raise NodeTimeoutError(
                url, method, f"no answer within {seconds:g} s", kind="ReadTimeout"
            ) from exc
        except (Urllib3Error, OSError) as exc:
            raise NodeUnreachableError(url, method, _reason(exc)) from exc
        if answer.status >= 400:
            raise NodeHttpError(url, method, answer.status, answer.reason or "")
        return answer.data

    def close(self) -> None:
        self.pool.clear()


def _reason(failure: BaseException) -> str:
    """What a transport failure says, without urllib3's wrapping of the connection object."""
    cause = getattr(failure, "reason", None) or failure
    return f"{type(cause).__name__}: {cause}"


def _jsonable(value: Any) -> Any:
    """What orjson does not write itself, as JSON-RPC writes it: bytes as ``0x``-hex, mappings as objects."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if hasattr(value, "keys"):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-RPC")


def encode(body: Any) -> bytes:
    """A JSON-RPC request (or batch) as the bytes posted."""
    return orjson.dumps(body, default=_jsonable)


class JsonRpc(rpc.JsonRpc):
    """The verifier's JSON-RPC client over a kept-alive HTTP(S) connection pool, with batches and failover.

    ``failover_urls``: other nodes of the same network, used in turn when the one in use does not answer (a
    connection or timeout failure; an answer that is an error is not a reason to move). Every method here is
    a read, safe to run again elsewhere; the indexer's block hashes catch a node on another branch. The
    ledger client gives none: it moves between nodes itself, once it checked the next one serves its chain.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        failover_urls: Sequence[str] = (),
        block: int | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, block=block)
        self._urls = (url, *failover_urls)
        self._active = 0
        self._transports = [_Transport(u, timeout) for u in self._urls]

    def close(self) -> None:
        for transport in self._transports:
            transport.close()

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active_url(self) -> str:
        """The URL in use now (``url``, or a failover URL after a failover)."""
        return self._urls[self._active]

    def post(self, method: str, body: Any) -> Any:
        """POST one JSON-RPC request or batch (``method``: the one named in errors) and return the answer as
        decoded, error objects and all: what a caller reading the answers itself (web3's provider) needs.

        Raises:
            NodeUnreachableError: no node answered (each tried once); :class:`NodeTimeoutError` if the last
                one did not answer in time.
            NodeHttpError: the node in use answered with an HTTP error status.
            NodeError: the answer is not JSON.
        """
        raw = encode(body)
        for _ in self._urls:
            at = self._active
            try:
                answer = self._transports[at].post(self._urls[at], method, raw, self.timeout)
                break
            except NodeUnreachableError as exc:
                failure = exc
                if len(self._urls) == 1:
                    raise
                if self._active == at:
                    self._active = (at + 1) % len(self._urls)
                log.warning("node %s stopped answering; now using %s", self._urls[at], self.active_url)
        else:
            raise failure
        try:
            # orjson bounds nesting (1,024 levels) without the standard library's recursion, which an answer
            # nested deeper ended in a traceback (and, under eth-account's raised recursion limit, a crash).
            return orjson.loads(answer)
        except orjson.JSONDecodeError as exc:
            raise NodeError(f"no usable JSON-RPC answer from {self._urls[at]} to {method}: {exc}") from None

    def _post(self, method: str, body: Any) -> Any:
        return self.post(method, body)

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
            reply = self.post(chunk[0][0], [rpc.request(i, m, p) for i, m, p in asked]) if asked else []
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
