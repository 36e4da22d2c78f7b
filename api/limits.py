"""Request limits: bodies over the limit are refused with 413 before anything parses them, and principals or
addresses over their request rate with 429 before anything runs.

The limit is per route: 64 KiB for every write, more for the routes that take a delivery manifest and its
payload (a manifest lists a 67-byte hash per leaf, so a 1,000-record payload's manifest alone is about 70 KB).

The body is read here, once, in chunks, and stopped as soon as it exceeds the limit (a lying or absent
Content-Length does not help). The buffered body is left in ``scope["dxl.body"]`` for the idempotency
fingerprint and replayed to the application.

A JSON body is checked here too, before anything else parses it (:func:`parse_json`): the standard library's
parser, which FastAPI calls, recurses once per level of nesting on the C stack, and a body of a few hundred
thousand ``[`` took the whole process down (a segmentation fault, whoever sent it: the body is parsed before
the token is looked at).

Rates (:class:`RateLimitMiddleware`): each principal's requests draw on a token bucket of its own, so one
department's token cannot take the whole service from the others; and each client address's failed
authentications (answers 401) draw on another, so a flood of made-up or revoked tokens is refused before
each costs a look-up in the API database. A request is refused with ``429`` and ``Retry-After`` before the
body is read, the idempotency key claimed or the route run: nothing is recorded, and a retry after the wait
is answered as the first request would have been. A principal may also be held to a number of requests in
progress at once (``DXL_API_CONCURRENCY``, off unless set): past it, its next request waits for one of its
own to finish, whatever the others do.
"""

from __future__ import annotations

import asyncio
import codecs
import email.message
import email.utils
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_body
from api.settings import Rate, RateLimits
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


#: A UTF-8 byte order mark, which a JSON body may begin with (ignored, as the standard library's parser does).
BOM = b"\xef\xbb\xbf"


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


