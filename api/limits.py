"""Request body limit: bodies over the limit are refused with 413 before anything parses them.

The limit is per route: 64 KiB for every write, more for the routes that take a delivery manifest and its
payload (a manifest lists a 67-byte hash per leaf, so a 1,000-record payload's manifest alone is about 70 KB).

The body is read here, once, in chunks, and stopped as soon as it exceeds the limit (a lying or absent
Content-Length does not help). The buffered body is left in ``scope["dxl.body"]`` for the idempotency
fingerprint and replayed to the application.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: Routes that take a manifest and a payload (base64): room for a signed manifest with about 100,000 leaf
#: hashes, or a payload of a few MiB beside a small one. The body is held in memory while it is checked.
MANIFEST_MAX_BODY_BYTES = 8 * 1024 * 1024
#: ``POST /receipts``: 10,000 receipts of about 260 bytes each, with room for whitespace.
RECEIPTS_MAX_BODY_BYTES = 4 * 1024 * 1024
#: ``POST /receipts/lookup``: its 1,000 delivery ids (70 bytes each in JSON) with room for whitespace.
RECEIPT_LOOKUP_MAX_BODY_BYTES = 256 * 1024
#: ``POST /resources/import``: a whole catalog, up to 2,000 documents of about 1.5 KiB (JSON or CSV).
CATALOG_IMPORT_MAX_BODY_BYTES = 4 * 1024 * 1024
ROUTE_MAX_BODY_BYTES: Mapping[str, int] = {
    "/verify": MANIFEST_MAX_BODY_BYTES,
    "/audit/provenance/payload": MANIFEST_MAX_BODY_BYTES,
    "/receipts": RECEIPTS_MAX_BODY_BYTES,
    "/receipts/lookup": RECEIPT_LOOKUP_MAX_BODY_BYTES,
    "/resources/import": CATALOG_IMPORT_MAX_BODY_BYTES,
}


class BodyLimitMiddleware:
    """``max_body_bytes`` for every path not in ``route_limits`` (exact path -> limit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        route_limits: Mapping[str, int] = ROUTE_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
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
        body = b"".join(chunks)
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
        raw = json.dumps(
            error_body("PAYLOAD_TOO_LARGE", f"request body exceeds the limit of {limit} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})
