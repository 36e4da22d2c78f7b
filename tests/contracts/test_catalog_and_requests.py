"""The data catalog and requests: share types, ownership, decisions and their recorded times."""

from __future__ import annotations

import os

import pytest

from node.types import GovernanceAction, RequestStatus, ShareType
from tests.contracts.conftest import DAY, SCOPE, TERMS_DOC, Consortium, names, reverts
from tests.contracts.test_department_registry import uint


def test_registerResource_recordsEntryAndEvent(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    meta, schema = os.urandom(32), os.urandom(32)
    result = ledger.send(psb, "registerResource", meta, schema, ShareType.NOT_SHARED, 4)
    ev = result.event("ResourceRegistered").args
    assert (ev["owner"], ev["shareType"], ev["sensitivity"], ev["metadataHash"], ev["schemaHash"]) == (
        psb.id,
        ShareType.NOT_SHARED,
        4,
        meta,
        schema,
    )
    assert list(ledger.call("resource", ev["resourceId"])) == [psb.id, ShareType.NOT_SHARED, 4, meta, schema]


def test_registerResource_byNonDepartment_reverts(ledger: Consortium) -> None:
    with reverts("DepartmentUnauthorized", account=ledger.outsider.address):
        ledger.send(ledger.outsider, "registerResource", os.urandom(32), os.urandom(32), 0, 0)


def test_registerResource_emptyMetadata_reverts(ledger: Consortium) -> None:
    with reverts("CatalogInvalidMetadata"):
        ledger.send(ledger.depts["PSB"], "registerResource", b"\0" * 32, os.urandom(32), 0, 0)


def test_updateResource_onlyByOwner(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb)
    with reverts("CatalogNotOwner", resourceId=rid, departmentId=hrss.id):
        ledger.send(hrss, "updateResource", rid, os.urandom(32), os.urandom(32), ShareType.UNCONDITIONAL, 1)
    meta = os.urandom(32)
    result = ledger.send(psb, "updateResource", rid, meta, b"\1" * 32, ShareType.UNCONDITIONAL, 1)
    assert names(result) == ["ResourceUpdated"]
    assert list(ledger.call("resource", rid))[1:4] == [ShareType.UNCONDITIONAL, 1, meta]
    with reverts("CatalogInvalidMetadata"):
        ledger.send(psb, "updateResource", rid, b"\0" * 32, b"\1" * 32, ShareType.UNCONDITIONAL, 1)


def test_resource_unknown_reverts(ledger: Consortium) -> None:
    with reverts("CatalogUnknownResource", resourceId=42):
        ledger.call("resource", 42)
    with reverts("CatalogUnknownResource", resourceId=42):
        ledger.send(ledger.depts["PSB"], "updateResource", 42, os.urandom(32), os.urandom(32), 0, 0)


def test_requestAccess_conditional_staysPendingUntilDecided(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb, ShareType.CONDITIONAL)
    now = ledger.now()
    result = ledger.send(hrss, "requestAccess", rid, "pension eligibility", SCOPE, TERMS_DOC, now, now + DAY)
    assert names(result) == ["AccessRequested"]
    ev = result.event("AccessRequested").args
    assert (ev["consumer"], ev["provider"], ev["purpose"]) == (hrss.id, psb.id, "pension eligibility")
    q = ledger.call("request", ev["requestId"])
    assert q[3] == RequestStatus.PENDING and q[4] > 0 and q[5] == 0

    decided = ledger.send(psb, "approveRequest", ev["requestId"])
    assert decided.event("RequestApproved").args["automatic"] is False
    q = ledger.call("request", ev["requestId"])
    assert q[3] == RequestStatus.APPROVED and q[5] >= q[4]


def test_requestAccess_unconditional_isApprovedOnArrival(ledger: Consortium) -> None:
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    rid = ledger.resource(psb, ShareType.UNCONDITIONAL)
    now = ledger.now()
    result = ledger.send(hrss, "requestAccess", rid, "address check", SCOPE, TERMS_DOC, now, now + DAY)
    assert names(result) == ["AccessRequested", "RequestApproved"]
    assert result.event("RequestApproved").args["automatic"] is True
    q = ledger.call("request", result.event("AccessRequested").args["requestId"])
    assert q[3] == RequestStatus.APPROVED and q[4] == q[5]


def test_requestAccess_notShared_reverts(ledger: Consortium) -> None:
    rid = ledger.resource(ledger.depts["PSB"], ShareType.NOT_SHARED)
    with reverts("RequestResourceNotShared", resourceId=rid):
        ledger.request(ledger.depts["HRSS"], rid)


def test_requestAccess_ownResource_reverts(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    rid = ledger.resource(psb)
    with reverts("RequestOwnResource", resourceId=rid):
        ledger.request(psb, rid)


def test_requestAccess_suspendedProvider_reverts(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    rid = ledger.resource(psb)
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(psb.id))
    with reverts("DepartmentNotActive", departmentId=psb.id):
        ledger.request(ledger.depts["HRSS"], rid)


def test_requestAccess_emptyPurpose_reverts(ledger: Consortium) -> None:
    rid = ledger.resource(ledger.depts["PSB"])
    with reverts("RequestPurposeRequired"):
        ledger.request(ledger.depts["HRSS"], rid, purpose="")


@pytest.mark.parametrize(("start", "end"), [(10, 10), (10, 5), (-100, -10)])
def test_requestAccess_badPeriod_reverts(ledger: Consortium, start: int, end: int) -> None:
    rid = ledger.resource(ledger.depts["PSB"])
    now = ledger.now()
    with reverts("RequestInvalidPeriod", validFrom=now + start, validUntil=now + end):
        ledger.send(ledger.depts["HRSS"], "requestAccess", rid, "p", SCOPE, TERMS_DOC, now + start, now + end)


def test_requestAccess_unknownResource_reverts(ledger: Consortium) -> None:
    with reverts("CatalogUnknownResource", resourceId=9):
        ledger.request(ledger.depts["HRSS"], 9)


def test_approveRequest_byNonProvider_reverts(ledger: Consortium) -> None:
    hrss = ledger.depts["HRSS"]
    req = ledger.request(hrss, ledger.resource(ledger.depts["PSB"]))
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "approveRequest", req)


def test_rejectRequest_recordsReasonAndBlocksApproval(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    req = ledger.request(ledger.depts["HRSS"], ledger.resource(psb))
    with reverts("RequestReasonRequired"):
        ledger.send(psb, "rejectRequest", req, 0)
    result = ledger.send(psb, "rejectRequest", req, 3)
    assert result.event("RequestRejected").args["reasonCode"] == 3
    q = ledger.call("request", req)
    assert q[3] == RequestStatus.REJECTED and q[6] == 3 and q[5] > 0
    with reverts(
        "RequestStatusMismatch", requestId=req, status=RequestStatus.REJECTED, expected=RequestStatus.PENDING
    ):
        ledger.send(psb, "approveRequest", req)


def test_approveRequest_twice_reverts(ledger: Consortium) -> None:
    psb = ledger.depts["PSB"]
    req = ledger.request(ledger.depts["HRSS"], ledger.resource(psb))
    ledger.send(psb, "approveRequest", req)
    with reverts("RequestStatusMismatch", status=RequestStatus.APPROVED):
        ledger.send(psb, "approveRequest", req)


def test_request_unknown_reverts(ledger: Consortium) -> None:
    with reverts("RequestUnknown", requestId=5):
        ledger.send(ledger.depts["PSB"], "approveRequest", 5)
