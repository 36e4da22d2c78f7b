"""Request body limit: bodies over the limit are refused with 413 before anything parses them.

The limit is per route: 64 KiB for every write, more for the routes that take a delivery manifest and its
payload (a manifest lists a 67-byte hash per leaf, so a 1,000-record payload's manifest alone is about 70 KB).

The body is read here, once, in chunks, and stopped as soon as it exceeds the limit (a lying or absent
Content-Length does not help). The buffered body is left in ``scope["dxl.body"]`` for the idempotency
fingerprint and replayed to the application.

A JSON body is checked here too, before anything else parses it (:func:`parse_json`): the standard library's
parser, which FastAPI calls, recurses once per level of nesting on the C stack, and a body of a few hundred
thousand ``[`` took the whole process down (a segmentation fault, whoever sent it: the body is parsed before
the token is looked at).
"""

from __future__ import annotations

import asyncio
import email.message
import json
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_body
from verifier.leaves import Chunking, leaf_count_bound

DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: How long a request's body may take to arrive, from the end of its head. Read without a bound, a body sent
#: a byte at a time held its connection (and the body buffered so far) for as long as the client liked; 60 s
#: carries the largest body taken (8 MiB) at 140 KB/s.
BODY_TIMEOUT_SECONDS = 60.0
#: Routes that take a manifest and a payload (base64): room for a signed manifest with about 100,000 leaf
#: hashes, or a payload of a few MiB beside a small one. The body is held in memory while it is checked.
MANIFEST_MAX_BODY_BYTES = 8 * 1024 * 1024
#: ``POST /receipts``: 10,000 receipts of about 260 bytes each, with room for whitespace.
RECEIPTS_MAX_BODY_BYTES = 4 * 1024 * 1024
#: ``POST /receipts/lookup``: its 1,000 delivery ids (70 bytes each in JSON) with room for whitespace.
RECEIPT_LOOKUP_MAX_BODY_BYTES = 256 * 1024
#: ``POST /resources/import``: a whole catalog, up to 2,000 documents of about 1.5 KiB (JSON or CSV).
CATALOG_IMPORT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Routes that parse their JSON body themselves, safely (``POST /receipts``: orjson, on the hot path).
PARSED_BY_ROUTE = frozenset({"/receipts"})
ROUTE_MAX_BODY_BYTES: Mapping[str, int] = {
    "/verify": MANIFEST_MAX_BODY_BYTES,
    "/audit/provenance/payload": MANIFEST_MAX_BODY_BYTES,
    "/receipts": RECEIPTS_MAX_BODY_BYTES,
    "/receipts/lookup": RECEIPT_LOOKUP_MAX_BODY_BYTES,
    "/resources/import": CATALOG_IMPORT_MAX_BODY_BYTES,
}

#: Leaves of a payload the service hashes for one request (``POST /verify``, an inspection's presentation,
#: ``POST /audit/provenance/payload``): the work of a check grows with the leaves, about 2 µs of CPU each,
#: and a payload in the body limit cut into one-byte chunks was 6 million of them (11.5 s of CPU, 540 MB).
#: A 100,000-leaf check takes about 0.2 s; a larger payload is checked by ``dxl verify`` on the caller's
#: machine.
MAX_PAYLOAD_LEAVES = 100_000


def check_payload_leaves(payload: bytes, chunking: Chunking, *, field: str = "payload_base64") -> None:
    """Refuses, before anything hashes it, a payload that cuts into more than :data:`MAX_PAYLOAD_LEAVES`.

    Raises:
        ApiError: PAYLOAD_TOO_MANY_LEAVES naming ``field``, the payload's leaves and the limit.
    """
    leaves = leaf_count_bound(payload, chunking)
    if leaves > MAX_PAYLOAD_LEAVES:
        unit = "chunks" if chunking.format.value == "bytes" else "lines"
        raise ApiError(
            "PAYLOAD_TOO_MANY_LEAVES",
            f"the payload cuts into {leaves:,} {unit} under the manifest's chunking ({chunking.format.value}"
            f"{f', {chunking.chunk_size} bytes' if unit == 'chunks' else ''}); the service checks at most "
            f"{MAX_PAYLOAD_LEAVES:,} a request: check it with dxl verify",
            field=field, leaves=leaves, limit=MAX_PAYLOAD_LEAVES,
        )  # fmt: skip


_BOM = b"\xef\xbb\xbf"


class JsonBodyError(ValueError):
    """Text that is not JSON as the service takes it; the message says why, after the text's name ("the body
    is not valid JSON")."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise JsonBodyError(f'names "{name}" twice in one object')
            seen.add(name)
    return found


def parse_json(raw: bytes | str) -> Any:
    """JSON from a client: UTF-8 (a byte order mark is ignored), nested at most 1,024 levels deep (orjson's
    bound, checked first: it does not recurse on the C stack), and no name twice in one object (RFC 8259
    leaves a repeated name's meaning open: a proxy or a log could read another value than the service).

    Raises:
        JsonBodyError: which of these the text breaks.
    """
    if isinstance(raw, bytes):
        raw = raw.removeprefix(_BOM)
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise JsonBodyError("is not valid JSON") from None
    return json.loads(raw, object_pairs_hook=_unique)


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI will parse the body as JSON (``application/json`` or ``application/*+json``), decided
    as FastAPI decides it: the first Content-Type header (Starlette reads the first of a repeated header),
    read by :mod:`email.message`, which also strips Unicode spaces. A looser reading here let bodies past the
    nesting check that FastAPI then parsed (``application/json`` followed by a NBSP byte, or a second
    Content-Type after it), and one of them took the process down."""
    value = next((v for name, v in scope["headers"] if name.lower() == b"content-type"), b"")
    if not value:  # FastAPI parses a body without a Content-Type only when told to (strict_content_type)
        return False
    message = email.message.Message()
    message["content-type"] = value.decode("latin-1")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class BodyLimitMiddleware:
    """``max_body_bytes`` for every path not in ``route_limits`` (exact path -> limit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        route_limits: Mapping[str, int] = ROUTE_MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.route_limits = dict(route_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get(scope["path"], self.max_body_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            async with asyncio.timeout(self.body_timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        await self._refuse(send, limit)
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            message_text = f"the request body did not arrive within {self.body_timeout:g} seconds"
            await self._send(send, 408, error_body("REQUEST_TIMEOUT", message_text))
            return
        body = b"".join(chunks)
        if body and scope["path"] not in PARSED_BY_ROUTE and _is_json(scope):
            try:
                parse_json(body)
            except JsonBodyError as exc:
                await self._send(send, 422, error_body("VALIDATION_ERROR", f"the body {exc}", field="body"))
                return
        scope["dxl.body"] = body
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = error_body("PAYLOAD_TOO_LARGE", f"request body exceeds the limit of {limit} bytes")
        await self._send(send, 413, body)

    @staticmethod
    async def _send(send: Send, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                    # A body over the limit or late was not read to its end: the connection carries no other
                    # request.
                    *([(b"connection", b"close")] if status in (408, 413) else []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})
