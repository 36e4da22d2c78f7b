"""Agreements signed by both departments (EIP-712, checked on chain) and the grants issued under them."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account

from node.types import AgreementStatus, GovernanceAction, RequestStatus, ShareType
from tests.contracts.conftest import DAY, Consortium, names, reverts
from tests.contracts.test_department_registry import uint


@pytest.fixture
def approved(ledger: Consortium) -> int:
    """An approved request of HRSS for a conditional PSB resource."""
    req = ledger.request(ledger.depts["HRSS"], ledger.resource(ledger.depts["PSB"]))
    ledger.send(ledger.depts["PSB"], "approveRequest", req)
    return req


def test_concludeAgreement_bothSignatures_activatesAgreement(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    p_sig, c_sig = ledger.signatures(terms, psb, hrss)
    # Anyone may relay the signed terms: the signatures are the authorisation.
    result = ledger.send(ledger.outsider, "concludeAgreement", terms.as_tuple(), p_sig, c_sig)
    assert names(result) == ["AgreementConcluded"]
    ev = result.event("AgreementConcluded").args
    digest = ledger.call("termsDigest", terms.as_tuple())
    assert (ev["requestId"], ev["provider"], ev["consumer"], ev["termsDigest"]) == (
        approved,
        psb.id,
        hrss.id,
        digest,
    )
    assert (ev["providerSignature"], ev["consumerSignature"]) == (p_sig, c_sig)
    a = ledger.call("agreement", ev["agreementId"])
    assert a[4] == AgreementStatus.ACTIVE and a[7] == digest
    assert ledger.call("request", approved)[3] == RequestStatus.CONCLUDED


def test_concludeAgreement_unconditionalResource_needsNoDecisionButIsRecorded(ledger: Consortium) -> None:
    agreement_id = ledger.agreement(ledger.depts["PSB"], ledger.depts["HRSS"], ShareType.UNCONDITIONAL)
    assert ledger.call("agreement", agreement_id)[4] == AgreementStatus.ACTIVE


@pytest.mark.parametrize("who", ["provider", "consumer"])
def test_concludeAgreement_wrongSigner_reverts(ledger: Consortium, approved: int, who: str) -> None:
    psb, hrss, civil = (ledger.depts[c] for c in ("PSB", "HRSS", "CIVIL"))
    terms = ledger.terms(approved)
    p_sig = ledger.sign(civil.account if who == "provider" else psb.account, terms)
    c_sig = ledger.sign(civil.account if who == "consumer" else hrss.account, terms)
    with reverts("AgreementInvalidSignature", departmentId=psb.id if who == "provider" else hrss.id):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), p_sig, c_sig)


def test_concludeAgreement_replayedSignatures_revert(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    sigs = ledger.signatures(terms, psb, hrss)
    ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)
    with reverts("RequestStatusMismatch", requestId=approved, status=RequestStatus.CONCLUDED):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)


@pytest.mark.parametrize("domain", ["chain", "contract"])
def test_concludeAgreement_signatureForOtherDomain_reverts(
    ledger: Consortium, approved: int, domain: str
) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    other = (
        {"chain_id": ledger.client.chain_id + 1}
        if domain == "chain"
        else {"contract": Account.create().address}
    )
    with reverts("AgreementInvalidSignature", departmentId=psb.id):
        ledger.send(
            hrss,
            "concludeAgreement",
            terms.as_tuple(),
            ledger.sign(psb.account, terms, **other),
            ledger.sign(hrss.account, terms),
        )


def test_concludeAgreement_expiredDeadline_reverts(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    deadline = ledger.now() - 1
    terms = ledger.terms(approved, deadline=deadline)
    with reverts("AgreementSignatureExpired", deadline=deadline):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))


@pytest.mark.parametrize("field", ["valid_until", "scope_hash", "purpose_hash", "consumer"])
def test_concludeAgreement_termsDifferFromRequest_revert(
    ledger: Consortium, approved: int, field: str
) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    changed = {
        "valid_until": terms.valid_until + 1,
        "scope_hash": b"\1" * 32,
        "purpose_hash": b"\2" * 32,
        "consumer": ledger.depts["CIVIL"].id,
    }[field]
    terms = dataclasses.replace(terms, **{field: changed})
    with reverts("AgreementTermsMismatch", requestId=approved):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))


def test_concludeAgreement_pendingRequest_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    req = ledger.request(hrss, ledger.resource(psb))
    terms = ledger.terms(req)
    with reverts("RequestStatusMismatch", status=RequestStatus.PENDING, expected=RequestStatus.APPROVED):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))


def test_concludeAgreement_suspendedConsumer_reverts(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    sigs = ledger.signatures(terms, psb, hrss)
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(hrss.id))
    with reverts("DepartmentNotActive", departmentId=hrss.id):
        ledger.send(psb, "concludeAgreement", terms.as_tuple(), *sigs)


def test_concludeAgreement_signerRekeyed_oldSignatureRejected(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    sigs = ledger.signatures(terms, psb, hrss)
    ledger.govern(
        GovernanceAction.REKEY_DEPARTMENT,
        abi_encode(["uint32", "address", "bytes32"], [psb.id, Account.create().address, b"\x01" * 32]),
    )
    with reverts("AgreementInvalidSignature", departmentId=psb.id):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)


def test_agreementLifecycle_suspendReinstateRevoke(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "suspendAgreement", aid)
    assert names(ledger.send(psb, "suspendAgreement", aid)) == ["AgreementSuspended"]
    with reverts("AgreementStatusMismatch", agreementId=aid, status=AgreementStatus.SUSPENDED):
        ledger.send(psb, "suspendAgreement", aid)
    assert names(ledger.send(psb, "reinstateAgreement", aid)) == ["AgreementReinstated"]
    with reverts("AgreementStatusMismatch", status=AgreementStatus.ACTIVE):
        ledger.send(psb, "reinstateAgreement", aid)
    assert names(ledger.send(psb, "revokeAgreement", aid)) == ["AgreementRevoked"]
    with reverts("AgreementStatusMismatch", status=AgreementStatus.REVOKED):
        ledger.send(psb, "revokeAgreement", aid)
    with reverts("AgreementUnknown", agreementId=99):
        ledger.send(psb, "revokeAgreement", 99)


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (GovernanceAction.SUSPEND_AGREEMENT, AgreementStatus.SUSPENDED),
        (GovernanceAction.REVOKE_AGREEMENT, AgreementStatus.REVOKED),
    ],
)
def test_governance_suspendsOrRevokesAgreement(
    ledger: Consortium, action: GovernanceAction, status: int
) -> None:
    aid = ledger.agreement(ledger.depts["PSB"], ledger.depts["HRSS"])
    result = ledger.govern(action, abi_encode(["uint64"], [aid]))
    assert names(result)[-1] in ("AgreementSuspended", "AgreementRevoked")
    assert result.events[-1].args["by"] == ledger.governors[1].address
    assert ledger.call("agreement", aid)[4] == status


def test_issueGrant_underActiveAgreement(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    expires = ledger.now() + 3600
    result = ledger.send(psb, "issueGrant", aid, expires)
    ev = result.event("GrantIssued").args
    assert (ev["agreementId"], ev["consumer"], ev["provider"], ev["expiresAt"]) == (
        aid,
        hrss.id,
        psb.id,
        expires,
    )
    assert list(ledger.call("grant", ev["grantId"])) == [aid, psb.id, hrss.id, expires, False]


def test_issueGrant_invalidExpiry_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    until = ledger.call("agreement", aid)[6]
    with reverts("GrantInvalidExpiry", expiresAt=until + 1, agreementValidUntil=until):
        ledger.send(psb, "issueGrant", aid, until + 1)
    with reverts("GrantInvalidExpiry", expiresAt=1):
        ledger.send(psb, "issueGrant", aid, 1)


def test_issueGrant_byConsumer_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "issueGrant", aid, ledger.now() + 60)


def test_issueGrant_suspendedAgreement_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    ledger.send(psb, "suspendAgreement", aid)
    with reverts("AgreementStatusMismatch", agreementId=aid, status=AgreementStatus.SUSPENDED):
        ledger.send(psb, "issueGrant", aid, ledger.now() + 60)


def test_issueGrant_beforeValidity_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb, ShareType.UNCONDITIONAL)
    now = ledger.now()
    result = ledger.send(
        hrss, "requestAccess", rid, "later", b"\1" * 32, b"\2" * 32, now + 10 * DAY, now + 20 * DAY
    )
    aid = ledger.conclude(result.event("AccessRequested").args["requestId"], psb, hrss)
    with reverts("AgreementOutsideValidity", agreementId=aid, validFrom=now + 10 * DAY):
        ledger.send(psb, "issueGrant", aid, now + 11 * DAY)


def test_revokeGrant_onceByProvider(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    gid = ledger.grant(psb, ledger.agreement(psb, hrss))
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "revokeGrant", gid)
    assert ledger.send(psb, "revokeGrant", gid).event("GrantRevoked").args["grantId"] == gid
    assert ledger.call("grant", gid)[4] is True
    with reverts("GrantAlreadyRevoked", grantId=gid):
        ledger.send(psb, "revokeGrant", gid)
    with reverts("GrantUnknown", grantId=gid + 100):
        ledger.send(psb, "revokeGrant", gid + 100)
