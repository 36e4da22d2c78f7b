"""Agreements signed by both departments (EIP-712, checked on chain) and the grants issued under them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address

from node.chain import LedgerClient
from node.types import AgreementStatus, GovernanceAction, RequestStatus, ShareType
from tests.contracts.conftest import DAY, Consortium, Dept, names, reverts
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


#: The order of secp256k1's group: (r, n - s) with the other v verifies as (r, s) does.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _malformed(signature: bytes, form: str) -> bytes:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    if form == "high-s":  # the malleated twin of a valid signature
        return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    if form == "compact":  # EIP-2098: v folded into the top bit of s, 64 bytes
        return r + ((v - 27) << 255 | s).to_bytes(32, "big")
    if form == "v-0-or-1":
        return r + s.to_bytes(32, "big") + bytes([v - 27])
    if form == "zeros":  # ecrecover's zero address
        return bytes(65)
    return b""


@pytest.mark.parametrize("form", ["high-s", "compact", "v-0-or-1", "zeros", "empty"])
def test_concludeAgreement_malformedSignature_reverts(ledger: Consortium, approved: int, form: str) -> None:
    """Only the one canonical 65-byte form of the provider's own signature is taken: not its malleated
    twin, not its compact form, nothing that recovers to the zero address, nothing empty."""
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    p_sig, c_sig = ledger.signatures(terms, psb, hrss)
    with reverts("AgreementInvalidSignature", departmentId=psb.id):
        ledger.send(ledger.outsider, "concludeAgreement", terms.as_tuple(), _malformed(p_sig, form), c_sig)
    assert ledger.call("request", approved)[3] == RequestStatus.APPROVED


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
    changes: dict[str, Any] = {
        "valid_until": terms.valid_until + 1,
        "scope_hash": b"\1" * 32,
        "purpose_hash": b"\2" * 32,
        "consumer": ledger.depts["CIVIL"].id,
    }
    terms = dataclasses.replace(terms, **{field: changes[field]})
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
    with reverts("AgreementKeyEpochMismatch", departmentId=psb.id, signedEpoch=0, currentEpoch=1):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)
    # The same signatures over terms naming the new epoch are still the old key's: refused.
    current = ledger.terms(approved)
    with reverts("AgreementInvalidSignature", departmentId=psb.id):
        ledger.send(hrss, "concludeAgreement", current.as_tuple(), *ledger.signatures(current, psb, hrss))


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


def test_reinstateAgreement_governanceSuspension_onlyGovernanceLifts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    ledger.govern(GovernanceAction.SUSPEND_AGREEMENT, abi_encode(["uint64"], [aid]))
    with reverts("AgreementSuspendedByGovernance", agreementId=aid):
        ledger.send(psb, "reinstateAgreement", aid)
    assert ledger.call("agreement", aid)[4] == AgreementStatus.SUSPENDED
    lifted = ledger.govern(GovernanceAction.REINSTATE_AGREEMENT, abi_encode(["uint64"], [aid]))
    assert names(lifted) == ["ProposalApproved", "ProposalExecuted", "AgreementReinstated"]
    assert lifted.event("AgreementReinstated").args["by"] == ledger.governors[1].address
    assert ledger.call("agreement", aid)[4] == AgreementStatus.ACTIVE
    # Lifted, the provider's own suspension is the provider's again.
    ledger.send(psb, "suspendAgreement", aid)
    assert names(ledger.send(psb, "reinstateAgreement", aid)) == ["AgreementReinstated"]


def test_reinstateAgreement_providersOwnSuspension_notLiftedByGovernance(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    ledger.send(psb, "suspendAgreement", aid)
    with reverts("AgreementStatusMismatch", agreementId=aid, status=AgreementStatus.SUSPENDED):
        ledger.govern(GovernanceAction.REINSTATE_AGREEMENT, abi_encode(["uint64"], [aid]))
    # Governance may take the provider's suspension over; then the provider can no longer lift it.
    taken = ledger.govern(GovernanceAction.SUSPEND_AGREEMENT, abi_encode(["uint64"], [aid]))
    assert names(taken)[-1] == "AgreementSuspended"
    with reverts("AgreementSuspendedByGovernance", agreementId=aid):
        ledger.send(psb, "reinstateAgreement", aid)
    with reverts("AgreementStatusMismatch", agreementId=aid, status=AgreementStatus.SUSPENDED):
        ledger.govern(GovernanceAction.SUSPEND_AGREEMENT, abi_encode(["uint64"], [aid]))


def _advance(ledger: Consortium, seconds: int) -> None:
    """Moves the node's clock forward and mines a block at the new time (no waiting)."""
    ledger.client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    ledger.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _reclassify(ledger: Consortium, owner: Dept, resource_id: int, share: ShareType, **change: Any) -> None:
    _owner, _share, sensitivity, meta, schema = ledger.call("resource", resource_id)
    ledger.send(
        owner,
        "updateResource",
        resource_id,
        change.get("metadata", meta),
        change.get("schema", schema),
        share,
        change.get("sensitivity", sensitivity),
    )


