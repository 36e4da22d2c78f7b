"""Access grants: the provider issues and revokes them under an active agreement."""

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
from api.routes.audit import AuditDep
from node.audit.queries import ListFilter

router = APIRouter(prefix="/grants", tags=["grants"])


@router.post("", response_model=m.Written[m.GrantPublic], status_code=201)
def issue_grant(
    body: m.GrantCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.GrantPublic]:
    return ledger.issue_grant(principal=principal, body=body)


@router.get("", response_model=list[m.GrantPublic])
def list_grants(
    request: Request,
    response: Response,
    principal: ExchangeReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    agreement_id: IdFilter = None,
    resource_id: IdFilter = None,
    provider: ProviderFilter = None,
    consumer: ConsumerFilter = None,
) -> list[m.GrantPublic]:
    """Grants newest first, from the audit index (a department: those it is party to). The next page is the
    ``Link: <…>; rel="next"`` header; ``X-Indexed-Block`` says how far the index reached; pass ``min_block``
    (a write's ``block_number``) to list what that write did (the index follows the chain a moment behind,
    ``DXL_AUDIT_FOLLOW_INTERVAL``)."""
    flt = ListFilter(provider=provider, consumer=consumer, agreement=agreement_id, resource=resource_id)
    listed = ledger.grants(principal=principal, index=index, flt=flt, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.get("/{grant_id}", response_model=m.GrantPublic)
def get_grant(grant_id: IdPath, principal: ExchangeReader, ledger: LedgerDep) -> m.GrantPublic:
    return ledger.grant(grant_id, principal=principal)


@router.post("/{grant_id}/revoke", response_model=m.Written[m.GrantPublic])
def revoke_grant(
    grant_id: IdPath, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.GrantPublic]:
    return ledger.revoke_grant(principal=principal, grant_id=grant_id)
