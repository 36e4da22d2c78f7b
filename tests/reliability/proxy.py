"""A JSON-RPC proxy on loopback between the API and the node, which can lose or delay the answer to
``eth_sendRawTransaction`` after the node has received the transaction.

Plain HTTP/1.1 with keep-alive, bodies framed by Content-Length (what the API's HTTP provider sends). When the
node cannot be reached the proxy closes the API's connection without an answer, as a dead node would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

SEND_RAW = "eth_sendRawTransaction"


class RpcFault(StrEnum):
    #: Forwarded to the node, which takes the transaction; the connection to the API is closed unanswered.
    LOST = "lost"
    #: Forwarded to the node; the answer reaches the API only after ``delay_s``.
    DELAYED = "delayed"


@dataclass(frozen=True)
class RpcFaultHit:
    fault: RpcFault
    at: float
    upstream_status: int | None


class RpcProxy:
    def __init__(self, upstream: str, *, delay_s: float, upstream_timeout_s: float = 90.0) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self._timeout = aiohttp.ClientTimeout(total=upstream_timeout_s)
        self._armed: deque[tuple[RpcFault, asyncio.Future[RpcFaultHit]]] = deque()
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    def arm(self, fault: RpcFault) -> asyncio.Future[RpcFaultHit]:
        """The next ``eth_sendRawTransaction`` suffers ``fault``; the future resolves when it did."""
        hit: asyncio.Future[RpcFaultHit] = asyncio.get_running_loop().create_future()
        self._armed.append((fault, hit))
        return hit

    def disarm(self) -> None:
        while self._armed:
            _, hit = self._armed.popleft()
            hit.cancel()

    async def stop(self) -> None:
        self.disarm()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                answer = await self._exchange(request)
                if answer is None:
                    return  # closed without an answer
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _exchange(self, body: bytes) -> bytes | None:
        fault = self._armed.popleft() if self._armed and SEND_RAW in _methods(body) else None
        assert self._session is not None
        status: int | None = None
        payload = b""
        try:
            async with self._session.post(
                self.upstream, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                status, payload = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError):
            pass
        if fault is not None:
            kind, hit = fault
            if not hit.done():
                hit.set_result(RpcFaultHit(kind, time.monotonic(), status))
            if kind is RpcFault.LOST:
                return None
            await asyncio.sleep(self.delay_s)
        if status is None:
            return None
        head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        return head.encode() + b"\r\n" + payload


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The body of the next request on a keep-alive connection, or None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return await reader.readexactly(length) if length else b""


def _methods(body: bytes) -> set[str]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return set()
    calls = parsed if isinstance(parsed, list) else [parsed]
    return {str(c.get("method")) for c in calls if isinstance(c, dict)}
