"""Loopback nodes an auditor or the service may be pointed at that behave as no healthy node does: one that
answers every JSON-RPC request with the same bytes (:func:`answering`), one that takes every connection and
never answers (:func:`silent`, a node that hangs)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import serving


@contextlib.contextmanager
def answering(body: bytes) -> Iterator[str]:
    """Serves ``body`` (as ``application/json``) to every POST; yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url


@contextlib.contextmanager
def silent() -> Iterator[str]:
    """A loopback TCP listener that accepts every connection, reads nothing and answers nothing until the
    block ends (a node hung with its port open: the client's connection succeeds, its answer never comes);
    yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way (close() alone does not)
        listener.close()
        for connection in held:
            connection.close()
        thread.join(timeout=5)
