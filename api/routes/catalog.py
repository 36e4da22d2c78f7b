"""The data catalog: departments register and update their resources; every member may browse it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api import catalog
from api import models as m
from api.deps import (
    CurrentPrincipal,
    DepartmentPrincipal,
    IdempotencyKey,
    IdPath,
    LedgerDep,
    ListPageDep,
    MinBlock,
    OwnerFilter,
    page_headers,
)
from api.routes.audit import AuditDep

router = APIRouter(prefix="/resources", tags=["catalog"])


ShareType = Annotated[m.ShareTypeName | None, Query(description="only resources shared this way")]
Text = Annotated[
    str | None, Query(min_length=1, max_length=200, description="in title, description, keywords or fields")
]


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get("", response_model=list[m.ResourcePublic])
def list_resources(
    request: Request,
    response: Response,
    _principal: CurrentPrincipal,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    owner: OwnerFilter = None,
    share_type: ShareType = None,
    q: Text = None,
) -> list[m.ResourcePublic]:
    """The catalog, newest first, from the audit index: each entry as its latest registration or update left
    it, with its metadata document and ``verified`` (the stored document hashes to the entry's metadata hash).
    The next page is the ``Link: <…>; rel="next"`` header; ``X-Indexed-Block`` says how far the index reached;
    pass ``min_block`` (a write's ``block_number``) to list what that write did (the index follows the chain a
    moment behind, ``DXL_AUDIT_FOLLOW_INTERVAL``)."""
    listed = ledger.resources(index=index, page=page, owner=owner, share_type=share_type, text=q)
    page_headers(request, response, listed)
    return listed.items


@router.get(
    "/export",
    response_model=list[m.ResourcePublic],
    responses={200: {"content": {"text/csv": {}}, "description": "the catalog as JSON or CSV"}},
)
def export_catalog(
    _principal: CurrentPrincipal,
    ledger: LedgerDep,
    index: AuditDep,
    as_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.JSON,
    min_block: MinBlock = None,
) -> Any:
    """The whole catalog as JSON (every page of ``GET /resources``) or CSV (one row per resource, the document
    in the ``metadata`` column as canonical JSON); ``POST /resources/import`` reads either. Read from the
    audit index, as the list is (``min_block`` as there)."""
    pages = ledger.catalog(index=index, min_block=min_block)
    # Streamed a page at a time (read, checked, written): the service holds one page, not the catalog.
    if as_format is ExportFormat.CSV:
        return StreamingResponse(catalog.csv_chunks(pages), media_type="text/csv; charset=utf-8")
    return StreamingResponse(catalog.json_chunks(pages), media_type="application/json")


@router.post("/import", response_model=m.CatalogImported)
def import_catalog(
    body: m.CatalogImport, _principal: DepartmentPrincipal, ledger: LedgerDep
) -> m.CatalogImported:
    """Stores the documents of an exported catalog, each only if it hashes to its resource's metadata hash
    on this chain (so an import can restore documents, never change what an entry says)."""
    return ledger.import_catalog(body=body)


@router.post("", response_model=m.Written[m.ResourcePublic], status_code=201)
def register_resource(
    body: m.ResourceCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.ResourcePublic]:
    return ledger.register_resource(principal=principal, body=body)


@router.get("/{resource_id}", response_model=m.ResourcePublic)
def get_resource(resource_id: IdPath, _principal: CurrentPrincipal, ledger: LedgerDep) -> m.ResourcePublic:
    return ledger.resource(resource_id)


@router.put("/{resource_id}", response_model=m.Written[m.ResourcePublic])
def update_resource(
    resource_id: IdPath,
    body: m.ResourceUpdate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.ResourcePublic]:
    return ledger.update_resource(principal=principal, resource_id=resource_id, body=body)
