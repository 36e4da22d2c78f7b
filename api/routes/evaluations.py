"""Mutual evaluation: after a delivery under an agreement (on the ledger, or receipts anchored in a batch),
each party scores the other once per period."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import models as m
from api.deps import (
    ChainListPageDep,
    DepartmentPrincipal,
    ExchangeReader,
    IdempotencyKey,
    IdPath,
    LedgerDep,
    StateDep,
    page_headers,
)
from api.receipts import ReceiptService
from api.routes.audit import AuditDep

router = APIRouter(prefix="/agreements", tags=["evaluations"])
#: Not under an agreement: the period is the contract's, the same for every agreement.
period_router = APIRouter(prefix="/evaluation-period", tags=["evaluations"])


@period_router.get("", response_model=m.EvaluationPeriodPublic)
def evaluation_period(_principal: ExchangeReader, ledger: LedgerDep) -> m.EvaluationPeriodPublic:
    """The evaluation period of the deployed practice contract: its length, and the current period (as
    ``period`` of an evaluation numbers it) with its bounds, by the chain's latest block time. A side of an
    agreement already scored in ``current`` is refused (409 ``ALREADY_SCORED``) until ``ends_at``."""
    return ledger.practice_service().evaluation_period()


@router.get("/{agreement_id}/evaluations", response_model=list[m.EvaluationPublic])
def list_evaluations(
    request: Request,
    response: Response,
    agreement_id: IdPath,
    principal: ExchangeReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ChainListPageDep,
) -> list[m.EvaluationPublic]:
    """The scores given under the agreement, in the order they were recorded (its parties and auditors).
    Read from the audit index, brought up to the chain's head first (``X-Indexed-Block`` names that block).
    The next page is the ``Link: <…>; rel="next"`` header."""
    agreement = ledger.agreement(agreement_id, principal=principal)  # parties and auditors only
    listed = ledger.practice_service().evaluations(agreement, index=index, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.post("/{agreement_id}/evaluations", response_model=m.Written[m.EvaluationPublic], status_code=201)
def evaluate(
    agreement_id: IdPath,
    body: m.EvaluationCreate,
    principal: DepartmentPrincipal,
    ledger: LedgerDep,
    state: StateDep,
    _key: IdempotencyKey = None,
) -> m.Written[m.EvaluationPublic]:
    """The consumer scores the provider (timeliness, completeness, accuracy) or the provider the consumer
    (purpose_compliance), 1-5, with an optional comment; once per evaluation period (``GET
    /evaluation-period``) and side.
    ``delivery_id`` is a delivery under the agreement: recorded on the ledger, or a receipt in an anchored
    batch (``POST /receipts``)."""
    receipts = state.extra.get("receipts")
    return ledger.practice_service().evaluate(
        ledger, principal=principal, agreement_id=agreement_id, body=body,
        receipts=receipts if isinstance(receipts, ReceiptService) else None,
    )  # fmt: skip
