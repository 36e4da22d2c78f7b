"""How the API is served over HTTP: uvicorn's httptools protocol with a bound on a request's head.

uvicorn's HTTP implementations set no limit on the request line and headers: httptools keeps a header's name
and value until the header ends, so one connection, before any token is looked at, sent a 200 MiB header and
grew the server by 350 MB. :class:`BoundedHttpToolsProtocol` counts the bytes of a request's head as they
arrive, before the parser keeps them, and answers a head over :data:`MAX_REQUEST_HEAD_BYTES` with
``431 HEADERS_TOO_LARGE`` and closes the connection; what the client still sends is read and dropped, never
kept. The trailer section that ends a chunked body is kept the same way (200 MiB of one trailer grew the
server by 364 MB) and is bounded the same way.

A request the parser refuses (a bad method or request line, a malformed header, conflicting or negative
lengths, a bad chunk) is answered ``400 MALFORMED_REQUEST`` with the service's error body, not uvicorn's line
of plain text, and the connection closed.

A request asking to upgrade the connection (a WebSocket handshake) is answered as the plain HTTP request it
also is: the service has no WebSocket route.

A head must also arrive in time: uvicorn times out only a connection idle between two requests, so one that
opened and sent nothing, or sent a head a byte at a time, was held for good, and a few thousand such
connections took every file descriptor the server had. The head of a request must be complete within
:data:`HEAD_TIMEOUT_SECONDS` of the connection's opening (its first request) or of its first byte (the next
ones); later, the connection is answered ``408 REQUEST_TIMEOUT`` and closed.

Every server of the service is started with :data:`HTTP_PROTOCOL` (``dxl run``, the benchmarks, the tests), as
uvicorn's ``http`` setting: an import string, so that ``uvicorn --http`` takes it too.

A client's address is the connection's peer, not what its ``X-Forwarded-For`` header says: uvicorn believes
that header from 127.0.0.1 by default, so a local client could name any address to spend the budget of
failed authentications against (:mod:`api.limits`). Only the proxies named in ``DXL_API_TRUSTED_PROXIES``
are believed (:func:`server_config`; ``uvicorn`` run by hand: :data:`CLI_OPTIONS`).
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.errors import ERRORS, error_body
from api.headers import missing_headers

#: The request line and headers of one request, in bytes. The largest a client of the service sends are an
#: Authorization bearer token (under 100 bytes) and an Idempotency-Key (at most 255 characters), with a URL
#: of a few hundred bytes: 64 KiB leaves room for proxies' and browsers' headers (cookies of ~4 KiB each,
#: tracing) while a connection cannot make the server keep more than this, plus a read or two, per request.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
#: How long a refused connection's further bytes are read (and dropped) after the answer, before it is closed.
#: Closing a socket with unread bytes makes the kernel reset the connection, and a client still sending would
#: then lose the answer it had not read yet; reading on for a moment lets it see the 431.
REFUSED_LINGER_SECONDS = 1.0
#: How long the request line and headers of a request may take to arrive. A client sends its head in one go;
#: ten seconds leave room for a slow link, and a connection that holds a head back frees its socket then.
HEAD_TIMEOUT_SECONDS = 10.0
#: How long a connection may stay idle between two requests before the server closes it. uvicorn's default,
#: 5 s, is the idle time after which httpx's clients (and others) drop a pooled connection themselves: at the
#: same 5 s, a client's next request could go out on a connection the server was closing, and was lost with
#: "server disconnected without sending a response". The server waits longer than such clients, so they close
#: first; an idle connection costs a socket and no
#: thread, and a connection's head still has :data:`HEAD_TIMEOUT_SECONDS` once it begins.
KEEP_ALIVE_SECONDS = 20
#: uvicorn's logging, with the log of every request answered on standard error beside its other lines:
#: uvicorn writes that one on standard output, where ``dxl run`` prints the tokens and where everything is, so
#: ``dxl run > started.txt`` filled the file with a line a request.
LOG_CONFIG: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
LOG_CONFIG["handlers"]["access"]["stream"] = "ext://sys.stderr"
#: What a head takes beside the URL and the headers' names and values: method, version, separators, CRLFs.
_REQUEST_LINE_OVERHEAD = 32
_HEADER_OVERHEAD = len(b": \r\n")


class _HeadTooLarge(Exception):
    """Raised from the parser's callback when a finished head is over the limit; it stops the parser."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose head exceeds :data:`MAX_REQUEST_HEAD_BYTES`.

    A read that begins and ends inside an unfinished head is head only: such reads are counted as they come
    (``_head_bytes``), so one endless header is refused once it passes the limit, while the parser has kept
    no more than that. A head that ends within a read is measured exactly from what the parser made of it when
    the count could be over the limit, or the head began inside a read after the previous request (pipelined):
    on the hot path a request costs a few comparisons.
    """

    #: :data:`HEAD_TIMEOUT_SECONDS`, as a class attribute so that a server can be started with another.
    head_timeout = HEAD_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # between requests counts as in the head of the next one
        self._head_bytes = 0
        self._read_bytes = 0
        self._head_uncounted = False  # it began inside a read after the previous request
        self._message_completed = False
        self._refused = False
        # A chunked body ends with a trailer section, which the parser keeps as it keeps a header (until it
        # ends) and uvicorn adds to the request's headers: bounded like the head. A chunk's data follows its
        # header at once, so a read that begins after a chunk's header and brings no body is the trailers
        # of the last chunk (size 0): such reads are counted. The read the trailers begin in is not, as a
        # head that begins inside a read: the count holds at most that read less than the trailers.
        self._after_chunk_header = False
        self._body_in_read = False
        self._trailer_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # the first request's head is due from the opening: a silent one is dropped

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._refused and not self.transport.is_closing():
            self._refuse(
                code="REQUEST_TIMEOUT",
                message=f"the request line and headers did not arrive within {self.head_timeout:g} seconds",
            )

    def on_message_begin(self) -> None:
        self._arm_head_timer()  # a later request's head is due from its first byte
        super().on_message_begin()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused request: dropped unparsed
        started_in_head, self._message_completed, self._read_bytes = self._in_head, False, len(data)
        started_in_trailers, self._body_in_read = self._after_chunk_header, False
        # As the parent's, with the head refused between the parser and its 400.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse()
            else:
                self.logger.warning("Invalid HTTP request received: %s", exc)
                self.send_400_response(f"the request is not well-formed HTTP/1.1: {exc}")
            return
        if self._in_head:
            if started_in_head and not self._message_completed:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
                    self._refuse()
            else:  # counted from the next read on: it holds at most this read more than the count says
                self._head_uncounted = True
        elif started_in_trailers and self._after_chunk_header and not self._body_in_read:
            self._trailer_bytes += len(data)
            if self._trailer_bytes > MAX_REQUEST_HEAD_BYTES:
                self._refuse(current=True)
        else:
            self._trailer_bytes = 0

    def _should_upgrade_to_ws(self) -> bool:
        # The service has no WebSocket route: a request asking to upgrade is answered as the plain request it
        # also is (uvicorn upgraded it and the app refused the handshake: a 403 with no body and no code).
        return False

    def _unsupported_upgrade_warning(self) -> None:
        pass  # uvicorn's warning would tell the operator to install a WebSocket library

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser refused (a bad method, request line, header, length or
        chunk: no request the app could be handed), with the service's error body and a declared code
        instead of a line of plain text; the connection is closed, as uvicorn closes it."""
        self.transport.write(self._error_answer("MALFORMED_REQUEST", msg))
        self.transport.close()

    def _error_answer(self, code: str, message: str) -> bytes:
        """The whole answer ``code`` with the service's error body, written here before any route runs, with
        the headers every answer carries (:mod:`api.headers`), and closing the connection."""
        raw = json.dumps(error_body(code, message)).encode()
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(raw)),
            (b"connection", b"close"),
        ]
        headers += missing_headers({name.lower(): value for name, value in headers})
        head = [
            STATUS_LINE[ERRORS[code].status],
            *(name + b": " + value + b"\r\n" for name, value in headers),
        ]
        return b"".join(head) + b"\r\n" + raw

    def on_headers_complete(self) -> None:
        if self._head_uncounted or self._head_bytes + self._read_bytes > MAX_REQUEST_HEAD_BYTES:
            size = _REQUEST_LINE_OVERHEAD + len(self.url)
            size += sum(len(name) + len(value) + _HEADER_OVERHEAD for name, value in self.headers)
            if size > MAX_REQUEST_HEAD_BYTES:
                raise _HeadTooLarge
        self._in_head, self._head_uncounted = False, False
        self._head_bytes = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        self._after_chunk_header = True

    def on_body(self, body: bytes) -> None:
        self._after_chunk_header, self._body_in_read = False, True
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self._after_chunk_header = False

    def on_message_complete(self) -> None:
        self._in_head, self._message_completed = True, True
        self._after_chunk_header, self._trailer_bytes = False, 0
        super().on_message_complete()

    def _refuse(self, *, current: bool = False, code: str = "HEADERS_TOO_LARGE", message: str = "") -> None:
        """Answers ``code`` (431 unless told) and closes the connection, reading and dropping what still comes
        for a moment.

        ``current``: the request refused is the cycle's own (its trailers), not the next one.
        """
        self._disarm_head_timer()
        self._refused = True
        cycle = self.cycle
        if cycle is not None and (cycle.response_started if current else not cycle.response_complete):
            # An answer is being written (the previous request's, or already this one's): this request is not
            # answered, and the connection closes once that answer is complete (at once if it is).
            cycle.keep_alive = False
            if cycle.response_complete:
                self.transport.close()
            return
        message = (
            message or f"the request line and headers exceed the limit of {MAX_REQUEST_HEAD_BYTES} bytes"
        )
        self.transport.write(self._error_answer(code, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


#: uvicorn's ``http`` setting for every server of the service (``uvicorn.Config(http=...)``, ``--http``).
HTTP_PROTOCOL = f"{__name__}:{BoundedHttpToolsProtocol.__qualname__}"

#: The options of :func:`server_config` as ``uvicorn`` command-line arguments (no proxy believed).
CLI_OPTIONS = ("--http", HTTP_PROTOCOL, "--no-proxy-headers", "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS))


def server_config(
    app: Any, *, host: str, port: int, trusted_proxies: str = "", **options: Any
) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app``: :data:`HTTP_PROTOCOL`, idle connections kept
    :data:`KEEP_ALIVE_SECONDS`, and ``X-Forwarded-For`` believed only from ``trusted_proxies``
    (comma-separated addresses; empty: from no one), every log line on standard error (:data:`LOG_CONFIG`).
    ``options`` are uvicorn's others (log level, lifespan)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HTTP_PROTOCOL,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies or None,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **{"log_config": LOG_CONFIG, **options},
    )
