"""Access grants: the provider issues and revokes them under an active agreement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import models as m
from api.deps import DepartmentPrincipal, ExchangeReader, IdempotencyKey, LedgerDep, ListLimit

router = APIRouter(prefix="/grants", tags=["grants"])
GrantId = Annotated[int, Path(ge=1, le=2**64 - 1)]


@router.post("", response_model=m.Written[m.GrantPublic], status_code=201)
def issue_grant(
    body: m.GrantCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.GrantPublic]:
    return ledger.issue_grant(principal=principal, body=body)


@router.get("", response_model=list[m.GrantPublic])
def list_grants(principal: ExchangeReader, ledger: LedgerDep, limit: ListLimit = 100) -> list[m.GrantPublic]:
    return ledger.grants(principal=principal, limit=limit)


@router.get("/{grant_id}", response_model=m.GrantPublic)
def get_grant(grant_id: GrantId, principal: ExchangeReader, ledger: LedgerDep) -> m.GrantPublic:
    return ledger.grant(grant_id, principal=principal)


@router.post("/{grant_id}/revoke", response_model=m.Written[m.GrantPublic])
def revoke_grant(
    grant_id: GrantId, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.GrantPublic]:
    return ledger.revoke_grant(principal=principal, grant_id=grant_id)
