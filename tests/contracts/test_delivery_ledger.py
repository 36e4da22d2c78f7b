"""Delivery receipts: who may record, under which grant, and the consumer's acknowledgement or dispute."""

from __future__ import annotations

import os

import pytest

from node.types import DeliveryStatus, GovernanceAction, new_delivery_id
from tests.contracts.conftest import Consortium, Dept, names, receipt_of, reverts
from tests.contracts.test_department_registry import uint


@pytest.fixture
def parties(ledger: Consortium) -> tuple[Dept, Dept, int]:
    """PSB provides to HRSS under a fresh grant."""
    psb, hrss = ledger.depts["PSB"], ledger.depts["HRSS"]
    return psb, hrss, ledger.grant(psb, ledger.agreement(psb, hrss))


def test_recordDelivery_storesReceiptAndEmitsEveryField(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    did, commitment = new_delivery_id(psb.id), os.urandom(32)
    result = ledger.send(psb, "recordDelivery", did, gid, commitment, 2, 10_485_760, 52_000)
    assert names(result) == ["DeliveryRecorded"]
    ev = result.event("DeliveryRecorded").args
    assert (ev["deliveryId"], ev["grantId"], ev["commitment"], ev["provider"], ev["consumer"]) == (
        did,
        gid,
        commitment,
        psb.id,
        hrss.id,
    )
    assert (ev["hashAlgorithm"], ev["byteSize"], ev["recordCount"]) == (2, 10_485_760, 52_000)
    assert ev["recordedAt"] == ledger.client.w3.eth.get_block(result.block_number)["timestamp"]
    assert ledger.call("deliveryStatus", did) == DeliveryStatus.RECORDED
    receipt = receipt_of(result)
    assert ledger.call("receiptMatches", did, receipt) is True
    tampered = (*receipt[:3], os.urandom(32), *receipt[4:])
    assert ledger.call("receiptMatches", did, tampered) is False


def test_recordDelivery_duplicateId_reverts(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    psb, _, gid = parties
    did, _ = ledger.deliver(psb, gid)
    with reverts("DeliveryDuplicate", deliveryId=did):
        ledger.send(psb, "recordDelivery", did, gid, os.urandom(32), 1, 1, 1)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((b"\0" * 32, b"\1" * 32, 1), "deliveryId"),
        ((b"\1" * 32, b"\0" * 32, 1), "commitment"),
    ],
)
def test_recordDelivery_zeroField_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int], args: tuple[bytes, bytes, int], field: str
) -> None:
    psb, _, gid = parties
    did, commitment, alg = args
    with reverts("DeliveryInvalidField", field=field):
        ledger.send(psb, "recordDelivery", did, gid, commitment, alg, 1, 1)


def test_recordDelivery_revokedGrant_reverts(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    psb, _, gid = parties
    ledger.send(psb, "revokeGrant", gid)
    with reverts("GrantAlreadyRevoked", grantId=gid):
        ledger.deliver(psb, gid)


def test_recordDelivery_expiredGrant_reverts(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    psb, hrss, _ = parties
    gid = ledger.grant(psb, ledger.agreement(psb, hrss), seconds=2)
    expires = ledger.call("grant", gid)[3]
    # The node's clock moves past the expiry instead of the test waiting for it.
    w3 = ledger.client.w3
    w3.provider.make_request("evm_increaseTime", [expires - ledger.now() + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert ledger.now() > expires
    with reverts("GrantExpired", grantId=gid, expiredAt=expires):
        ledger.deliver(psb, gid)


def test_recordDelivery_unknownGrant_reverts(ledger: Consortium) -> None:
    with reverts("GrantUnknown", grantId=404):
        ledger.deliver(ledger.depts["PSB"], 404)


@pytest.mark.parametrize("action", [GovernanceAction.SUSPEND_AGREEMENT, GovernanceAction.REVOKE_AGREEMENT])
def test_recordDelivery_agreementNoLongerActive_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int], action: GovernanceAction
) -> None:
    psb, _, gid = parties
    aid = ledger.call("grant", gid)[0]
    ledger.govern(action, uint(aid))
    with reverts("AgreementStatusMismatch", agreementId=aid):
        ledger.deliver(psb, gid)


@pytest.mark.parametrize("suspended", ["PSB", "HRSS"])
def test_recordDelivery_suspendedParty_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int], suspended: str
) -> None:
    psb, _, gid = parties
    dept = ledger.depts[suspended]
    ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, uint(dept.id))
    with reverts("DepartmentNotActive", departmentId=dept.id):
        ledger.deliver(psb, gid)