def test_approveRequest_resourceNowNotShared_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb)
    req = ledger.request(hrss, rid)
    _reclassify(ledger, psb, rid, ShareType.NOT_SHARED)
    with reverts("RequestResourceNotShared", resourceId=rid):
        ledger.send(psb, "approveRequest", req)
    assert ledger.call("request", req)[3] == RequestStatus.PENDING


def test_concludeAgreement_resourceNowNotShared_reverts(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.call("request", approved)[0]
    _reclassify(ledger, psb, rid, ShareType.NOT_SHARED)
    terms = ledger.terms(approved)
    with reverts("RequestResourceNotShared", resourceId=rid):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))


def test_issueGrant_resourceNowNotShared_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    rid = ledger.call("agreement", aid)[1]
    _reclassify(ledger, psb, rid, ShareType.NOT_SHARED)
    with reverts("RequestResourceNotShared", resourceId=rid):
        ledger.send(psb, "issueGrant", aid, ledger.now() + 3600)


def test_recordDelivery_resourceNowNotShared_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    gid = ledger.grant(psb, aid)
    rid = ledger.call("agreement", aid)[1]
    _reclassify(ledger, psb, rid, ShareType.NOT_SHARED)
    with reverts("RequestResourceNotShared", resourceId=rid):
        ledger.deliver(psb, gid)
    # Shared again, the same grant delivers.
    _reclassify(ledger, psb, rid, ShareType.CONDITIONAL)
    assert names(ledger.deliver(psb, gid)[1]) == ["DeliveryRecorded"]


def test_concludeAgreement_approvalOnArrivalLapsedWhenConditional_needsDecision(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb, ShareType.UNCONDITIONAL)
    req = ledger.request(hrss, rid)
    assert ledger.call("request", req)[3] == RequestStatus.APPROVED
    _reclassify(ledger, psb, rid, ShareType.CONDITIONAL)
    assert ledger.call("request", req)[3] == RequestStatus.PENDING
    terms = ledger.terms(req)
    sigs = ledger.signatures(terms, psb, hrss)
    with reverts(
        "RequestStatusMismatch", requestId=req, status=RequestStatus.PENDING, expected=RequestStatus.APPROVED
    ):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)
    decided = ledger.send(psb, "approveRequest", req)
    assert (
        names(decided) == ["RequestApproved"] and decided.event("RequestApproved").args["automatic"] is False
    )
    _reclassify(ledger, psb, rid, ShareType.UNCONDITIONAL)
    _reclassify(ledger, psb, rid, ShareType.CONDITIONAL)  # a decided approval does not lapse
    assert ledger.call("request", req)[3] == RequestStatus.APPROVED
    assert names(ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)) == ["AgreementConcluded"]