def _read(raw: bytes | str) -> Any:
    """orjson's reading of ``raw`` (no byte order mark): the checks every body passes first, each refusal
    said as :func:`parse_json` says it.

    Raises:
        JsonBodyError: the text is not UTF-8 or not JSON, nests past orjson's bound or holds a number past a
            double's range.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("number is infinity"):
            # Valid JSON, but no field of the API takes a number of 309 digits or more (the largest, uint256,
            # has 78): said as it is, not as JSON that does not parse.
            raise JsonBodyError(
                f"holds a number too large for any field (at character {exc.pos}; the largest a field "
                "takes is a uint256, 2**256 - 1)"
            ) from None
        raise JsonBodyError("is not valid JSON") from None


def parse_json(raw: bytes | str) -> Any:
    """JSON from a client: UTF-8 (a byte order mark is ignored), nested at most 1,024 levels deep (orjson's
    bound, checked first: it does not recurse on the C stack), no number past a double's range (orjson's
    bound too), and no name twice in one object (RFC 8259
    leaves a repeated name's meaning open: a proxy or a log could read another value than the service).

    Raises:
        JsonBodyError: which of these the text breaks.
    """
    if isinstance(raw, bytes):
        raw = raw.removeprefix(BOM)
    # The check only: integers past 64 bits read as floats here, and exactly below (a manifest's ids and sizes
    # are uint256, as dxl verify takes them; the ledger's own ids, uint64, are bounded by each field).
    _read(raw)
    return json.loads(raw, object_pairs_hook=_unique)


def read_json_fast(raw: bytes) -> Any:
    """JSON from a client as :func:`parse_json` reads it, refused alike, in one pass of orjson for a hot path
    (``POST /receipts``, whose body holds no integer past 64 bits): but a name given twice in one object is
    not refused, and the last wins. The caller refuses it (:func:`api.receipts.input.refuse_repeated_names`).

    Raises:
        JsonBodyError: the text is not UTF-8 or not JSON, nests past orjson's bound or holds a number past a
            double's range.
    """
    return _read(raw.removeprefix(BOM))


def body_refused(exc: JsonBodyError) -> ApiError:
    """A request body's refusal for the rule ``exc`` names, as every route answers it."""
    return ApiError("VALIDATION_ERROR", f"the body {exc}", field="body")


def _content_type(scope: Scope) -> email.message.Message:
    """The request's Content-Type as FastAPI reads it: the first header, parsed by :mod:`email.message`."""
    value = next((v for name, v in scope["headers"] if name.lower() == b"content-type"), b"")
    message = email.message.Message()
    message["content-type"] = value.decode("latin-1")
    return message


def declared_unencoded(scope: Scope) -> None:
    """Refuses a body sent with a Content-Encoding (gzip, deflate, …): the service decodes none, and read as
    it came, a compressed body was refused as JSON that does not parse, which it was not.

    Raises:
        JsonBodyError: the encoding declared, and that the body is to be sent unencoded.
    """
    encoding = next((v for name, v in scope["headers"] if name.lower() == b"content-encoding"), None)
    if encoding is None:
        return
    named = encoding.decode("latin-1").strip()
    if named.lower() not in ("", "identity"):
        raise JsonBodyError(
            f"is sent with Content-Encoding: {named}, which this service does not decode: send it unencoded"
        )


def declared_utf8(scope: Scope) -> None:
    """Refuses a JSON body whose Content-Type declares a charset other than UTF-8. The body is read as UTF-8
    (RFC 8259 8.1) whatever the header says, and bytes that are UTF-8 and also text in the charset declared
    (GBK, Latin-1) were recorded as another text than the client's, its hash on chain.

    Raises:
        JsonBodyError: the charset declared, and that the body is to be sent as UTF-8.
    """
    if (
        next((v for name, v in scope["headers"] if name.lower() == b"content-type"), b"")
        == b"application/json"
    ):
        return  # what clients send, without a parser
    charset = _content_type(scope).get_param("charset")
    if charset is None:
        return
    name = email.utils.collapse_rfc2231_value(charset)
    try:
        utf8 = codecs.lookup(name).name == "utf-8"
    except LookupError:
        utf8 = False
    if not utf8:
        raise JsonBodyError(f"is declared charset={name}: JSON is read as UTF-8, send it so")


def is_json(scope: Scope) -> bool:
    """Whether FastAPI will parse the body as JSON (``application/json`` or ``application/*+json``), decided
    as FastAPI decides it: the first Content-Type header (Starlette reads the first of a repeated header),
    read by :mod:`email.message`, which also strips Unicode spaces. A looser reading here let bodies past the
    nesting check that FastAPI then parsed (``application/json`` followed by a NBSP byte, or a second
    Content-Type after it), and one of them took the process down. ``POST /receipts``, which parses its body
    itself, takes what the others take by it."""
    value = next((v for name, v in scope["headers"] if name.lower() == b"content-type"), b"")
    if value == b"application/json":  # what clients send: the hot path reads it without a parser
        return True
    if not value:  # FastAPI parses a body without a Content-Type only when told to (strict_content_type)
        return False
    message = _content_type(scope)
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
        if body and scope["path"] not in PARSED_BY_ROUTE and is_json(scope):
            try:
                declared_unencoded(scope)
                declared_utf8(scope)
                parse_json(body)
            except JsonBodyError as exc:
                refused = body_refused(exc)
                await self._send(
                    send, refused.status, error_body(refused.code, refused.message, field=refused.field)
                )
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


#: Where the route's authentication leaves the principal it found (``Principal.key``), for
#: :class:`RateLimitMiddleware` to remember whose the token is.
SCOPE_PRINCIPAL = "dxl.principal"
#: The principal (``Principal.key``) of a bearer token, or None for a token the API database does not hold
#: (unknown or revoked). Blocking: a look-up in the database.
Identify = Callable[[str], str | None]


class TokenBuckets:
    """Token buckets by key, each holding up to ``rate.burst`` tokens and refilled at ``rate.per_second``.

    At most ``max_keys`` are kept: past that the buckets touched longest ago are dropped (a dropped bucket
    starts full again, so the bound costs a key at most one extra burst, and a flood of new keys can only
    forget old ones, never grow the process).
    """

    def __init__(self, rate: Rate, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        #: key -> (tokens left, when they were counted); in the order the keys were last touched.
        self._buckets: dict[object, tuple[float, float]] = {}

    def _level(self, key: object, now: float) -> float:
        found = self._buckets.pop(key, None)  # popped and put back on write: the dict keeps touch order
        if found is None:
            return float(self.rate.burst)
        tokens, stamp = found
        return min(float(self.rate.burst), tokens + (now - stamp) * self.rate.per_second)

    def _store(self, key: object, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:  # one over at most: the key touched longest ago goes
            del self._buckets[next(iter(self._buckets))]

    def wait(self, key: object, now: float) -> float:
        """Seconds until ``key`` has a token again (0: it has one now); takes nothing."""
        found = self._buckets.get(key)
        if found is None:
            return 0.0
        tokens, stamp = found
        tokens = min(float(self.rate.burst), tokens + (now - stamp) * self.rate.per_second)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate.per_second

    def take(self, key: object, now: float) -> float:
        """Takes a token of ``key`` and answers 0, or answers the seconds until one is there (taking none)."""
        tokens = self._level(key, now)
        if tokens >= 1:
            self._store(key, tokens - 1, now)
            return 0.0
        self._store(key, tokens, now)
        return (1 - tokens) / self.rate.per_second

    def charge(self, key: object, now: float) -> None:
        """Takes a token of ``key`` after the fact (what it did is done), never below empty."""
        self._store(key, max(0.0, self._level(key, now) - 1), now)


#: Tokens known good, by digest: their principal. Bounded like the buckets: only tokens the API database
#: holds get here, a handful per department.
_MAX_KNOWN_TOKENS = 10_000


def _bearer(scope: Scope) -> bytes | None:
    """The first ``Authorization`` header's bearer token (the one the routes read), or None."""
    value: bytes | None = next((v for name, v in scope["headers"] if name.lower() == b"authorization"), None)
    if value is None:
        return None
    scheme, _, token = value.partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


class RateLimitMiddleware:
    """Refuses with ``429`` a request over its principal's rate (``RATE_LIMITED``) or from an address whose
    failed authentications are over theirs (``AUTHENTICATION_RATE_LIMITED``), with ``Retry-After``.

    Every request with a token the API database holds is charged to its principal before anything runs: the
    tokens of one department share its rate, a token's first request included (a new token, or one not seen
    since the start). Which principal a token is, ``identify`` finds out (a look-up in the API database) the
    first time, and the routes' answers confirm (:data:`SCOPE_PRINCIPAL`); later requests are charged without
    a look-up. Before, a token's requests were charged only once one of them had been answered: the first,
    and every request a new token sent before that answer, ran free of any rate.

    A token not known good yet (unknown, revoked, or not seen since the start) is first the address's:
    refused while the address is over its failures' rate, so a valid token sent for the first time from an
    address that floods the service with bad ones waits with them, and one known good never does. An answer
    401 forgets the token and charges the address.

    ``limits`` is read at the first request: the app's settings are read at its start, after the middleware
    stack is built.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Callable[[], RateLimits],
        identify: Callable[[], Identify] | None = None,
    ) -> None:
        self.app = app
        self._limits = limits
        self._identify_of = identify
        self._principals: TokenBuckets | None = None
        self._failures: TokenBuckets | None = None
        self._known: dict[bytes, str] = {}
        self._concurrency = 0
        #: Turns by principal (a token not known yet: by token), while any of its requests is in progress or
        #: waiting: requests past the concurrency wait here, in order of arrival.
        self._turns: dict[object, _Turns] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._principals is None or self._failures is None:
            limits = self._limits()
            self._principals, self._failures = (
                TokenBuckets(limits.principal),
                TokenBuckets(limits.auth_failures),
            )
            self._concurrency = limits.concurrency
        principals, failures = self._principals, self._failures
        now = time.monotonic()
        token = _bearer(scope)
        digest = hashlib.sha256(token).digest() if token is not None else None
        principal = self._known.get(digest) if digest is not None else None
        address = (scope.get("client") or ("", 0))[0]
        if principal is None:
            if failures.rate.limited and (wait := failures.wait(address, now)):
                await _too_many(send, "AUTHENTICATION_RATE_LIMITED", wait,
                    f"more than {failures.rate.per_second:g} requests a second from this address failed "
                    f"authentication (bursts of {failures.rate.burst:,}); retry after the wait")  # fmt: skip
                return
            if principals.rate.limited and self._identify_of is not None and token is not None:
                principal = await to_thread.run_sync(self._identify_of(), token.decode("latin-1"))
                if principal is not None and digest is not None:
                    self._learn(digest, principal)
                now = time.monotonic()
        if principal is not None and principals.rate.limited and (wait := principals.take(principal, now)):
            await _too_many(send, "RATE_LIMITED", wait,
                f"{principal} sent more than {principals.rate.per_second:g} requests a second "
                f"(bursts of {principals.rate.burst:,}); retry after the wait")  # fmt: skip
            return

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    if digest is not None:
                        self._known.pop(digest, None)
                    if failures.rate.limited:
                        failures.charge(address, time.monotonic())
                elif digest is not None and (found := scope.get(SCOPE_PRINCIPAL)) is not None:
                    self._learn(digest, found)
            await send(message)

        # A token's first requests, sent before any was answered, are not the principal's yet: held to the
        # concurrency by token, or a burst of them would all run at once.
        owner = principal if principal is not None else digest
        if owner is None or not self._concurrency:
            await self.app(scope, receive, watched)
            return
        turns = self._turns.get(owner)
        if turns is None:
            turns = self._turns[owner] = _Turns(self._concurrency)
        turns.users += 1
        try:
            async with turns.slots:
                await self.app(scope, receive, watched)
        finally:
            turns.users -= 1
            if not turns.users:  # nothing of it in progress or waiting: a made-up token leaves nothing behind
                del self._turns[owner]

    def _learn(self, digest: bytes, principal: str) -> None:
        if digest not in self._known and len(self._known) >= _MAX_KNOWN_TOKENS:
            self._known.clear()  # relearned from the next requests
        self._known[digest] = principal


class _Turns:
    """A principal's (or token's) requests in progress, at most ``concurrency``, and how many use them."""

    __slots__ = ("slots", "users")

    def __init__(self, concurrency: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.users = 0


async def _too_many(send: Send, code: str, wait: float, message: str) -> None:
    raw = json.dumps(error_body(code, message, retry_after=math.ceil(wait))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"retry-after", str(math.ceil(wait)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
