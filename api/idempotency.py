"""``Idempotency-Key`` for writes: a retried request returns the first result and never records twice.

How: before the request reaches its route, a row ``(principal, key, fingerprint)`` is inserted under a unique
constraint. The request that inserts it runs; its response (any status below 500) is stored on the row. A
retry with the same key loses the insert, and

* gets the stored response replayed (header ``Idempotent-Replayed: true``) if the first one finished;
* waits, polling the row, while the first one is still in flight — so two concurrent sends of one key produce
  one transaction — and answers ``409 IDEMPOTENCY_IN_FLIGHT`` only if the first outlives the wait;
* gets ``422 IDEMPOTENCY_KEY_REUSED`` if its method, path or body differ from the first request's.

A 5xx (or an exception) releases the claim, so the client's retry does the work instead of replaying a failure
the client could not act on. A claim left behind by a crashed process is taken over after ``stale_after`` s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import authenticate
from api.db import IdempotencyRecord, utcnow
from api.errors import error_body

HEADER = "idempotency-key"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What identifies "the same request" for one key: method, path, query string and body bytes."""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class IdempotencyStore:
    """The claim/complete/release protocol on the ``api_idempotency`` table (blocking; call from a thread)."""

    def __init__(self, sessions: sessionmaker[Session], *, stale_after: float = 300.0) -> None:
        self._sessions = sessions
        self.stale_after = stale_after

    def claim(self, principal: str, key: str, print_: str) -> IdempotencyRecord | None:
        """Inserts the claim; returns None if this caller now owns it, else the existing row."""
        with self._sessions() as session:
            session.add(IdempotencyRecord(principal=principal, key=key, fingerprint=print_))
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
            row = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if row is not None and row.status_code is None and self._stale(row.created_at):
                # Abandoned by a crashed process: release it so the next claim attempt wins.
                session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == row.id))
                session.commit()
            return row

    def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        with self._sessions() as session:
            return session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )

    def complete(self, principal: str, key: str, stored: Stored) -> None:
        with self._sessions() as session:
            row = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if row is not None:
                row.status_code, row.response_body, row.completed_at = stored.status, stored.body, utcnow()
                session.commit()

    def release(self, principal: str, key: str) -> None:
        with self._sessions() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status_code.is_(None),
                )
            )
            session.commit()

    def _stale(self, created_at: dt.datetime) -> bool:
        if created_at.tzinfo is None:  # SQLite returns naive datetimes
            created_at = created_at.replace(tzinfo=dt.UTC)
        return (utcnow() - created_at).total_seconds() > self.stale_after


#: How long a completed Idempotency-Key is remembered (retries come within minutes; a week is generous).
RETENTION = dt.timedelta(days=7)


def purge_expired(sessions: sessionmaker[Session], *, older_than: dt.timedelta = RETENTION) -> int:
    """Forgets completed keys older than ``older_than``; returns how many. In-flight claims are kept."""
    cutoff = utcnow() - older_than
    with sessions() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.status_code.is_not(None), IdempotencyRecord.created_at < cutoff
            )
        )
        session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


def _json_response(status: int, raw: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> list[Message]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    return [
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])},
        {"type": "http.response.body", "body": raw},
    ]


class IdempotencyMiddleware:
    """ASGI middleware applying :class:`IdempotencyStore` to write requests that carry the header.

    It must run inside the body-limit middleware, which has already read the body (``scope["dxl.body"]``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        wait_timeout: float = 60.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.app = app
        self._sessions = sessions
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        raw_key = headers.get(HEADER.encode())
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            await _refuse(
                send,
                422,
                "VALIDATION_ERROR",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            )
            return
        sessions = self._sessions()
        principal = await to_thread.run_sync(_principal_of, sessions, headers.get(b"authorization", b""))
        if principal is None:  # the route answers 401; nothing to remember
            await self.app(scope, receive, send)
            return
        body: bytes = scope.get("dxl.body", b"")
        print_ = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        store = IdempotencyStore(sessions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            existing = await to_thread.run_sync(store.claim, principal, key, print_)
            if existing is None:
                break
            if existing.fingerprint != print_:
                await _refuse(
                    send,
                    422,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used for a different request (method, path or body)",
                )
                return
            if existing.status_code is not None:
                await _replay(send, Stored(existing.status_code, existing.response_body or b""))
                return
            # In flight: wait for the first request's result (or for its claim to be released, then retry).
            while loop.time() < deadline:
                await asyncio.sleep(self.poll_interval)
                row = await to_thread.run_sync(store.get, principal, key)
                if row is None or row.status_code is not None:
                    break
            else:
                await _refuse(
                    send,
                    409,
                    "IDEMPOTENCY_IN_FLIGHT",
                    "the first request with this Idempotency-Key is still running; retry later",
                )
                return
        await self._run_claimed(scope, receive, send, store, principal, key)

    async def _run_claimed(
        self, scope: Scope, receive: Receive, send: Send, store: IdempotencyStore, principal: str, key: str
    ) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await to_thread.run_sync(store.release, principal, key)
            raise
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 500
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        if status < 500:
            await to_thread.run_sync(store.complete, principal, key, Stored(status, body))
        else:
            await to_thread.run_sync(store.release, principal, key)
        await _send_all(send, messages)


def _principal_of(sessions: sessionmaker[Session], authorization: bytes) -> str | None:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    with sessions() as session:
        principal = authenticate(session, token.strip())
    return principal.key if principal else None


async def _replay(send: Send, stored: Stored) -> None:
    await _send_all(send, _json_response(stored.status, stored.body, [(b"idempotent-replayed", b"true")]))


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    """Answers an error about the Idempotency-Key header itself, without running the route."""
    await _send_all(
        send, _json_response(status, json.dumps(error_body(code, message, field="Idempotency-Key")).encode())
    )


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        await send(message)
