"""The JSON-RPC client's own HTTP transport (node/rpc.py) against a node that answers in each way HTTP
allows, written byte by byte: kept-alive connections, bodies framed by length, in chunks or by the end of the
connection, and nodes that close or answer garbage."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from node.rpc import JsonRpc, NodeHttpError, NodeUnreachableError

RESULT = b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}'

#: Reads one request (its bytes), writes the answer; returns whether to keep the connection open.
Answer = Callable[[socket.socket, bytes], bool]


def _request(conn: socket.socket) -> bytes:
    """One whole request: head, then as many body bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class _Node:
    """A node on a raw socket: each connection is served by ``answer`` until it says to close."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/rpc"
        self.connections = 0
        self.requests: list[bytes] = []
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while request := _request(conn):
                self.requests.append(request)
                if not self.answer(conn, request):
                    return


@contextmanager
def _node(answer: Answer) -> Iterator[_Node]:
    node = _Node(answer)
    try:
        yield node
    finally:
        node.server.close()


def _with_length(conn: socket.socket, request: bytes) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(RESULT), RESULT))
    return True


def test_calls_share_one_kept_alive_connection_with_the_request_framed_as_http_says() -> None:
    with _node(_with_length) as node, JsonRpc(node.url) as client:
        assert [client.call("eth_chainId") for _ in range(20)] == ["0x1"] * 20
        assert node.connections == 1
        head, body = node.requests[0].split(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /rpc HTTP/1.1"
        assert f"Host: 127.0.0.1:{node.url.split(':')[2].split('/')[0]}".encode() in lines
        assert b"Content-Type: application/json" in lines and b"Content-Length: %d" % len(body) in lines
        assert body.startswith(b'{"jsonrpc":"2.0"') and b"eth_chainId" in body


def test_a_connection_the_node_closed_while_idle_is_not_used_again() -> None:
    """A node closing an idle kept-alive connection (its idle timeout): the next call goes on a new one, not
    on the closed one, where it would be lost as unreachable."""
    with _node(_with_length) as node, JsonRpc(node.url) as client:
        assert client.call("eth_chainId") == "0x1"
        assert len(node.open) == 1  # kept before the answer was served
        node.open[0].shutdown(socket.SHUT_RDWR)
        assert client.call("eth_chainId") == "0x1"
        assert node.connections == 2


def _chunked(conn: socket.socket, request: bytes) -> bool:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn.sendall(head + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (RESULT[:7], RESULT[7:])))
    conn.sendall(b"0\r\n\r\n")  # the last chunk apart: the answer ends only with it
    return True


def _until_closed(conn: socket.socket, request: bytes) -> bool:
    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + RESULT[:10])
    conn.sendall(RESULT[10:])
    return False


@pytest.mark.parametrize("answer", [_chunked, _until_closed], ids=["chunked", "until-closed"])
def test_an_answer_in_chunks_or_ended_by_the_connection_is_read_whole(answer: Answer) -> None:
    with _node(answer) as node, JsonRpc(node.url) as client:
        assert client.call("eth_chainId") == "0x1"
        assert client.call("eth_chainId") == "0x1"
        assert node.connections == (1 if answer is _chunked else 2)


def _cut(conn: socket.socket, request: bytes) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(RESULT), RESULT[:10]))
    return False


def _garbage(conn: socket.socket, request: bytes) -> bool:
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    return True


def _nothing(conn: socket.socket, request: bytes) -> bool:
    return False


def _teapot(conn: socket.socket, request: bytes) -> bool:
    conn.sendall(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 2\r\n\r\nno")
    return True


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (_cut, "ConnectionResetError: the connection closed before the answer"),
        (_nothing, "ConnectionResetError: the connection closed before the answer"),
        (_garbage, "HttpParserError: Expected HTTP/"),
    ],
    ids=["cut-short", "closed", "not-http"],
)
def test_an_answer_cut_short_or_not_http_makes_the_node_unreachable(answer: Answer, says: str) -> None:
    with (
        _node(answer) as node,
        JsonRpc(node.url) as client,
        pytest.raises(NodeUnreachableError, match=f"from {node.url} to eth_chainId: {says}"),
    ):
        client.call("eth_chainId")


def test_an_error_status_is_an_answer_with_its_reason_and_the_connection_stays() -> None:
    with _node(_teapot) as node, JsonRpc(node.url) as client:
        for _ in range(2):
            with pytest.raises(NodeHttpError, match="HTTP 418 I'm a teapot") as info:
                client.call("eth_chainId")
            assert info.value.status == 418
        assert node.connections == 1
