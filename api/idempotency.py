"""``Idempotency-Key`` for writes: a retried request returns the first result and never records twice.

How: before the request reaches its route, a row ``(principal, key, fingerprint)`` is inserted under a unique
constraint, owned by this process (:class:`ClaimOwner`). The request that inserts it runs; the transaction it
sends is journaled and the claim pointed at it in one database transaction (:mod:`api.journal`). A retry
with the same key loses the insert, and

* gets the stored response replayed (header ``Idempotent-Replayed: true``) if the first one finished;
* waits, polling the row, while the first one is still in flight in a live process — so two concurrent sends
  of one key produce one transaction — and answers ``409 IDEMPOTENCY_IN_FLIGHT`` only if it outlives the wait;
* gets ``422 IDEMPOTENCY_KEY_REUSED`` if its method, path or body differ from the first request's;
* takes the claim over when nobody works on it any more: the first request ended without a final answer
  (``409 TRANSACTION_PENDING``, a 5xx) after its transaction was journaled, its process crashed (claims of
  other processes are handed back when the API starts, after the journal was reconciled with the chain), or
  the journal healed its transaction. The retry then finishes the journaled transaction — re-sending the same
  bytes if the node lost them — and answers from it; it never signs a second one.

A 5xx before anything was journaled releases the claim, so the client's retry does the work instead of
replaying a failure the client could not act on; so does a refusal of the request as malformed (422
VALIDATION_ERROR), so that its corrected retry runs.

Only a route that takes the key claims it (:func:`keyed_routes`): one that records nothing twice when repeated
(``POST /verify``, ``/receipts/lookup``, ``/resources/import``, …) or no route at all ignores the header.
Claimed there, every request with a fresh key kept its answer for a week: a lookup of 1,000 receipts with
their proofs, or a 404, stored per request by whoever sent keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, routing
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import principal_key
from api.db import IdempotencyRecord, JournaledTransaction, utcnow
from api.errors import ERRORS, error_body
from api.journal import DATABASE_DOWN, Claim, TxStatus

log = logging.getLogger("dxl.api.idempotency")

HEADER = "idempotency-key"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
#: Where the middleware hands the request's claim to the route (read by ``api.deps.get_ledger``).
SCOPE_CLAIM = "dxl.claim"
_PENDING = "TRANSACTION_PENDING"
_MALFORMED = "VALIDATION_ERROR"


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes


@dataclass(frozen=True)
class Busy:
    """Another live request works on the key."""


@dataclass(frozen=True)
class Reused:
    """The key was used for a different request."""


ClaimOutcome = Claim | Stored | Busy | Reused


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What identifies "the same request" for one key: method, path, query string and body bytes."""
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class ClaimOwner:
    """This process on claim rows: a random id, and the claims a request of this process is running now.

    A claim row owned by this id but not active here was left by a request that could not record its end
    (the database failed at that moment): a retry takes it over.
    """

    def __init__(self) -> None:
        self.id = secrets.token_hex(16)
        self._active: set[int] = set()
        # Re-entrant: :meth:`rows` holds it across a claim's commit and its (de)activation, which take it
        # again inside.
        self._lock = threading.RLock()

    def rows(self) -> threading.RLock:
        """Held while a new claim row is committed and activated, and while a released one is deleted and
        deactivated. Without it, a concurrent request of this process could read the just-committed row
        (owned by this process, not yet active) as abandoned, take it over, and both would run: two
        transactions for one key. And the database may give a deleted row's id to the next row inserted
        (SQLite reuses the highest rowid): a new claim that found its id still active here, its release
        pending, would lose its activation to that release, and the twin of its key take it over as
        abandoned while it runs."""
        return self._lock

    def activate(self, claim_id: int) -> bool:
        with self._lock:
            if claim_id in self._active:
                return False
            self._active.add(claim_id)
            return True

    def deactivate(self, claim_id: int) -> None:
        with self._lock:
            self._active.discard(claim_id)

    def is_active(self, claim_id: int) -> bool:
        with self._lock:
            return claim_id in self._active


