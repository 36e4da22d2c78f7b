"""The data catalog and requests: share types, ownership, decisions and their recorded times."""

from __future__ import annotations

import os

import pytest
from eth_abi.abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.exceptions import ContractLogicError

from node.chain import TxResult
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


def _request_raw_purpose(ledger: Consortium, resource_id: int, purpose: bytes) -> TxResult:
    """HRSS's requestAccess sent straight to the ledger with ``purpose`` as raw bytes: a client encoding a
    Python ``str`` cannot send bytes that are not UTF-8, a department holding its key can."""
    client, sender, now = ledger.client, ledger.depts["HRSS"].account, ledger.now()
    selector = Web3.keccak(text="requestAccess(uint64,string,bytes32,bytes32,uint64,uint64)")[:4]
    types = ["uint64", "bytes", "bytes32", "bytes32", "uint64", "uint64"]  # a string is encoded as bytes are
    args = [resource_id, purpose, SCOPE, TERMS_DOC, now, now + 30 * DAY]
    data = "0x" + (selector + abi_encode(types, args)).hex()
    request = {
        "from": sender.address,
        "to": client.address,
        "data": data,
        "value": 0,
        "chainId": client.chain_id,
    }
    request["gas"] = client.estimate_gas(request)
    request.update(client.fee_fields())
    return client.wait(client.submit(sender, request))


@pytest.mark.parametrize(
    "purpose",
    [b"\xff", b"benefit checks \xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
     b"\xf5\x80\x80\x80", b"\xe4\xb8", b"\x80", "低保".encode() + b"\xe4"],
    ids=["ff", "ascii-then-fe", "overlong-2", "overlong-3", "surrogate", "past-10ffff", "f5", "truncated",
         "lone-continuation", "cjk-then-truncated"],
)  # fmt: skip
def test_requestAccess_purposeNotUtf8_reverts(ledger: Consortium, purpose: bytes) -> None:
    """A purpose that is not UTF-8 text states none. Taken, its AccessRequested log decoded in no strict
    reader of the ledger's logs: the sender's own client failed on the receipt of its transaction, and so
    did the audit index's log decoder on the block."""
    rid = ledger.resource(ledger.depts["PSB"])
    with reverts("RequestPurposeRequired"):
        _request_raw_purpose(ledger, rid, purpose)


@pytest.mark.parametrize(
    "purpose", ["低保对象户籍核查", "check 😀 ok", "x" * 200, "a\x00b", "\u07ff\uffff\U0010ffff"]
)
def test_requestAccess_utf8Purpose_taken(ledger: Consortium, purpose: str) -> None:
    rid = ledger.resource(ledger.depts["PSB"])
    result = _request_raw_purpose(ledger, rid, purpose.encode())
    assert result.event("AccessRequested").args["purpose"] == purpose


@pytest.fixture
def psb_resource(ledger: Consortium) -> int:
    """A resource of PSB's, registered once for all the examples of a property test (a transaction each was
    most of the test's CPU)."""
    return ledger.resource(ledger.depts["PSB"])


#: Strings around every boundary of UTF-8's table: ASCII words, each lead byte class, each second-byte range.
_UTF8_BOUNDARIES = bytes.fromhex("7f808f909fa0bfc1c2dfe0e1ecedeeeff0f1f3f4f5ff")
_UTF8_PIECES = st.sampled_from([b"a", b"x" * 31, *(bytes([c]) for c in _UTF8_BOUNDARIES)])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    purpose=st.one_of(
        st.lists(_UTF8_PIECES, min_size=1, max_size=12).map(b"".join),
        st.text(min_size=1, max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(min_size=1, max_size=70),
    )
)
def test_requestAccess_purpose_takenExactlyWhenPythonDecodesIt(
    ledger: Consortium, psb_resource: int, purpose: bytes
) -> None:
    """The contract's UTF-8 check and Python's strict decoder agree on every purpose (read with eth_call: one
    resource serves every example, nothing is written)."""
    try:
        purpose.decode("utf-8")
        text = True
    except UnicodeDecodeError:
        text = False
    client, now = ledger.client, ledger.now()
    selector = Web3.keccak(text="requestAccess(uint64,string,bytes32,bytes32,uint64,uint64)")[:4]
    types = ["uint64", "bytes", "bytes32", "bytes32", "uint64", "uint64"]
    args = [psb_resource, purpose, SCOPE, TERMS_DOC, now, now + 30 * DAY]
    call = {"from": ledger.depts["HRSS"].account.address, "to": client.address,
            "data": "0x" + (selector + abi_encode(types, args)).hex()}  # fmt: skip
    try:
        client.w3.eth.call(call)  # type: ignore[arg-type]
        taken = True
    except ContractLogicError as exc:
        assert str(exc.data).startswith("0x" + Web3.keccak(text="RequestPurposeRequired()")[:4].hex()), exc
        taken = False
    assert taken == text, purpose


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