@pytest.mark.parametrize("who", ["HRSS", "PSB"])
def test_withdrawRequest_approvedRequest_cannotConclude(ledger: Consortium, approved: int, who: str) -> None:
    psb, hrss, civil = (ledger.depts[c] for c in ("PSB", "HRSS", "CIVIL"))
    with reverts("SharingNotAParty", departmentId=civil.id, expectedDepartmentId=hrss.id):
        ledger.send(civil, "withdrawRequest", approved)
    withdrawn = ledger.send(ledger.depts[who], "withdrawRequest", approved)
    assert names(withdrawn) == ["RequestWithdrawn"]
    assert withdrawn.event("RequestWithdrawn").args["by"] == ledger.depts[who].id
    assert ledger.call("request", approved)[3] == RequestStatus.WITHDRAWN
    terms = ledger.terms(approved)
    with reverts("RequestStatusMismatch", status=RequestStatus.WITHDRAWN, expected=RequestStatus.APPROVED):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))
    with reverts("RequestStatusMismatch", status=RequestStatus.WITHDRAWN, expected=RequestStatus.APPROVED):
        ledger.send(hrss, "withdrawRequest", approved)


def test_concludeAgreement_validityEnded_reverts(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb, ShareType.UNCONDITIONAL)
    now = ledger.now()
    result = ledger.send(hrss, "requestAccess", rid, "short", b"\1" * 32, b"\2" * 32, now, now + 600)
    req = result.event("AccessRequested").args["requestId"]
    _advance(ledger, 601)
    terms = ledger.terms(req)  # deadline a day from the new now: only the validity has ended
    with reverts("RequestInvalidPeriod", validFrom=now, validUntil=now + 600):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *ledger.signatures(terms, psb, hrss))
    assert ledger.call("counts")[1] == 0


@pytest.mark.parametrize(
    "change",
    [{"metadata": b"\x33" * 32}, {"schema": b"\x44" * 32}, {"sensitivity": 4}],
    ids=["metadata", "schema", "sensitivity"],
)
def test_concludeAgreement_catalogEntryChangedSinceSigning_reverts(
    ledger: Consortium, approved: int, change: dict[str, Any]
) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    sigs = ledger.signatures(terms, psb, hrss)
    _reclassify(ledger, psb, terms.resource_id, ShareType.CONDITIONAL, **change)
    with reverts("AgreementCatalogChanged", resourceId=terms.resource_id):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)


def test_concludeAgreement_rekeyedAwayAndBack_oldSignatureRejected(ledger: Consortium, approved: int) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    terms = ledger.terms(approved)
    sigs = ledger.signatures(terms, psb, hrss)
    for signer in (Account.create().address, psb.account.address):  # A -> B -> A
        ledger.govern(
            GovernanceAction.REKEY_DEPARTMENT,
            abi_encode(["uint32", "address", "bytes32"], [psb.id, signer, b"\x01" * 32]),
        )
    assert ledger.call("department", psb.id)[5] == 2
    with reverts("AgreementKeyEpochMismatch", departmentId=psb.id, signedEpoch=0, currentEpoch=2):
        ledger.send(hrss, "concludeAgreement", terms.as_tuple(), *sigs)
    current = ledger.terms(approved)
    assert current.provider_key_epoch == 2
    concluded = ledger.send(
        hrss, "concludeAgreement", current.as_tuple(), *ledger.signatures(current, psb, hrss)
    )
    assert names(concluded) == ["AgreementConcluded"]


def test_grant_agreementRevoked_readsRevoked(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    gid = ledger.grant(psb, aid)
    assert ledger.call("grant", gid)[4] is False
    ledger.send(psb, "revokeAgreement", aid)
    assert ledger.call("grant", gid)[4] is True
    with reverts("GrantAlreadyRevoked", grantId=gid):
        ledger.send(psb, "revokeGrant", gid)


def test_revokeGrant_suspendedProvider_revokesItsOwn(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    aid = ledger.agreement(psb, hrss)
    kept, withdrawn = ledger.grant(psb, aid), ledger.grant(psb, aid)
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(psb.id))
    revoked = ledger.send(psb, "revokeGrant", withdrawn)
    assert names(revoked) == ["GrantRevoked"]
    assert revoked.event("GrantRevoked").args["provider"] == psb.id
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "revokeGrant", kept)
    with reverts("DepartmentNotActive", departmentId=psb.id):
        ledger.send(psb, "issueGrant", aid, ledger.now() + 60)
    ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, uint(psb.id))
    # On reinstatement the grant it kept works again; the one it revoked while suspended stays revoked.
    assert names(ledger.deliver(psb, kept)[1]) == ["DeliveryRecorded"]
    with reverts("GrantAlreadyRevoked", grantId=withdrawn):
        ledger.deliver(psb, withdrawn)


