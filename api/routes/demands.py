"""Demand lists: a department publishes what data it needs; the addressed department answers with a
catalogued resource or declines with a reason code (a demand addressed to no one is answered with a resource
only); the publisher rejects a resource answer that does not meet the demand, or withdraws a demand still
unanswered. Every member reads the demand lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api import models as m
from api.deps import (
    CHAIN_BLOCK_RESPONSE,
    AddresseeFilter,
    ChainListPageDep,
    CurrentPrincipal,
    DepartmentPrincipal,
    IdempotencyKey,
    IdPath,
    LedgerDep,
    PublisherFilter,
    chain_block_header,
    page_headers,
)
from api.routes.audit import AuditDep

router = APIRouter(prefix="/demands", tags=["demands"])


@router.get("", response_model=list[m.DemandPublic])
def list_demands(
    request: Request,
    response: Response,
    _principal: CurrentPrincipal,
    ledger: LedgerDep,
    index: AuditDep,
    page: ChainListPageDep,
    publisher: PublisherFilter = None,
    addressee: AddresseeFilter = None,
    open_only: Annotated[bool, Query(alias="open", description="only demands not answered yet")] = False,
) -> list[m.DemandPublic]:
    """The demand lists, newest first: each demand with its document and ``verified`` (the stored document
    hashes to the chain's text hash), and its answer once given. Read from the audit index, brought up to
    the chain's head first (``X-Indexed-Block`` names that block). The next page is the
    ``Link: <…>; rel="next"`` header."""
    listed = ledger.practice_service().demands(
        index=index, page=page, publisher=publisher, addressee=addressee, open_only=open_only
    )
    page_headers(request, response, listed)
    return listed.items


@router.post("", response_model=m.Written[m.DemandPublic], status_code=201)
def publish_demand(
    body: m.DemandCreate, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.DemandPublic]:
    return ledger.practice_service().publish(ledger, principal=principal, body=body)


@router.get("/{demand_id}", response_model=m.DemandPublic, responses=CHAIN_BLOCK_RESPONSE)
def get_demand(
    demand_id: IdPath, response: Response, _principal: CurrentPrincipal, ledger: LedgerDep
) -> m.DemandPublic:
    """The demand as the contract's view answers it at one block, the node's head as the read began
    (``X-Chain-Block`` names it), overdue by that block's time."""
    read = ledger.practice_service().read_demand(demand_id)
    chain_block_header(response, read)
    return read.item


@router.post("/{demand_id}/answer", response_model=m.Written[m.DemandPublic])
def answer_demand(
    demand_id: IdPath,
    body: m.DemandAnswerCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.DemandPublic]:
    """The addressed department's answer: a resource catalogued after the demand (``new_resource``), one
    already catalogued (``existing_resource``), or ``declined`` with a reason. A demand addressed to no one is
    answered with a resource by any department but its publisher, and declined by none (422
    ``DECLINE_NEEDS_ADDRESSEE``): a decline by a department never asked would close it unmet for good."""
    return ledger.practice_service().answer(ledger, principal=principal, demand_id=demand_id, body=body)


@router.post("/{demand_id}/reject", response_model=m.Written[m.DemandPublic])
def reject_demand_answer(
    demand_id: IdPath,
    body: m.DemandRejectionCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.DemandPublic]:
    """The publisher's rejection of the resource its demand was answered with, as not meeting the demand,
    with a reason and an optional note: the demand waits for an answer again (for a demand addressed to no
    one, from any department but the rejected answerer: 409 ``ANSWERER_REJECTED``), the rejection shows in
    its ``rejections``, and the rejected answer never counts as meeting it. Only the publisher (403
    ``NOT_A_PARTY``); only an answer with a resource (409 ``ANSWER_NOT_REJECTABLE``: a decline claims
    none)."""
    return ledger.practice_service().reject(ledger, principal=principal, demand_id=demand_id, body=body)


@router.post("/{demand_id}/withdraw", response_model=m.Written[m.DemandPublic])
def withdraw_demand(
    demand_id: IdPath, principal: DepartmentPrincipal, ledger: LedgerDep, _key: IdempotencyKey = None
) -> m.Written[m.DemandPublic]:
    """The publisher withdraws its demand, unanswered (409 ``DEMAND_ALREADY_ANSWERED`` otherwise: a resource
    that does not meet it is rejected first): it takes no answer any more (409 ``DEMAND_WITHDRAWN``) and no
    scorecard counts it against its addressee, unmet or overdue."""
    return ledger.practice_service().withdraw(ledger, principal=principal, demand_id=demand_id)
