"""Receipts: deliveries posted in bulk and anchored in Merkle batches (see :mod:`api.receipts`).

``POST /receipts`` is the hot path: an async route, the bearer token checked against a short-lived cache, the
body decoded with orjson and checked without a model per receipt, and the answer written by orjson. Reads
(``GET /receipts/{id}``, ``POST /receipts/lookup``) go the ordinary way.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import models as m
from api.auth import Principal, Role, authenticate, hash_token
from api.deps import (
    DeliveryId,
    DepartmentPrincipal,
    Digits,
    ExchangeReader,
    IdempotencyKey,
    LedgerDep,
    get_state,
)
from api.errors import ApiError
from api.ledger import LedgerService
from api.limits import (
    SCOPE_PRINCIPAL,
    JsonBodyError,
    body_refused,
    declared_unencoded,
    declared_utf8,
    is_json,
    parse_json,
    read_json_fast,
)
from api.receipts import ReceiptService
from api.receipts.input import parse_receipts, refuse_repeated_names

router = APIRouter(prefix="/receipts", tags=["receipts"])

#: How long an authenticated token is trusted on ``POST /receipts`` without a database look-up: a revoked
#: token stops working there within this time (everywhere else at once).
TOKEN_CACHE_TTL_S = 5.0
_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer dxl_...`")
_tokens: dict[bytes, tuple[Principal, float]] = {}


async def _poster(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiError("UNAUTHENTICATED", "send `Authorization: Bearer <token>`")
    token = credentials.credentials
    digest = hash_token(token)
    now = time.monotonic()
    cached = _tokens.get(digest)
    if cached is not None and now - cached[1] < TOKEN_CACHE_TTL_S:
        principal = cached[0]
    else:
        sessions = get_state(request).sessions

        def look_up() -> Principal | None:
            with sessions() as session:
                return authenticate(session, token)

        found = await to_thread.run_sync(look_up)
        if found is None:
            _tokens.pop(digest, None)
            raise ApiError("UNAUTHENTICATED", "the bearer token is unknown or revoked")
        principal = found
        _tokens[digest] = (principal, now)
    request.scope[SCOPE_PRINCIPAL] = principal.key  # the token's later requests are charged to it
    if principal.role is not Role.DEPARTMENT:
        raise ApiError("FORBIDDEN", f"{principal.key} may not post receipts (departments only)")
    return principal


_poster.dxl_roles = (Role.DEPARTMENT,)  # type: ignore[attr-defined]
ReceiptPoster = Annotated[Principal, Depends(_poster)]


async def _service(request: Request) -> ReceiptService:
    # async: a plain function dependency would cost the hot path a thread hop per request.
    service = get_state(request).extra.get("receipts")
    if not isinstance(service, ReceiptService):
        raise ApiError("NODE_UNAVAILABLE", "receipt anchoring is not running (is ReceiptAnchors deployed?)")
    return service


_service.dxl_reads_ledger = True  # type: ignore[attr-defined]  # api.openapi: 404 and 503 declared
Receipts = Annotated[ReceiptService, Depends(_service)]


async def _ledger(request: Request) -> LedgerService:
    ledger = get_state(request).ledger
    if ledger is None:
        raise ApiError("NODE_UNAVAILABLE", "the ledger is not connected yet")
    return ledger


_ledger.dxl_reads_ledger = True  # type: ignore[attr-defined]
AsyncLedger = Annotated[LedgerService, Depends(_ledger)]
#: Refusals over chain state that a node which lost blocks may show until the journal has re-mined them.
_MAYBE_NOT_BACK_YET = frozenset({"GRANT_NOT_FOUND", "GRANT_REVOKED", "NOT_A_PARTY"})


async def _department(service: ReceiptService, ledger: LedgerService, principal: Principal) -> int:
    # A department's id never changes; remembering it spares the hot path a thread hop per request.
    found = service.departments.get(principal.key)
    if found is None:
        found = service.departments[principal.key] = await to_thread.run_sync(
            ledger.department_id_of, principal
        )
    return found


@router.post(
    "",
    status_code=202,
    response_model=m.ReceiptsAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            # Added to the document's components by api.openapi (DOCUMENTED_BODIES).
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReceiptsCreate"}}},
        }
    },
)
async def post_receipts(
    request: Request,
    principal: ReceiptPoster,
    service: Receipts,
    ledger: AsyncLedger,
    _key: IdempotencyKey = None,
) -> Response:
    """Accept 1 to 10,000 receipts (the fields of ``POST /deliveries``), all or none. Each is checked as
    ``POST /deliveries`` checks a delivery; a refusal names the first failing receipt (``index``,
    ``delivery_id``). ``202``: every receipt is journaled and will be anchored; the same receipt posted again
    is accepted once."""
    department = await _department(service, ledger, principal)
    raw: bytes = request.scope.get("dxl.body") or await request.body()
    # Read as every other route reads its body: JSON by its Content-Type (text/plain, a form or none is
    # refused there, unparsed), a byte order mark ignored.
    if not is_json(request.scope):
        raise ApiError("VALIDATION_ERROR", "send the body as Content-Type: application/json", field="body")
    try:
        declared_unencoded(request.scope)
        declared_utf8(request.scope)
        document: Any = read_json_fast(raw)
    except JsonBodyError as exc:
        raise body_refused(exc) from None
    try:
        rows = parse_receipts(document)
        refuse_repeated_names(raw, document)
    except ApiError:
        # Refused, so off the hot path: a name given twice in one object is what every other route refuses
        # first (whichever value orjson kept), in its words.
        try:
            parse_json(raw)
        except JsonBodyError as exc:
            raise body_refused(exc) from None
        raise
    # Freed now, not after the journal's commit: thousands of containers the collector need not walk.
    del document
    try:
        await service.accept(department, rows)
    except ApiError as exc:
        # Not on the hot path: only a refusal asks whether the node lost blocks the journal is re-mining (a
        # grant acknowledged in them is not back yet); if so, the receipts are checked again once it is.
        if exc.code not in _MAYBE_NOT_BACK_YET or not await to_thread.run_sync(ledger.sender.gate):
            raise
        await service.accept(department, rows)
    answer = {
        "status": "pending",
        "count": len(rows),
        "delivery_ids": ["0x" + r.delivery_id.hex() for r in rows],
    }
    return Response(orjson.dumps(answer), status_code=202, media_type="application/json")


async def _post_receipts_direct(request: Request) -> Response:
    """``POST /receipts`` without FastAPI's dependency solving per request (a third of the event loop's time
    at one receipt per request): the route's own dependencies, called in its order, then its handler. The
    route above stays the documented one (OpenAPI, the authorization matrix); this one answers it."""
    principal = await _poster(request, await _bearer(request))
    service = await _service(request)
    ledger = await _ledger(request)
    return await post_receipts(request, principal, service, ledger)


def install_direct_route(app: FastAPI) -> None:
    """Serve ``POST /receipts`` by :func:`_post_receipts_direct`; call before the routers' routes are added
    to the app (``api.app.ROUTERS``): the first route that matches answers."""
    app.add_route("/receipts", _post_receipts_direct, methods=["POST"], include_in_schema=False)


def _reader(ledger: LedgerService, principal: Principal) -> int | None:
    return None if principal.role is Role.AUDITOR else ledger.department_id_of(principal)


@router.get("/{delivery_id}", response_model=m.ReceiptPublic)
def get_receipt(
    delivery_id: DeliveryId, principal: ExchangeReader, ledger: LedgerDep, service: Receipts
) -> dict[str, Any]:
    """A receipt's status (pending → anchored → final, or refused), batch, transaction and inclusion proof."""
    found = service.reader.lookup([bytes.fromhex(delivery_id[2:])], reader=_reader(ledger, principal))
    if not found:
        raise ApiError("RECEIPT_NOT_FOUND", f"no receipt {delivery_id} that you are party to")
    return found[0].to_json(service.anchors_address)


