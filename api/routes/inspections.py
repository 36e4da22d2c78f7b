"""Sampling inspections: an auditor opens one for a closed period, the sample is drawn from a block hash
committed to in advance, sampled providers present payload and manifest (checked against the chain), and the
auditor records each outcome. Auditors read every inspection whole; a department reads every inspection with
only the sampled deliveries it provided (:meth:`api.practice.inspections.InspectionService.seen_by`);
governors read none.
``verifier.sampling`` recomputes a sample from the chain alone."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import models as m
from api.deps import (
    CHAIN_BLOCK_RESPONSE,
    ChainListPageDep,
    DepartmentPrincipal,
    IdempotencyKey,
    IdPath,
    InspectionDrawer,
    InspectionReader,
    InspectorPrincipal,
    LedgerDep,
    StateDep,
    chain_block_header,
    page_headers,
)
from api.routes.audit import AuditDep
from api.routes.verify import PinnedCheck

router = APIRouter(prefix="/inspections", tags=["inspections"])


@router.get("", response_model=list[m.InspectionPublic])
def list_inspections(
    request: Request,
    response: Response,
    principal: InspectionReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ChainListPageDep,
) -> list[m.InspectionPublic]:
    """The inspections, newest first, as the caller may read them (a department: the sampled deliveries it
    provided). Read from the audit index, brought up to the chain's head first (``X-Indexed-Block`` names
    that block). The next page is the ``Link: <…>; rel="next"`` header."""
    service = ledger.practice_service().inspections(ledger)
    listed = service.inspections(index=index, page=page)
    page_headers(request, response, listed)
    return [service.seen_by(principal, i) for i in listed.items]


@router.post("", response_model=m.Written[m.InspectionPublic], status_code=201)
def open_inspection(
    body: m.InspectionCreate, auditor: InspectorPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.InspectionPublic]:
    """Open an inspection of a closed period; its seed block is ``seed_delay_blocks`` after the head."""
    return ledger.practice_service().inspections(ledger).open(principal=auditor, body=body)


@router.get("/{inspection_id}", response_model=m.InspectionPublic, responses=CHAIN_BLOCK_RESPONSE)
def get_inspection(
    inspection_id: IdPath, response: Response, principal: InspectionReader, ledger: LedgerDep
) -> m.InspectionPublic:
    """The inspection, and once drawn its sample with each delivery's presentation and recorded outcome (a
    department reads the sampled deliveries it provided, which it must present; an auditor all of them).
    Read from the chain at one block, the node's head as the read began (``X-Chain-Block`` names it): the
    contract's view, the outcomes recorded up to it, overdue by its time; the presentations as the service
    holds them once it is read, each verdict naming the block it was judged at (a later one for a
    presentation kept since, which is then neither overdue nor beside an outcome at this block)."""
    service = ledger.practice_service().inspections(ledger)
    read = service.read(inspection_id)
    chain_block_header(response, read)
    return service.seen_by(principal, read.item)


@router.post("/{inspection_id}/draw", response_model=m.Written[m.InspectionPublic])
def draw(
    inspection_id: IdPath, principal: InspectionDrawer, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.InspectionPublic]:
    """Fix the seed once a block is mined on top of the seed block (409 SEED_UNAVAILABLE before, nothing
    sent), signed by the caller: any department or auditor may draw, so the opening auditor cannot hold back
    a sample it dislikes. The service draws due inspections itself (``DXL_INSPECTION_DRAW_INTERVAL``); an
    inspection drawn already answers the transaction that drew it and its sample, whoever drew it (a
    department's answer shows the sampled deliveries it provided, as ``GET`` does), also to draws racing it.
    Not drawn within 256 blocks of its seed block, an inspection is expired for good (409
    INSPECTION_STATUS_MISMATCH)."""
    service = ledger.practice_service().inspections(ledger)
    drawn = service.draw(principal=principal, inspection_id=inspection_id)
    return drawn.model_copy(update={"record": service.seen_by(principal, drawn.record)})


@router.post("/{inspection_id}/presentations", response_model=m.PresentationPublic)
def present(
    inspection_id: IdPath,
    body: m.PresentationCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    state: StateDep,
) -> m.PresentationPublic:
    """A sampled provider presents one of its deliveries (a drawn receipt by its slot, checked by its
    inclusion proof): the verdict of the payload and manifest against the chain is kept (the latest
    presentation counts) and answered. The presentation is judged at one block, the node's head as it is
    checked: its deadline by that block's time, its verdict's every read of the chain there (``block``)."""
    service = ledger.practice_service().inspections(ledger)
    return service.present(
        principal=principal, inspection_id=inspection_id, body=body, judge=lambda: PinnedCheck(state, ledger)
    )


@router.post("/{inspection_id}/outcomes", response_model=m.Written[m.InspectionPublic])
def record_outcome(
    inspection_id: IdPath,
    body: m.OutcomeCreate,
    auditor: InspectorPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.InspectionPublic]:
    """Record a sampled delivery's outcome on chain: passed (its presentation matched the chain), failed (it
    did not), or not presented (none by the deadline); the verdict's SHA-256 is the evidence hash."""
    service = ledger.practice_service().inspections(ledger)
    return service.record_outcome(principal=auditor, inspection_id=inspection_id, body=body)
