"""Deliveries: the provider records a payload commitment; the consumer acknowledges or disputes it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import models as m
from api.deps import (
    ConsumerFilter,
    DeliveryId,
    DepartmentPrincipal,
    ExchangeReader,
    IdempotencyKey,
    IdFilter,
    LedgerDep,
    ListPageDep,
    ProviderFilter,
    page_headers,
)
from api.routes.audit import AuditDep
from node.audit.queries import ListFilter

router = APIRouter(prefix="/deliveries", tags=["deliveries"])


@router.post("", response_model=m.Written[m.DeliveryPublic], status_code=201)
def record_delivery(
    body: m.DeliveryCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.DeliveryPublic]:
    return ledger.record_delivery(principal=principal, body=body)


@router.post("/batch", response_model=m.DeliveryBatchPublic, status_code=201)
def record_deliveries(
    body: m.DeliveryBatchCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.DeliveryBatchPublic:
    """Record up to ``MAX_BATCH_DELIVERIES`` deliveries in one transaction, all or none; each item is the body
    of ``POST /deliveries``. An error names the failing item (``index``, ``delivery_id``)."""
    return ledger.record_deliveries(principal=principal, body=body)


@router.get("", response_model=list[m.DeliveryPublic])
def list_deliveries(
    request: Request,
    response: Response,
    principal: ExchangeReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    grant_id: IdFilter = None,
    agreement_id: IdFilter = None,
    resource_id: IdFilter = None,
    provider: ProviderFilter = None,
    consumer: ConsumerFilter = None,
) -> list[m.DeliveryPublic]:
    """Deliveries newest first, from the audit index (a department: those it provided or consumed). The next
    page is the ``Link: <…>; rel="next"`` header; ``X-Indexed-Block`` says how far the index reached. The
    index follows the chain a moment behind (``DXL_AUDIT_FOLLOW_INTERVAL``): pass ``min_block`` (a write's
    ``block_number``) to list what that write recorded or settled."""
    flt = ListFilter(
        provider=provider, consumer=consumer, grant=grant_id, agreement=agreement_id, resource=resource_id
    )
    listed = ledger.deliveries(principal=principal, index=index, flt=flt, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.get("/{delivery_id}", response_model=m.DeliveryPublic)
def get_delivery(delivery_id: DeliveryId, principal: ExchangeReader, ledger: LedgerDep) -> m.DeliveryPublic:
    return ledger.delivery(delivery_id, principal=principal)


@router.post("/{delivery_id}/acknowledge", response_model=m.Written[m.DeliveryPublic])
def acknowledge_delivery(
    delivery_id: DeliveryId,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    body: m.DeliverySettle | None = None,
    _key: IdempotencyKey = None,
) -> m.Written[m.DeliveryPublic]:
    """Settle with the commitment the consumer computed (default: the recorded one). Equal acknowledges;
    different disputes — the ledger decides, the response says which."""
    commitment = body.consumer_commitment if body else None
    return ledger.settle_delivery(
        principal=principal, delivery_id=delivery_id, consumer_commitment=commitment, dispute=False
    )


@router.post("/{delivery_id}/dispute", response_model=m.Written[m.DeliveryPublic])
def dispute_delivery(
    delivery_id: DeliveryId,
    body: m.DeliveryDispute,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.DeliveryPublic]:
    return ledger.settle_delivery(
        principal=principal,
        delivery_id=delivery_id,
        consumer_commitment=body.consumer_commitment,
        dispute=True,
    )