@router.post("/lookup", response_model=m.ReceiptList)
def lookup_receipts(
    body: m.ReceiptLookup, principal: ExchangeReader, ledger: LedgerDep, service: Receipts
) -> dict[str, Any]:
    """The receipts among ``delivery_ids`` (up to 1,000) that the caller is party to, as ``GET
    /receipts/{id}`` answers them; ids not found are left out."""
    views = service.reader.lookup(
        [bytes.fromhex(d[2:]) for d in body.delivery_ids], reader=_reader(ledger, principal)
    )
    return {"receipts": [v.to_json(service.anchors_address) for v in views]}


@router.post("/batches/{grant_id}/{first_sequence}/acknowledge", response_model=m.ReceiptBatchSettled)
def acknowledge_batch(
    # Any the ledger could number (uint64), as GET /grants/{id} takes it: one it never did is not found.
    grant_id: Annotated[int, Path(ge=1, le=m.MAX_ID64), Digits],
    first_sequence: Annotated[int, Path(ge=0, le=m.MAX_ID64), Digits],
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    service: Receipts,
    _key: IdempotencyKey = None,
) -> dict[str, Any]:
    """The consumer acknowledges every receipt of an anchored batch it has not disputed, in one
    transaction."""
    me = ledger.department_id_of(principal)
    result, batch = service.acknowledge_batch(
        consumer=me, account=ledger.department_account(me), grant_id=grant_id, first_sequence=first_sequence,
        sender=ledger.sender, claim=ledger.claim,
    )  # fmt: skip
    return {"transaction": {"hash": result.tx_hash, "block_number": result.block_number}, "batch": batch}


@router.post("/{delivery_id}/dispute", response_model=m.ReceiptDisputed)
def dispute_receipt(
    delivery_id: DeliveryId,
    body: m.DeliveryDispute,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    service: Receipts,
    _key: IdempotencyKey = None,
) -> dict[str, Any]:
    """The consumer disputes one final receipt with the commitment it computed; the service sends the
    receipt's inclusion proof, which the contract checks."""
    me = ledger.department_id_of(principal)
    found = service.reader.lookup([bytes.fromhex(delivery_id[2:])], reader=me)
    if not found:
        raise ApiError("RECEIPT_NOT_FOUND", f"no receipt {delivery_id} that you are party to")
    result = service.dispute(
        view=found[0], consumer=me, account=ledger.department_account(me),
        consumer_commitment=bytes.fromhex(body.consumer_commitment[2:]), sender=ledger.sender,
        claim=ledger.claim,
    )  # fmt: skip
    return {
        "transaction": {"hash": result.tx_hash, "block_number": result.block_number},
        "receipt": found[0].to_json(service.anchors_address),
        "consumer_commitment": body.consumer_commitment,
    }
