"""Departments (any authenticated principal may read membership), who-am-I, and governance proposals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from api import models as m
from api.auth import Role
from api.deps import (
    ChainListPageDep,
    CurrentPrincipal,
    Digits,
    GovernanceReader,
    GovernorPrincipal,
    IdempotencyKey,
    LedgerDep,
    ListPageDep,
    page_headers,
)
from api.routes.audit import AuditDep

router = APIRouter(tags=["departments"])
ProposalId = Annotated[int, Path(ge=1, le=2**256 - 1), Digits]
DepartmentId = Annotated[int, Path(ge=1, le=2**32 - 1), Digits]


@router.get("/me", response_model=m.PrincipalPublic)
def whoami(principal: CurrentPrincipal, ledger: LedgerDep) -> m.PrincipalPublic:
    dept_id = ledger.department_id_of(principal) if principal.role is Role.DEPARTMENT else None
    return m.PrincipalPublic(
        principal=principal.key, role=principal.role.value, department=principal.department,
        department_id=dept_id, governor=principal.governor, token_name=principal.token_name,
    )  # fmt: skip


@router.get("/departments", response_model=list[m.DepartmentPublic])
def list_departments(
    request: Request,
    response: Response,
    _principal: CurrentPrincipal,
    ledger: LedgerDep,
    index: AuditDep,
    page: ChainListPageDep,
) -> list[m.DepartmentPublic]:
    """The admitted departments in the order of admission, each as the ledger's view answers it. Read from
    the audit index, brought up to the chain's head first (``X-Indexed-Block`` names that block). The next
    page is the ``Link: <…>; rel="next"`` header."""
    listed = ledger.departments(index=index, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.get("/departments/{department_id}", response_model=m.DepartmentPublic)
def get_department(
    department_id: DepartmentId, _principal: CurrentPrincipal, ledger: LedgerDep
) -> m.DepartmentPublic:
    return ledger.department(department_id)


@router.post("/governance/proposals", response_model=m.Written[m.ProposalPublic], status_code=201)
def propose(
    principal: GovernorPrincipal,
    ledger: LedgerDep,
    body: Annotated[m.ProposalCreate, Body()],
    _key: IdempotencyKey = None,
) -> m.Written[m.ProposalPublic]:
    return ledger.propose(principal=principal, body=body)


@router.get("/governance/proposals", response_model=list[m.ProposalPublic])
def list_proposals(
    request: Request,
    response: Response,
    principal: GovernanceReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    status: Annotated[
        m.ProposalStatus | None, Query(description="only proposals in this status (open: awaiting approvals)")
    ] = None,
) -> list[m.ProposalPublic]:
    """Proposals newest first, from the audit index, each with the arguments it carries: what a governor
    approves. The next page is the ``Link: <…>; rel="next"`` header; ``X-Indexed-Block`` says how far the
    index reached; pass ``min_block`` (a write's ``block_number``) to list what that write did (the index
    follows the chain a moment behind, ``DXL_AUDIT_FOLLOW_INTERVAL``)."""
    listed = ledger.proposals(index=index, page=page, status=status, viewer=principal)
    page_headers(request, response, listed)
    return listed.items


@router.get("/governance/proposals/{proposal_id}", response_model=m.ProposalPublic)
def get_proposal(proposal_id: ProposalId, principal: GovernanceReader, ledger: LedgerDep) -> m.ProposalPublic:
    return ledger.proposal(proposal_id, viewer=principal)


@router.post("/governance/proposals/{proposal_id}/approve", response_model=m.Written[m.ProposalPublic])
def approve_proposal(
    proposal_id: ProposalId, principal: GovernorPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.ProposalPublic]:
    return ledger.approve_proposal(principal=principal, proposal_id=proposal_id)


@router.post("/governance/proposals/{proposal_id}/execute", response_model=m.Written[m.ProposalPublic])
def execute_proposal(
    proposal_id: ProposalId, principal: GovernorPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.ProposalPublic]:
    """Carry out a proposal whose standing approvals reach the threshold (409 PROPOSAL_BELOW_THRESHOLD
    otherwise); needed only when it did not take effect with its last approval."""
    return ledger.execute_proposal(principal=principal, proposal_id=proposal_id)


@router.post("/governance/proposals/{proposal_id}/cancel", response_model=m.Written[m.ProposalPublic])
def cancel_proposal(
    proposal_id: ProposalId, principal: GovernorPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.ProposalPublic]:
    """Withdraw a proposal before it takes effect: its proposer only (403 NOT_PROPOSER otherwise)."""
    return ledger.cancel_proposal(principal=principal, proposal_id=proposal_id)