def _error_code(stored: Stored) -> str | None:
    """The error code of an answer, None for one that is not an error body."""
    try:
        code = json.loads(stored.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _is_pending(stored: Stored) -> bool:
    """Whether the answer is 409 TRANSACTION_PENDING: its transaction journaled, its outcome not known yet."""
    return stored.status == ERRORS[_PENDING].status and _error_code(stored) == _PENDING


def _is_malformed(stored: Stored) -> bool:
    """Whether the answer refused the request as malformed (422 VALIDATION_ERROR): what it says is of the
    request's bytes and headers, never of the ledger's state."""
    return stored.status == ERRORS[_MALFORMED].status and _error_code(stored) == _MALFORMED


class IdempotencyStore:
    """The claim/settle protocol on the ``api_idempotency`` table (blocking; call from a thread)."""

    def __init__(self, sessions: sessionmaker[Session], owner: ClaimOwner) -> None:
        self._sessions = sessions
        self.owner = owner

    def claim(self, principal: str, key: str, print_: str) -> ClaimOutcome:
        """Inserts the claim, or takes over one nobody works on; else says why not."""
        me = self.owner.id
        with self._sessions() as session:
            row = IdempotencyRecord(principal=principal, key=key, fingerprint=print_, owner=me)
            session.add(row)
            with self.owner.rows():
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                else:
                    self.owner.activate(row.id)
                    return Claim(row.id, me)
            found = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if found is None:  # released meanwhile: the next attempt inserts
                return Busy()
            if found.fingerprint != print_:
                return Reused()
            if found.status_code is not None:
                return Stored(found.status_code, found.response_body or b"")
            if found.owner not in (None, me) or not self.owner.activate(found.id):
                return Busy()
            try:
                taken = session.execute(
                    update(IdempotencyRecord)
                    .where(
                        IdempotencyRecord.id == found.id,
                        IdempotencyRecord.status_code.is_(None),
                        or_(IdempotencyRecord.owner.is_(None), IdempotencyRecord.owner == me),
                    )
                    .values(owner=me)
                )
                session.commit()
            except BaseException:
                # Not taken (a full disk, say): left active, the key would answer 409 IDEMPOTENCY_IN_FLIGHT
                # in this process for good, since no request runs to deactivate it.
                self.owner.deactivate(found.id)
                raise
            if getattr(taken, "rowcount", 0) != 1:
                self.owner.deactivate(found.id)
                return Busy()
            return Claim(found.id, me, found.tx_hash)

    def waiting_is_over(self, principal: str, key: str) -> bool:
        """Whether a busy key changed so that claiming again may succeed (finished, released or abandoned)."""
        with self._sessions() as session:
            row = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if row is None or row.status_code is not None or row.owner is None:
                return True
            return row.owner == self.owner.id and not self.owner.is_active(row.id)

    def settle(self, claim: Claim, stored: Stored) -> None:
        """Ends the request's claim: its response is kept as the key's answer when it is final; the claim is
        handed back (a retry finishes the journaled transaction) when a transaction was sent and the answer
        is not final; it is released when nothing was sent and the answer is a 5xx, 409 TRANSACTION_PENDING
        or 422 VALIDATION_ERROR."""
        released = False
        try:
            with self._sessions() as session:
                row = session.get(IdempotencyRecord, claim.id)
                if row is None or row.owner != self.owner.id or row.status_code is not None:
                    return  # the journal healed its transaction meanwhile: a retry answers from it
                tx_status = (
                    session.scalar(
                        select(JournaledTransaction.status).where(JournaledTransaction.tx_hash == row.tx_hash)
                    )
                    if row.tx_hash
                    else None
                )
                sent = tx_status is not None and tx_status != TxStatus.SUPERSEDED.value
                # Voided: reverted, and never to be mined (a lost block sends its standby instead).
                settled = tx_status in (TxStatus.MINED.value, TxStatus.REVERTED.value, TxStatus.VOIDED.value)
                # "Pending" is never an answer to keep, also when the transaction was mined between the
                # answer and now (the watcher marked it): kept, every retry replayed the 409 of a write that
                # is on the chain, instead of finishing it. Nor when the request sent nothing itself (a
                # relayed agreement not yet under the confirmation depth): the retry runs it again.
                # Nor a refusal of the request as malformed when nothing was sent: the client corrects it and
                # retries with the same key, which does not tell a Content-Type apart (nor should a corrected
                # body be refused as another request's): kept, the refusal was replayed to the corrected
                # request for a week, or the correction refused IDEMPOTENCY_KEY_REUSED.
                final = (
                    not _is_pending(stored)
                    and not (_is_malformed(stored) and not sent)
                    and ((200 <= stored.status < 300) or (stored.status < 500 and (settled or not sent)))
                )
                if final:
                    row.status_code, row.response_body, row.completed_at = (
                        stored.status,
                        stored.body,
                        utcnow(),
                    )
                elif sent:
                    row.owner = None
                else:
                    # Its id may be the next row's as soon as the deletion commits (ClaimOwner.rows).
                    with self.owner.rows():
                        session.delete(row)
                        session.commit()
                        self.owner.deactivate(claim.id)
                        released = True
                    return
                session.commit()
        except SQLAlchemyError as exc:
            # The claim stays owned by this process but inactive: the client's retry takes it over.
            log.warning("idempotency: could not settle claim %s: %s", claim.id, exc)
        finally:
            if not released:  # deactivated later, it might be another claim's now
                self.owner.deactivate(claim.id)

    def adopt_orphans(self) -> int:
        """At start, after reconciliation: unfinished claims of other (dead) processes are handed back if
        their transaction is journaled, released if nothing was sent. Returns how many."""
        me = self.owner.id
        with self._sessions() as session:
            foreign = (IdempotencyRecord.status_code.is_(None), or_(IdempotencyRecord.owner.is_(None),
                       IdempotencyRecord.owner != me))  # fmt: skip
            released = session.execute(
                delete(IdempotencyRecord).where(*foreign, IdempotencyRecord.tx_hash.is_(None))
            )
            handed = session.execute(
                update(IdempotencyRecord)
                .where(*foreign, IdempotencyRecord.tx_hash.is_not(None))
                .values(owner=None)
            )
            session.commit()
            return int(getattr(released, "rowcount", 0) or 0) + int(getattr(handed, "rowcount", 0) or 0)


#: How long a completed Idempotency-Key is remembered (retries come within minutes; a week is generous).
RETENTION = dt.timedelta(days=7)


def purge_expired(sessions: sessionmaker[Session], *, older_than: dt.timedelta = RETENTION) -> int:
    """Forgets completed keys older than ``older_than``, then journaled transactions as old that are settled
    (mined, reverted, superseded, or voided with the standby transaction that would take its place) and
    that no remaining key names; returns how many rows went. In-flight claims and unsettled transactions are
    kept: the chain, not the journal, is the record of what happened, and only recent blocks are checked for
    loss."""
    cutoff = utcnow() - older_than
    settled = (
        TxStatus.MINED.value, TxStatus.REVERTED.value, TxStatus.SUPERSEDED.value, TxStatus.VOIDED.value,
        TxStatus.STANDBY.value,
    )  # fmt: skip
    with sessions() as session:
        keys = session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.status_code.is_not(None), IdempotencyRecord.created_at < cutoff
            )
        )
        named = select(IdempotencyRecord.tx_hash).where(IdempotencyRecord.tx_hash.is_not(None))
        journal = session.execute(
            delete(JournaledTransaction).where(
                JournaledTransaction.status.in_(settled),
                JournaledTransaction.created_at < cutoff,
                JournaledTransaction.tx_hash.not_in(named),
            )
        )
        session.commit()
        return int(getattr(keys, "rowcount", 0) or 0) + int(getattr(journal, "rowcount", 0) or 0)


