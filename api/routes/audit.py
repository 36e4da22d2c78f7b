"""``/audit``: exchange history, provenance and scorecards from the audit trail (``node.audit``).

Readers are auditors (everything) and departments (exchanges they are a party to: history is pinned to the
calling department, provenance is answered only to the delivery's parties). Unknown ids answer 404
(``DEPARTMENT_NOT_FOUND``, ``DELIVERY_NOT_FOUND`` or ``NOT_FOUND`` naming the commitment), malformed
filters and cursors 422 ``VALIDATION_ERROR`` naming the field. ``POST /audit/index`` (auditors) brings the
index up to the chain head; ``dxl audit index`` does the same from the command line.

Anchored receipt batches (the ``ReceiptAnchors`` contract's events) are exchanges like deliveries: in the
history of their parties only, and traced by ``/audit/receipt-batches/{grant_id}/{first_sequence}/provenance``
(404 ``RECEIPT_BATCH_NOT_FOUND``, also to a department that is not a party).
"""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from api.auth import Principal, Role
from api.deps import (
    AuditorPrincipal,
    DeliveryId,
    DepartmentQuery,
    Digits,
    ExchangeReader,
    IdFilter,
    IsoMoment,
    ListCursor,
    StateDep,
)
from api.errors import ApiError, base64_field
from api.limits import check_payload_leaves
from api.models import BYTES32_PATTERN, ManifestDocument
from node.audit.errors import InvalidQueryError, NotFoundError
from node.audit.scorecard_pdf import Language
from node.errors import DxlError

router = APIRouter(prefix="/audit", tags=["audit"])
_lock = threading.Lock()


def get_audit(state: StateDep) -> Any:
    """The audit context (database, node, contract), opened once per app."""
    from node.audit.service import AuditContext, open_context

    with _lock:
        ctx = state.extra.get("audit")
        if ctx is None:
            try:
                ctx = open_context(state.settings)
            except DxlError as exc:
                raise ApiError("NODE_UNAVAILABLE", f"audit trail unavailable: {exc.message}") from None
            state.extra["audit"] = ctx
    if state.ledger is not None and isinstance(ctx, AuditContext):
        # The trail reads where the ledger's writes go, among the nodes it was given: a node the chain client
        # left (dead, or its head stalled while another's moved on) serves blocks that lag behind them.
        in_use = state.ledger.client.endpoint_in_use
        if ctx.rpc_url != in_use.rpc_url and in_use.rpc_url in ctx.failover_urls:
            ctx.read_from(in_use.rpc_url, in_use.failover_urls)
    return ctx


get_audit.dxl_reads_ledger = True  # type: ignore[attr-defined]  # api.openapi: 404 and 503 declared
AuditDep = Annotated[Any, Depends(get_audit)]


def _translate(exc: DxlError) -> ApiError:
    if isinstance(exc, NotFoundError):
        if exc.kind in ("department", "delivery", "receipt batch"):
            return ApiError(exc.code, exc.message)
        return ApiError("NOT_FOUND", exc.message, field=exc.kind)
    if isinstance(exc, InvalidQueryError):
        return ApiError("VALIDATION_ERROR", exc.message, field=exc.field)
    if isinstance(exc, ApiError):
        return exc
    return ApiError("NODE_UNAVAILABLE", exc.message)


