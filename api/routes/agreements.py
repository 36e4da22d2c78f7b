"""Concluded agreements: look-up, and the provider's suspend / reinstate / revoke."""

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

router = APIRouter(prefix="/agreements", tags=["agreements"])


@router.get("", response_model=list[m.AgreementPublic])
def list_agreements(
    request: Request,
    response: Response,
    principal: ExchangeReader,
    ledger: LedgerDep,
    index: AuditDep,
    page: ListPageDep,
    resource_id: IdFilter = None,
    provider: ProviderFilter = None,
    consumer: ConsumerFilter = None,
) -> list[m.AgreementPublic]:
    """Agreements newest first, from the audit index (a department: those it is party to). The next page is
    the ``Link: <…>; rel="next"`` header; ``X-Indexed-Block`` says how far the index reached; pass
    ``min_block`` (a write's ``block_number``) to list what that write did (the index follows the chain a
    moment behind, ``DXL_AUDIT_FOLLOW_INTERVAL``)."""
    flt = ListFilter(provider=provider, consumer=consumer, resource=resource_id)
    listed = ledger.agreements(principal=principal, index=index, flt=flt, page=page)
    page_headers(request, response, listed)
    return listed.items


@router.get("/{agreement_id}", response_model=m.AgreementPublic)
def get_agreement(agreement_id: IdPath, principal: ExchangeReader, ledger: LedgerDep) -> m.AgreementPublic:
    return ledger.agreement(agreement_id, principal=principal)


def _change(fn: str):  # type: ignore[no-untyped-def]
    def route(
        agreement_id: IdPath,
        principal: DepartmentPrincipal,
        ledger: LedgerDep,
        _key: IdempotencyKey = None,
    ) -> m.Written[m.AgreementPublic]:
        return ledger.change_agreement(principal=principal, agreement_id=agreement_id, fn=fn)

    return route


for _verb, _fn in (
    ("suspend", "suspendAgreement"),
    ("reinstate", "reinstateAgreement"),
    ("revoke", "revokeAgreement"),
):
    router.add_api_route(
        f"/{{agreement_id}}/{_verb}",
        _change(_fn),
        methods=["POST"],
        response_model=m.Written[m.AgreementPublic],
        name=f"{_verb}_agreement",
        summary=f"{_verb.capitalize()} an agreement (its provider)",
    )