def _json_response(status: int, raw: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> list[Message]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    return [
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])},
        {"type": "http.response.body", "body": raw},
    ]


@dataclass(frozen=True)
class WriteRoute:
    """A route taking writes: its path pattern, methods, and whether it takes an ``Idempotency-Key``."""

    regex: re.Pattern[str]
    literal: bool
    methods: frozenset[str]
    keyed: bool


def _takes_key(route: Any) -> bool:
    """Whether the route declares the ``Idempotency-Key`` header; a route that is not FastAPI's (served by a
    handler of its own) is taken to, since nothing says it does not."""
    if not isinstance(route, routing.APIRoute):
        return True
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if any(p.alias.lower() == HEADER for p in dep.header_params):
            return True
        stack.extend(dep.dependencies)
    return False


def keyed_routes(app: FastAPI) -> list[WriteRoute]:
    """Every route of ``app`` that takes a write method (included routers flattened)."""
    found = []
    for ctx in routing.iter_route_contexts(app.routes):
        methods = frozenset(ctx.methods or ()) & _WRITE_METHODS
        if ctx.path is None or not methods:
            continue
        regex, _, convertors = compile_path(ctx.path)
        found.append(WriteRoute(regex, not convertors, methods, _takes_key(ctx.original_route)))
    return found


