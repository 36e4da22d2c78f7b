"""Access requests: the consumer requests, the provider approves or rejects; then both sign the terms."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import models as m
from api.deps import (
    ConsumerFilter,
    DepartmentPrincipal,
    ExchangeReader,
    IdempotencyKey,
    IdFilter,
    IdPath,
    LedgerDep,
    ListPageDep,
    ProviderFilter,
    page_headers,
)
from api.openapi import answers
from api.routes.audit import AuditDep
from node.audit.queries import ListFilter

router = APIRouter(prefix="/requests", tags=["requests"])


@router.post("", response_model=m.Written[m.RequestPublic], status_code=201)
def create_request(
    body: m.RequestCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.RequestPublic]:
    return ledger.create_request(principal=principal, body=body)


@router.get("", response_model=list[m.RequestPublic])
def list_requests(
    request: Request,
    response: Response,
    principal: ExchangeReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    resource_id: IdFilter = None,
    provider: ProviderFilter = None,
    consumer: ConsumerFilter = None,
) -> list[m.RequestPublic]:
    """Requests newest first: which ones from the audit index (a department: those it is party to), each
    record from the chain, whose status the ledger computes. The next page is the ``Link: <…>; rel="next"``
    header; ``X-Indexed-Block`` says how far the index reached; pass ``min_block`` (a write's
    ``block_number``) to list what that write did (the index follows the chain a moment behind,
    ``DXL_AUDIT_FOLLOW_INTERVAL``)."""
    flt = ListFilter(provider=provider, consumer=consumer, resource=resource_id)
    listed = ledger.requests(principal=principal, index=index, flt=flt, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.get("/{request_id}", response_model=m.RequestPublic)
def get_request(request_id: IdPath, principal: ExchangeReader, ledger: LedgerDep) -> m.RequestPublic:
    return ledger.request(request_id, principal=principal)


@router.post("/{request_id}/approve", response_model=m.Written[m.RequestPublic])
def approve_request(
    request_id: IdPath, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.RequestPublic]:
    return ledger.decide_request(principal=principal, request_id=request_id, reason_code=None)


@router.post("/{request_id}/reject", response_model=m.Written[m.RequestPublic])
def reject_request(
    request_id: IdPath,
    body: m.RequestReject,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.RequestPublic]:
    return ledger.decide_request(principal=principal, request_id=request_id, reason_code=body.reason_code)


@router.post("/{request_id}/withdraw", response_model=m.Written[m.RequestPublic])
def withdraw_request(
    request_id: IdPath, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.RequestPublic]:
    """The consumer withdraws its request, or the provider its approval, before the agreement is concluded."""
    return ledger.withdraw_request(principal=principal, request_id=request_id)


# Only an approved or concluded request has terms to sign: one pending, rejected or withdrawn is a 409.
@router.get(
    "/{request_id}/terms", response_model=m.SigningPublic, openapi_extra=answers("REQUEST_STATUS_MISMATCH")
)
def get_terms(request_id: IdPath, principal: ExchangeReader, ledger: LedgerDep) -> m.SigningPublic:
    """The EIP-712 typed data both departments sign, its digest, and who has signed so far."""
    return ledger.signing(principal=principal, request_id=request_id)


@router.post("/{request_id}/signatures", response_model=m.SignatureOutcome)
def sign_terms(
    request_id: IdPath,
    body: m.SignatureCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.SignatureOutcome:
    """Sign the terms as the calling department: post your own signature, or none to sign with the custodied
    key. The second party's signature concludes the agreement on chain."""
    return ledger.sign(principal=principal, request_id=request_id, signature=body.signature)