@pytest.mark.parametrize("who", ["HRSS", "CIVIL"])
def test_recordDelivery_byOtherThanProvider_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int], who: str
) -> None:
    _, _, gid = parties
    dept = ledger.depts[who]
    with reverts("DepartmentUnauthorized", account=dept.account.address):
        ledger.deliver(dept, gid)


def test_acknowledgeDelivery_equalCommitment_acknowledges(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    commitment = os.urandom(32)
    did, recorded = ledger.deliver(psb, gid, commitment)
    result = ledger.send(hrss, "acknowledgeDelivery", did, receipt_of(recorded), commitment)
    assert names(result) == ["DeliveryAcknowledged"]
    assert result.event("DeliveryAcknowledged").args["consumer"] == hrss.id
    assert ledger.call("deliveryStatus", did) == DeliveryStatus.ACKNOWLEDGED
    assert ledger.call("receiptMatches", did, receipt_of(recorded)) is True
    with reverts("DeliveryAlreadySettled", deliveryId=did, status=DeliveryStatus.ACKNOWLEDGED):
        ledger.send(hrss, "acknowledgeDelivery", did, receipt_of(recorded), commitment)


def test_acknowledgeDelivery_differentCommitment_disputesKeepingBoth(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    recorded_commitment, computed = os.urandom(32), os.urandom(32)
    did, recorded = ledger.deliver(psb, gid, recorded_commitment)
    result = ledger.send(hrss, "acknowledgeDelivery", did, receipt_of(recorded), computed)
    assert names(result) == ["DeliveryDisputed"]
    ev = result.event("DeliveryDisputed").args
    assert (ev["recordedCommitment"], ev["consumerCommitment"]) == (recorded_commitment, computed)
    assert ledger.call("deliveryStatus", did) == DeliveryStatus.DISPUTED
    with reverts("DeliveryAlreadySettled", status=DeliveryStatus.DISPUTED):
        ledger.send(hrss, "acknowledgeDelivery", did, receipt_of(recorded), recorded_commitment)


def test_acknowledgeDelivery_alteredReceipt_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    did, recorded = ledger.deliver(psb, gid)
    receipt = receipt_of(recorded)
    altered = (*receipt[:5], receipt[5] + 1, *receipt[6:])
    with reverts("DeliveryReceiptMismatch", deliveryId=did):
        ledger.send(hrss, "acknowledgeDelivery", did, altered, receipt[3])


def test_acknowledgeDelivery_byNonConsumer_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, _, gid = parties
    did, recorded = ledger.deliver(psb, gid)
    for who in (psb, ledger.depts["CIVIL"]):
        with reverts("DepartmentUnauthorized", account=who.account.address):
            ledger.send(who, "acknowledgeDelivery", did, receipt_of(recorded), receipt_of(recorded)[3])


def test_acknowledgeDelivery_unknownOrZero_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    did, recorded = ledger.deliver(psb, gid)
    with reverts("DeliveryUnknown"):
        ledger.send(hrss, "acknowledgeDelivery", os.urandom(32), receipt_of(recorded), os.urandom(32))
    with reverts("DeliveryInvalidField", field="consumerCommitment"):
        ledger.send(hrss, "acknowledgeDelivery", did, receipt_of(recorded), b"\0" * 32)
    assert ledger.call("deliveryStatus", did) == DeliveryStatus.RECORDED


def test_recordDeliveries_recordsEachInOrder(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    psb, hrss, gid = parties
    batch = [(new_delivery_id(psb.id), gid, os.urandom(32), 1, 100 + i, i) for i in range(5)]
    result = ledger.send(psb, "recordDeliveries", batch)
    recorded = result.events_named("DeliveryRecorded")
    assert [e.args["deliveryId"] for e in recorded] == [r[0] for r in batch]
    assert [e.args["byteSize"] for e in recorded] == [100, 101, 102, 103, 104]
    assert all(e.args["consumer"] == hrss.id for e in recorded)
    for (did, *_), event in zip(batch, recorded, strict=True):
        assert ledger.call("deliveryStatus", did) == DeliveryStatus.RECORDED
        receipt = (
            gid,
            psb.id,
            hrss.id,
            *(event.args[k] for k in ("commitment", "hashAlgorithm", "byteSize")),
        )
        receipt += (event.args["recordCount"], event.args["recordedAt"])
        assert ledger.call("receiptMatches", did, receipt) is True


def test_recordDeliveries_empty_reverts(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    with reverts("DeliveryInvalidField", field="records"):
        ledger.send(parties[0], "recordDeliveries", [])


def test_recordDeliveries_oneBadRecord_recordsNothing(
    ledger: Consortium, parties: tuple[Dept, Dept, int]
) -> None:
    psb, hrss, gid = parties
    revoked = ledger.grant(psb, ledger.agreement(psb, hrss))
    ledger.send(psb, "revokeGrant", revoked)
    good = (new_delivery_id(psb.id), gid, os.urandom(32), 1, 1, 1)
    with reverts("GrantAlreadyRevoked", grantId=revoked):
        ledger.send(
            psb, "recordDeliveries", [good, (new_delivery_id(psb.id), revoked, os.urandom(32), 1, 1, 1)]
        )
    dup = new_delivery_id(psb.id)
    with reverts("DeliveryDuplicate", deliveryId=dup):
        ledger.send(
            psb,
            "recordDeliveries",
            [good, (dup, gid, os.urandom(32), 1, 1, 1), (dup, gid, b"\1" * 32, 1, 1, 1)],
        )
    assert ledger.call("deliveryStatus", good[0]) == DeliveryStatus.NONE


def test_recordDeliveries_byConsumer_reverts(ledger: Consortium, parties: tuple[Dept, Dept, int]) -> None:
    _, hrss, gid = parties
    with reverts("DepartmentUnauthorized", account=hrss.account.address):
        ledger.send(hrss, "recordDeliveries", [(os.urandom(32), gid, os.urandom(32), 1, 1, 1)])


@pytest.mark.parametrize("algorithm", [0, 3, 200, 255])
def test_recordDelivery_unknownHashAlgorithm_reverts(
    ledger: Consortium, parties: tuple[Dept, Dept, int], algorithm: int
) -> None:
    """Only ids readers can name are recorded (1 SHA-256, 2 SM3): an id 200 once made GET /deliveries fail."""
    psb, _, gid = parties
    did = new_delivery_id(psb.id)
    with reverts("DeliveryUnknownHashAlgorithm", hashAlgorithm=algorithm):
        ledger.send(psb, "recordDelivery", did, gid, os.urandom(32), algorithm, 1, 1)
    with reverts("DeliveryUnknownHashAlgorithm", hashAlgorithm=algorithm):
        ledger.send(psb, "recordDeliveries", [(did, gid, os.urandom(32), algorithm, 1, 1)])
    assert ledger.call("deliveryStatus", did) == DeliveryStatus.NONE


def test_recordDelivery_idOfAnotherProvidersNamespace_reverts(ledger: Consortium) -> None:
    """CIVIL holds a grant of its own, yet cannot take PSB's next delivery id: PSB's delivery records."""
    psb, hrss, civil = ledger.depts["PSB"], ledger.depts["HRSS"], ledger.depts["CIVIL"]
    psb_grant = ledger.grant(psb, ledger.agreement(psb, hrss))
    civil_grant = ledger.grant(civil, ledger.agreement(civil, hrss))
    victims_next = new_delivery_id(psb.id)
    with reverts("DeliveryIdNotProviders", deliveryId=victims_next, provider=civil.id):
        ledger.send(civil, "recordDelivery", victims_next, civil_grant, os.urandom(32), 1, 1, 1)
    with reverts("DeliveryIdNotProviders", deliveryId=victims_next, provider=civil.id):
        ledger.send(civil, "recordDeliveries", [(victims_next, civil_grant, os.urandom(32), 1, 1, 1)])
    assert ledger.call("deliveryStatus", victims_next) == DeliveryStatus.NONE
    recorded = ledger.send(psb, "recordDelivery", victims_next, psb_grant, os.urandom(32), 1, 1, 1)
    assert names(recorded) == ["DeliveryRecorded"]
    assert recorded.event("DeliveryRecorded").args["provider"] == psb.id