def claims_key(table: list[WriteRoute], method: str, path: str) -> bool:
    """Whether the route serving ``method`` at ``path`` takes an ``Idempotency-Key``; routes spelling the path
    literally decide when there are any (as :func:`api.errors.allowed_methods` reads them). False when no
    route serves it: a 404 has nothing to keep."""
    matching = [r for r in table if method in r.methods and r.regex.match(path)]
    chosen = [r for r in matching if r.literal] or matching
    return any(r.keyed for r in chosen)


_KEYED_CACHE = 4096


class IdempotencyMiddleware:
    """ASGI middleware applying :class:`IdempotencyStore` to write requests that carry the header.

    It must run inside the body-limit middleware, which has already read the body (``scope["dxl.body"]``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        owner: Callable[[], ClaimOwner],
        api: FastAPI,
        wait_timeout: float = 60.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.app = app
        self._api = api
        self._table: list[WriteRoute] | None = None
        #: Whether a write claims its key, by method and path (ids make paths many: the newest are kept).
        self._keyed: dict[tuple[str, str], bool] = {}
        self._sessions = sessions
        self._owner = owner
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS or not self._claims(scope):
            await self.app(scope, receive, send)
            return
        # The first of a repeated header, as the routes read headers (Starlette): the key is claimed for the
        # principal the route acts as, not for another token sent beside it.
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), value)
        raw_key = headers.get(HEADER.encode())
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        # Two keys leave open which one a retry repeats (and an intermediary may keep either): malformed.
        repeated = sum(name.lower() == HEADER.encode() for name, _ in scope["headers"]) > 1
        if repeated or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            await _refuse(
                send,
                422,
                "VALIDATION_ERROR",
                f"send one Idempotency-Key of 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            )
            return
        sessions = self._sessions()
        store = IdempotencyStore(sessions, self._owner())
        try:
            principal = await to_thread.run_sync(_principal_of, sessions, headers.get(b"authorization", b""))
            if principal is None:  # the route answers 401; nothing to remember
                await self.app(scope, receive, send)
                return
            body: bytes = scope.get("dxl.body", b"")
            print_ = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
            outcome = await self._claim(store, principal, key, print_)
        except DATABASE_DOWN as exc:
            log.warning("idempotency: database unavailable: %s", exc)
            await _refuse(
                send, 503, "DATABASE_UNAVAILABLE", "the API database cannot be written; nothing was sent"
            )
            return
        if isinstance(outcome, Reused):
            await _refuse(
                send,
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used for a different request (method, path or body)",
            )
        elif isinstance(outcome, Stored):
            await _replay(send, outcome)
        elif isinstance(outcome, Busy):
            await _refuse(
                send,
                409,
                "IDEMPOTENCY_IN_FLIGHT",
                "the first request with this Idempotency-Key is still running; retry later",
            )
        else:
            await self._run_claimed(scope, receive, send, store, outcome)

    def _claims(self, scope: Scope) -> bool:
        if self._table is None:  # on the first request: every route is in place by then
            self._table = keyed_routes(self._api)
        at = (scope["method"], scope["path"])
        keyed = self._keyed.get(at)
        if keyed is None:
            keyed = claims_key(self._table, *at)
            if len(self._keyed) >= _KEYED_CACHE:
                self._keyed.clear()
            self._keyed[at] = keyed
        return keyed

    async def _claim(self, store: IdempotencyStore, principal: str, key: str, print_: str) -> ClaimOutcome:
        """Claims the key, waiting (up to the wait timeout) while a live request works on it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            outcome = await to_thread.run_sync(store.claim, principal, key, print_)
            if not isinstance(outcome, Busy):
                return outcome
            while True:
                if loop.time() >= deadline:
                    return outcome
                await asyncio.sleep(self.poll_interval)
                if await to_thread.run_sync(store.waiting_is_over, principal, key):
                    break

    async def _run_claimed(
        self, scope: Scope, receive: Receive, send: Send, store: IdempotencyStore, claim: Claim
    ) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            scope[SCOPE_CLAIM] = claim
            await self.app(scope, receive, capture)
        except BaseException:
            await to_thread.run_sync(store.settle, claim, Stored(500, b""))
            raise
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 500
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        await to_thread.run_sync(store.settle, claim, Stored(status, body))
        await _send_all(send, messages)


def _principal_of(sessions: sessionmaker[Session], authorization: bytes) -> str | None:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return principal_key(sessions, token.strip())


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
