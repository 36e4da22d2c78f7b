"""The data catalog: departments register and update their resources; every member may browse it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import models as m
from api.deps import CurrentPrincipal, DepartmentPrincipal, IdempotencyKey, LedgerDep

router = APIRouter(prefix="/resources", tags=["catalog"])
ResourceId = Annotated[int, Path(ge=1, le=2**64 - 1)]


@router.get("", response_model=list[m.ResourcePublic])
def list_resources(
    _principal: CurrentPrincipal,
    ledger: LedgerDep,
    owner: Annotated[int | None, Query(ge=1, le=2**32 - 1, description="only this department's")] = None,
) -> list[m.ResourcePublic]:
    return ledger.resources(owner=owner)


@router.post("", response_model=m.Written[m.ResourcePublic], status_code=201)
def register_resource(
    body: m.ResourceCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.ResourcePublic]:
    return ledger.register_resource(principal=principal, body=body)


@router.get("/{resource_id}", response_model=m.ResourcePublic)
def get_resource(
    resource_id: ResourceId, _principal: CurrentPrincipal, ledger: LedgerDep
) -> m.ResourcePublic:
    return ledger.resource(resource_id)


@router.put("/{resource_id}", response_model=m.Written[m.ResourcePublic])
def update_resource(
    resource_id: ResourceId,
    body: m.ResourceUpdate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.ResourcePublic]:
    return ledger.update_resource(principal=principal, resource_id=resource_id, body=body)
