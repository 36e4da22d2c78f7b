"""Concluded agreements: look-up, and the provider's suspend / reinstate / revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import models as m
from api.deps import DepartmentPrincipal, ExchangeReader, IdempotencyKey, LedgerDep, ListLimit

router = APIRouter(prefix="/agreements", tags=["agreements"])
AgreementId = Annotated[int, Path(ge=1, le=2**64 - 1)]


@router.get("", response_model=list[m.AgreementPublic])
def list_agreements(
    principal: ExchangeReader, ledger: LedgerDep, limit: ListLimit = 100
) -> list[m.AgreementPublic]:
    return ledger.agreements(principal=principal, limit=limit)


@router.get("/{agreement_id}", response_model=m.AgreementPublic)
def get_agreement(
    agreement_id: AgreementId, principal: ExchangeReader, ledger: LedgerDep
) -> m.AgreementPublic:
    return ledger.agreement(agreement_id, principal=principal)


def _change(fn: str):  # type: ignore[no-untyped-def]
    def route(
        agreement_id: AgreementId,
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
