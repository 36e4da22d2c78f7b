"""A loopback JSON-RPC proxy in front of a node that can lose or delay the answers to
``eth_sendRawTransaction`` (the node gets the transaction, the client does not learn it), or answer as a node
behind the others (:attr:`RpcProxy.behind_at`)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    # Many requests wait at once on a paused node: socketserver's backlog of 5 would reset some of them.
    request_queue_size = 128
    daemon_threads = True


class RpcProxy:
    """Forwards every request to ``upstream``. Of the next eth_sendRawTransaction requests, ``swallow_sends``
    never reach the node, the answers of ``lose_sends`` are dropped after forwarding (the connection closes
    unanswered), ``delay_sends`` are answered ``delay_s`` late, and ``refuse_sends`` never reach the node and
    are answered with the error ``refusal`` (as geth's pool answers while it lags behind a new head).
    ``sends`` counts those requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.swallow_sends = 0
        self.lose_sends = 0
        self.delay_sends = 0
        self.delay_s = 0.0
        self.refuse_sends = 0
        #: geth's answer to a transaction whose nonce its pool's state has used.
        self.refusal = "nonce too low: next nonce 1, tx nonce 0"
        self.sends = 0
        #: The signed bytes of every eth_sendRawTransaction, in order (what a node puts back in its pool when
        #: it drops a block).
        self.raw_sent: list[str] = []
        #: Every JSON-RPC method asked through the proxy, by name (each call of a batch counted).
        self.asked: Counter[str] = Counter()
        #: HTTP requests (round trips to the node) by the methods they asked: a batch counts once for each
        #: method it holds, however many times it asks it.
        self.posts: Counter[str] = Counter()
        #: While set, a batch of requests is answered with one error, as by a node that serves no batches.
        self.refuse_batches = False
        #: While set, every request is dropped unanswered (the node looks unreachable).
        self.down = False
        #: Go down right after swallowing a send.
        self.down_after_swallow = False
        #: Called once the node got an eth_sendRawTransaction, before its answer goes back.
        self.after_send: Callable[[], None] | None = None
        #: Called when an eth_sendRawTransaction arrives, before the node gets it (once: it is cleared).
        self.before_send: Callable[[], None] | None = None
        #: Called when the node answered eth_getTransactionReceipt with a receipt, before its answer goes on.
        self.after_receipt: Callable[[], None] | None = None
        #: Called once, when the node first answered for its latest block (``eth_getBlockByNumber("latest")``:
        #: the head a reading command names as its check begins), before the answer goes on: what is mined
        #: there comes between the head and the reads of the answer.
        self.after_head: Callable[[], None] | None = None
        #: The methods that read the head, for :attr:`after_head`: ``eth_getBlockByNumber("latest")`` by
        #: default; ``eth_blockNumber`` for a command that reads the head's number alone.
        self.head_methods: tuple[str, ...] = ("eth_getBlockByNumber",)
        #: Every answer for the latest block (``eth_getBlockByNumber("latest")``) is held this long: a node
        #: slow to answer its head.
        self.head_delay_s = 0.0
        #: Every answer to these methods is held this long (by method): a node slow to answer them.
        self.method_delay_s: dict[str, float] = {}
        #: While set, the node answers as one whose head is this block, behind the chain it forwards to (a
        #: member of a network that has not imported the newer blocks yet): its latest block is this one, a
        #: read of the latest state reads this block's, and a block above it, a transaction mined there and
        #: its logs are unknown.
        self.behind_at: int | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._count(body)
                action = None if proxy.down else proxy._action(body)
                if proxy.down or action == "swallow":
                    proxy.down = proxy.down or proxy.down_after_swallow
                    self.close_connection = True
                    return
                if action is not None and proxy.before_send is not None:
                    hook, proxy.before_send = proxy.before_send, None
                    hook()
                cap = proxy.behind_at
                if action == "refuse":
                    error = {"code": -32000, "message": proxy.refusal}
                    answered = {"jsonrpc": "2.0", "id": json.loads(body).get("id"), "error": error}
                    answer = json.dumps(answered).encode()
                elif proxy.refuse_batches and body.lstrip().startswith(b"["):
                    error = {"code": -32600, "message": "batch requests are disabled"}
                    answer = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
                else:
                    answer = proxy._forward(body if cap is None else _read_at(body, cap))
                if cap is not None:
                    answer = _hide_above(body, answer, cap)
                if action is not None and proxy.after_send is not None:
                    proxy.after_send()
                if proxy.after_receipt is not None and _is_receipt(body, answer):
                    proxy.after_receipt()
                if proxy.after_head is not None and _reads_head(body, proxy.head_methods):
                    hook, proxy.after_head = proxy.after_head, None
                    hook()
                if action == "lose":
                    self.close_connection = True
                    return
                if action == "delay":
                    time.sleep(proxy.delay_s)
                if proxy.head_delay_s and _reads_head(body, ("eth_getBlockByNumber",)):
                    time.sleep(proxy.head_delay_s)
                time.sleep(proxy._method_delay(body))
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def hooked_after_head(
        self, hook: Callable[[], None], *, methods: tuple[str, ...] = ("eth_getBlockByNumber",)
    ) -> Iterator[None]:
        """Within the block, :attr:`after_head` is ``hook`` (called once, when the node first answers one of
        ``methods`` for its latest block); after it, neither the hook nor the methods are left behind."""
        self.head_methods, self.after_head = methods, hook
        try:
            yield
        finally:
            self.head_methods, self.after_head = ("eth_getBlockByNumber",), None

    def _forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return bytes(response.read())

    def _count(self, body: bytes) -> None:
        try:
            asked = json.loads(body)
        except ValueError:
            return
        calls = asked if isinstance(asked, list) else [asked]
        methods = [str(call.get("method") if isinstance(call, dict) else None) for call in calls]
        with self._lock:
            self.posts.update(set(methods))
            self.asked.update(methods)

    def _method_delay(self, body: bytes) -> float:
        try:
            asked = json.loads(body)
        except ValueError:
            return 0.0
        calls = asked if isinstance(asked, list) else [asked]
        return max(
            (self.method_delay_s.get(str(c.get("method")), 0.0) for c in calls if isinstance(c, dict)),
            default=0.0,
        )

    def _action(self, body: bytes) -> str | None:
        try:
            asked = json.loads(body)
            method = asked.get("method")
        except (ValueError, AttributeError):
            return None
        if method != "eth_sendRawTransaction":
            return None
        with self._lock:
            self.sends += 1
            self.raw_sent.append(str(asked["params"][0]))
            if self.swallow_sends > 0:
                self.swallow_sends -= 1
                return "swallow"
            if self.refuse_sends > 0:
                self.refuse_sends -= 1
                return "refuse"
            if self.lose_sends > 0:
                self.lose_sends -= 1
                return "lose"
            if self.delay_sends > 0:
                self.delay_sends -= 1
                return "delay"
        return "pass"

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


def _is_receipt(request: bytes, answer: bytes) -> bool:
    try:
        asked, answered = json.loads(request), json.loads(answer)
    except ValueError:
        return False
    return (
        isinstance(asked, dict)
        and asked.get("method") == "eth_getTransactionReceipt"
        and isinstance(answered, dict)
        and answered.get("result") is not None
    )


def _reads_head(request: bytes, methods: tuple[str, ...]) -> bool:
    try:
        asked = json.loads(request)
    except ValueError:
        return False
    if not isinstance(asked, dict) or asked.get("method") not in methods:
        return False
    if asked["method"] != "eth_getBlockByNumber":
        return True
    params = asked.get("params") or [None]
    return bool(params[0] == "latest")


#: The position of the block a read names, by method ("latest" when left out).
_BLOCK_PARAM = {
    "eth_getBlockByNumber": 0,
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
}
_TAGS = ("latest", "pending", "safe", "finalized")


def _read_at(request: bytes, cap: int) -> bytes:
    """``request`` with the latest block it reads (by a tag, or by leaving it out) made block ``cap``."""
    try:
        asked = json.loads(request)
    except ValueError:
        return request
    if not isinstance(asked, dict) or asked.get("method") not in _BLOCK_PARAM:
        return request
    params = list(asked.get("params") or [])
    at = _BLOCK_PARAM[asked["method"]]
    if len(params) == at:
        params.append(hex(cap))
    elif len(params) > at and params[at] in _TAGS:
        params[at] = hex(cap)
    return json.dumps({**asked, "params": params}).encode()


def _hide_above(request: bytes, answer: bytes, cap: int) -> bytes:
    """``answer`` as a node at block ``cap`` gives it: its head's number, nothing of a block above it."""
    try:
        asked, answered = json.loads(request), json.loads(answer)
    except ValueError:
        return answer
    if not isinstance(asked, dict) or not isinstance(answered, dict) or "result" not in answered:
        return answer
    result = answered["result"]

    def above(item: object) -> bool:
        if not isinstance(item, dict):
            return False
        number = item.get("blockNumber") if "blockNumber" in item else item.get("number")
        return isinstance(number, str) and int(number, 16) > cap

    if asked.get("method") == "eth_blockNumber":
        result = hex(cap)
    elif isinstance(result, list):
        result = [item for item in result if not above(item)]
    elif above(result):
        result = None
    return json.dumps({**answered, "result": result}).encode()