def _time(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        # RFC 3339 lets the "T" and "Z" be lower case; fromisoformat takes neither "z" nor, before 3.11, "Z".
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("VALIDATION_ERROR", f"{name} must be an ISO date or date-time", field=name) from None
    seconds = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    if seconds < 0:  # the chain's clock starts at the Unix epoch: refused here, under the parameter's name
        raise ApiError("VALIDATION_ERROR", f"{name} must not be before 1970-01-01T00:00:00Z", field=name)
    return seconds


def _dept(ctx: Any, code: str | None) -> int | None:
    """The id of the department a query names by code or id, as the audit index holds it. One the index does
    not hold yet is looked for again once the index is brought up to the chain's head: admitted since the
    last sync (the follower's, every DXL_AUDIT_FOLLOW_INTERVAL), it was 404 on a scorecard that would have
    brought the index up itself.

    Raises:
        NotFoundError: no such department on chain either.
        NodeError: the index could not be brought up.
    """
    from node.audit.queries import department_id

    if code is None:
        return None
    try:
        return department_id(ctx.engine, code)
    except NotFoundError:
        ctx.caught_up()
        return department_id(ctx.engine, code)


def _pin(ctx: Any, principal: Principal, requested: str | None) -> str | None:
    """Departments read only their own history, named by code or by id (as a scorecard is)."""
    if principal.role is Role.AUDITOR:
        return requested
    if requested is not None and requested != principal.department:
        own = requested.isdigit() and _dept(ctx, principal.department) == int(requested)
        if not own:
            raise ApiError("FORBIDDEN", f"{principal.key} may only read its own exchange history")
    return principal.department


@router.get("/history")
def history(
    ctx: AuditDep,
    principal: ExchangeReader,
    department: DepartmentQuery = None,
    counterpart: DepartmentQuery = None,
    resource: IdFilter = None,
    agreement: IdFilter = None,
    event: Annotated[list[str] | None, Query()] = None,
    period_from: Annotated[IsoMoment, Query(alias="from")] = None,
    period_to: Annotated[IsoMoment, Query(alias="to")] = None,
    cursor: ListCursor = None,
    limit: Annotated[int, Query(ge=1, le=500), Digits] = 50,
) -> dict[str, Any]:
    """Exchange history, oldest first; follow ``next_cursor`` for the next page."""
    from node.audit.queries import HistoryFilter
    from node.audit.queries import history as run

    try:
        flt = HistoryFilter(
            department=_dept(ctx, _pin(ctx, principal, department)),
            counterpart=_dept(ctx, counterpart),
            resource=resource,
            agreement=agreement,
            events=tuple(event or ()),
            from_time=_time(period_from, "from"),
            to_time=_time(period_to, "to"),
        )
        return run(ctx.engine, flt, known_events=ctx.codec.event_names, cursor=cursor, limit=limit).to_dict()
    except DxlError as exc:
        raise _translate(exc) from None


def _visible(principal: Principal, found: list[dict[str, Any]], kind: str, key: str) -> list[dict[str, Any]]:
    """The deliveries a principal may see; a department that is party to none gets the answer of an unknown
    ``key`` (same status, code and body), so it cannot learn what other departments delivered."""
    from node.audit.queries import normalize_bytes32

    if principal.role is Role.AUDITOR:
        return found
    mine = [
        p for p in found
        if principal.department in ((p["provider"] or {}).get("code"), (p["consumer"] or {}).get("code"))
    ]  # fmt: skip
    if not mine:
        raise _translate(NotFoundError(kind, normalize_bytes32(key, kind)))
    return mine


@router.get("/provenance/{commitment}")
def provenance_of_commitment(
    ctx: AuditDep,
    principal: ExchangeReader,
    commitment: Annotated[str, PathParam(pattern=BYTES32_PATTERN, description="bytes32 payload commitment")],
) -> dict[str, Any]:
    """Deliveries that recorded this payload commitment, with their lineage and chain locations."""
    from node.audit.queries import provenance

    try:
        ctx.heal()
        found = provenance(ctx.engine, commitment)
        return {"deliveries": _visible(principal, found, "commitment", commitment)}
    except DxlError as exc:
        raise _translate(exc) from None


@router.get("/deliveries/{delivery_id}/provenance")
def provenance_of_delivery(
    ctx: AuditDep, principal: ExchangeReader, state: StateDep, delivery_id: DeliveryId
) -> dict[str, Any]:
    """One delivery's lineage and chain locations. A delivery sent as an anchored receipt (``POST
    /receipts``) answers ``receipts``: the receipt with its inclusion proof (as ``GET /receipts/{id}``) and
    its batch's provenance (``batch_provenance``; null until the audit trail has indexed the batch), with
    ``deliveries`` empty."""
    from node.audit.queries import provenance

    try:
        ctx.heal()
        found = provenance(ctx.engine, delivery_id=delivery_id)
        return {"deliveries": _visible(principal, found, "delivery", delivery_id)}
    except NotFoundError as exc:
        receipt = _anchored_receipt(ctx, state, principal, delivery_id)
        if receipt is None:
            raise _translate(exc) from None
        return {"deliveries": [], "receipts": [receipt]}
    except DxlError as exc:
        raise _translate(exc) from None


def _anchored_receipt(ctx: Any, state: Any, principal: Principal, delivery_id: str) -> dict[str, Any] | None:
    """The anchored receipt ``delivery_id`` the principal is party to, with its batch's provenance; None if
    the service's receipt journal holds no such receipt in a batch (or serves no receipts)."""
    from api.receipts import ReceiptService
    from node.audit.queries import batch_provenance, department_id, normalize_bytes32

    service = state.extra.get("receipts")
    if not isinstance(service, ReceiptService):
        return None
    reader: int | None = None
    if principal.role is not Role.AUDITOR:
        if principal.department is None:
            return None
        try:
            reader = department_id(ctx.engine, principal.department)
        except NotFoundError:  # not admitted as far as the index knows: party to nothing it holds
            return None
    key = bytes.fromhex(normalize_bytes32(delivery_id, "delivery_id")[2:])
    views = [v for v in service.reader.lookup([key], reader=reader) if v.proof is not None]
    if not views:
        return None
    view = views[0]
    assert view.proof is not None
    try:
        batch: dict[str, Any] | None = batch_provenance(
            ctx.engine, view.receipt.grant_id, view.proof.first_sequence
        )
    except NotFoundError:  # anchored, not indexed yet (or refused by the contract)
        batch = None
    return {**view.to_json(service.anchors_address), "batch_provenance": batch}


@router.get("/receipt-batches/{grant_id}/{first_sequence}/provenance")
def provenance_of_batch(
    ctx: AuditDep,
    principal: ExchangeReader,
    grant_id: Annotated[int, PathParam(ge=0, le=2**64 - 1), Digits],
    first_sequence: Annotated[int, PathParam(ge=0, le=2**64 - 1), Digits],
) -> dict[str, Any]:
    """One anchored receipt batch: leaf count, root, chain location, acknowledgement, disputed receipts and
    the grant, agreement, request and parties behind it. Departments see only batches they are a party to
    (another's answers as an unknown batch would)."""
    from node.audit.queries import batch_provenance

    try:
        ctx.heal()
        found = batch_provenance(ctx.engine, grant_id, first_sequence)
    except DxlError as exc:
        raise _translate(exc) from None
    parties = ((found["provider"] or {}).get("code"), (found["consumer"] or {}).get("code"))
    if principal.role is not Role.AUDITOR and principal.department not in parties:
        raise _translate(NotFoundError("receipt batch", f"{grant_id}/{first_sequence}"))
    return found


class PayloadProvenance(BaseModel):
    manifest: ManifestDocument = Field(description="The delivery manifest (JSON) that came with the payload.")
    payload_base64: str = Field(description="The payload bytes, base64 (bounded by the API's body limit).")


@router.post("/provenance/payload")
def provenance_of_payload(
    ctx: AuditDep, principal: ExchangeReader, body: PayloadProvenance
) -> dict[str, Any]:
    """Recompute a payload's commitment with its manifest (the verifier's code) and trace it."""
    import json

    from node.audit.queries import provenance_of_file
    from verifier.manifest import parse_manifest

    raw = base64_field(body.payload_base64, "payload_base64")
    try:
        chunking = parse_manifest(body.manifest).chunking
    except DxlError as exc:  # as the verifier's own reading of it below would refuse it
        raise ApiError("VALIDATION_ERROR", exc.message, field="manifest") from None
    check_payload_leaves(raw, chunking)
    try:
        ctx.heal()
    except DxlError as exc:
        raise _translate(exc) from None
    with tempfile.TemporaryDirectory(prefix="dxl-provenance-") as tmp:
        payload, manifest = Path(tmp) / "payload", Path(tmp) / "manifest.json"
        payload.write_bytes(raw)
        manifest.write_text(json.dumps(body.manifest), encoding="utf-8")
        try:
            result = provenance_of_file(ctx.engine, payload, manifest)
        except NotFoundError as exc:
            raise _translate(exc) from None
        except DxlError as exc:  # manifest or payload format errors from the verifier
            raise ApiError("VALIDATION_ERROR", exc.message, field="manifest") from None
    result["deliveries"] = _visible(
        principal, result["deliveries"], "commitment", result["computed_commitment"]
    )
    return result


class ScorecardFormat(StrEnum):
    JSON = "json"
    PDF = "pdf"


@router.get(
    "/scorecard",
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the scorecard as JSON, or with format=pdf as a PDF file",
        }
    },
)
def scorecard(
    ctx: AuditDep,
    principal: ExchangeReader,
    state: StateDep,
    department: DepartmentQuery = None,
    period_from: Annotated[IsoMoment, Query(alias="from")] = None,
    period_to: Annotated[IsoMoment, Query(alias="to")] = None,
    deadline_days: Annotated[int | None, Query(ge=0, le=365), Digits] = None,
    as_format: Annotated[
        ScorecardFormat, Query(alias="format", description="pdf: the scorecard as a PDF file")
    ] = ScorecardFormat.JSON,
    lang: Annotated[Language, Query(description="the PDF's language")] = Language.EN,
) -> Any:
    """Indicators of one department (or the consortium) over ``[from, to)``; see ``node.audit.scorecard``.
    ``format=pdf`` answers the same card as a PDF file (``node.audit.scorecard_pdf``: department, period,
    the chain position it was computed at, charts and every indicator, in ``lang``), named by department and
    period in ``Content-Disposition``.

    Auditors read every department's scorecard; a department reads its own and the consortium's (aggregates
    over every department), not another department's (403 ``FORBIDDEN``)."""
    from node.audit.scorecard import compute_scorecard, load_facts

    try:
        end = _time(period_to, "to")  # a given end of 0 (1970-01-01) stays 0: an empty period, refused
        subject = _dept(ctx, department)
        reader = None if principal.role is Role.AUDITOR else _dept(ctx, principal.department)
        if reader is not None and subject not in (None, reader):
            raise ApiError("FORBIDDEN", f"{principal.key} may read its own and the consortium's scorecard")
        # An open period is evaluated on the chain's clock, not this machine's: a node whose clock runs ahead
        # (a fact's block time later than time.time()) would otherwise have its newest facts left out. The
        # index is brought up to the head first; demands, evaluations and inspections, read from the practice
        # contract itself (null without) at a head as late or later, are cut back to the index's last block.
        block, now = ctx.caught_up()
        practice = (
            None
            if state.ledger is None or state.ledger.practice is None
            else state.ledger.practice.reader.facts()
        )
        facts = load_facts(ctx.engine, through_block=block)
        card = compute_scorecard(
            facts,
            department=subject,
            period_from=_time(period_from, "from") or 0,
            period_to=now + 1 if end is None else end,
            now=now,
            deadline_days=ctx.settings.audit_response_deadline_days
            if deadline_days is None
            else deadline_days,
            practice=practice,
            at_block=block,
            reader=reader,
        )
    except DxlError as exc:
        raise _translate(exc) from None
    if as_format is ScorecardFormat.JSON:
        return card
    from node.audit.scorecard_pdf import PDF_MEDIA_TYPE, ChainPosition, pdf_filename, scorecard_pdf

    pdf = scorecard_pdf(
        card,
        at=ChainPosition(chain_id=ctx.chain_id, ledger=ctx.contract, block=block, block_time=now),
        language=lang,
        department_codes=facts.department_codes,
    )
    disposition = f'attachment; filename="{pdf_filename(card)}"'
    return Response(pdf, media_type=PDF_MEDIA_TYPE, headers={"Content-Disposition": disposition})


@router.post("/index")
def index(_auditor: AuditorPrincipal, ctx: AuditDep) -> dict[str, Any]:
    """Index up to the chain head now (auditors)."""
    try:
        # The context's index lock, not the module lock: reads open no context while a sync runs, and the
        # API's audit follower (node.audit.follower) syncs under the same lock.
        with ctx.index_lock, ctx.rpc() as rpc:
            return dict(ctx.indexer(rpc).sync().to_dict())
    except DxlError as exc:
        raise _translate(exc) from None
