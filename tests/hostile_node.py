"""A loopback HTTP server that answers every JSON-RPC request with the same bytes: a node an auditor was
pointed at that answers what no node would."""

from __future__ import annotations

import contextlib
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