def test_suspendAndRevokeAgreement_suspendedProvider_withdrawsAccessButCannotRestoreIt(
    ledger: Consortium,
) -> None:
    """Withdrawing access is always the provider's own to do, suspended or not; giving it back is not, while
    the provider is suspended; the consumer can do neither."""
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    paused, ended = ledger.agreement(psb, hrss), ledger.agreement(psb, hrss)
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(psb.id))
    for fn in ("suspendAgreement", "revokeAgreement"):
        with reverts("DepartmentUnauthorized", account=hrss.account.address):
            ledger.send(hrss, fn, paused)
    suspended = ledger.send(psb, "suspendAgreement", paused)
    assert names(suspended) == ["AgreementSuspended"]
    revoked = ledger.send(psb, "revokeAgreement", ended)
    assert names(revoked) == ["AgreementRevoked"]
    assert (ledger.call("agreement", paused)[4], ledger.call("agreement", ended)[4]) == (
        AgreementStatus.SUSPENDED,
        AgreementStatus.REVOKED,
    )
    with reverts("DepartmentNotActive", departmentId=psb.id):
        ledger.send(psb, "reinstateAgreement", paused)
    ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, uint(psb.id))
    assert names(ledger.send(psb, "reinstateAgreement", paused)) == ["AgreementReinstated"]


#: Runtime code of a contract wallet that answers ERC-1271's magic value to any signature: the worst case of a
#: contract signer, which decides alone what "the department signed".
_YES_WALLET_RUNTIME = bytes.fromhex("631626ba7e60e01b60005260206000f3")


def _deploy_yes_wallet(ledger: Consortium) -> str:
    init = bytes.fromhex("6010600c60003960106000f3") + _YES_WALLET_RUNTIME
    deployed = LedgerClient(ledger.client.endpoint, []).deploy(ledger.outsider, "0x" + init.hex())
    assert deployed.contract_address is not None
    assert (
        ledger.client.w3.eth.get_code(to_checksum_address(deployed.contract_address)) == _YES_WALLET_RUNTIME
    )
    return str(deployed.contract_address)


@pytest.mark.parametrize("contract_signer", [False, True])
def test_concludeAgreement_contractSigner_onlyWhenChosenAtAdmission(
    ledger: Consortium, contract_signer: bool
) -> None:
    hrss = ledger.depts["HRSS"]
    dept = ledger.admit("WALLET", contract_signer=contract_signer)
    approved_req = ledger.request(hrss, ledger.resource(dept))
    ledger.send(dept, "approveRequest", approved_req)
    wallet = _deploy_yes_wallet(ledger)
    ledger.govern(
        GovernanceAction.REKEY_DEPARTMENT,
        abi_encode(["uint32", "address", "bytes32"], [dept.id, wallet, b"\x06" * 32]),
    )
    assert ledger.call("department", dept.id)[6] is contract_signer
    terms = ledger.terms(approved_req)
    anything = b"\x01" * 65  # the wallet accepts any bytes
    if contract_signer:
        result = ledger.send(
            hrss, "concludeAgreement", terms.as_tuple(), anything, ledger.sign(hrss.account, terms)
        )
        assert names(result) == ["AgreementConcluded"]
    else:
        with reverts("AgreementInvalidSignature", departmentId=dept.id):
            ledger.send(
                hrss, "concludeAgreement", terms.as_tuple(), anything, ledger.sign(hrss.account, terms)
            )
