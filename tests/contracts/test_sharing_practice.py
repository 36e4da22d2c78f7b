"""SharingPractice on chain: who may publish and answer demands, score agreements and run inspections, and
what each refuses (the exact custom error and its arguments), driven directly through the chain client."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain import LedgerClient, TxResult
from node.compiler import load_artifact
from node.deploy import EVALUATION_PERIOD_S, anchors_abi
from node.endpoint import NodeEndpoint
from node.practice import DemandRecord, InspectionRecord
from node.types import (
    DEMAND_NOTICE_S,
    PRESENTATION_NOTICE_S,
    DeclineReason,
    DemandAnswer,
    GovernanceAction,
    InspectionOutcome,
    InspectionStatus,
    RejectionReason,
    ScoredSide,
    ShareType,
)
from tests.contracts.conftest import DAY, Consortium, Dept, deploy, names, receipt_of, reverts
from tests.contracts.test_receipt_anchors import Anchors, make_anchors
from verifier.onchain import LedgerReader
from verifier.sampling import derive_sample, draw_sample

TEXT = b"\x7d" * 32
ZERO = b"\x00" * 32
#: A due date the contract takes: a day past the least notice an addressee is given.
DUE = DEMAND_NOTICE_S + DAY


@dataclass
class Practice:
    ledger: Consortium
    client: LedgerClient
    auditor: LocalAccount
    anchors: Anchors

    def send(self, who: Dept | object, fn: str, *args: object) -> TxResult:
        account = who.account if isinstance(who, Dept) else who
        return self.client.transact(account, fn, *args)  # type: ignore[arg-type]

    def call(self, fn: str, *args: object) -> object:
        return self.client.call(fn, *args)

    def demand(self, demand_id: int) -> DemandRecord:
        return DemandRecord.from_chain(demand_id, self.client.call("demand", demand_id))

    def inspection(self, inspection_id: int) -> InspectionRecord:
        return InspectionRecord.from_chain(inspection_id, self.client.call("inspection", inspection_id))

    def dept(self, code: str) -> Dept:
        return self.ledger.depts[code]

    def closed_period(self) -> tuple[int, int]:
        """The evaluation period before the current one by the chain's clock: the latest an inspection may
        cover (whole periods only, and over)."""
        length = int(self.client.call("evaluationPeriod"))
        current = self.ledger.now() // length * length
        return current - length, current

    def publish(self, publisher: str = "HRSS", addressee: str | None = "PSB") -> int:
        to = 0 if addressee is None else self.dept(addressee).id
        result = self.send(self.dept(publisher), "publishDemand", TEXT, to, self.ledger.now() + DUE)
        return int(result.event("DemandPublished").args["demandId"])


@pytest.fixture(scope="module")
def practice(node_endpoint: NodeEndpoint) -> Practice:
    """One ledger (PSB provides to HRSS, CIVIL a third party, one auditor) and its practice contract, shared
    by the module's tests, which each publish demands and conclude agreements of their own."""
    governors = [Account.create() for _ in range(3)]
    consortium = Consortium(deploy(node_endpoint, governors, 2), governors)
    for code in ("PSB", "HRSS", "CIVIL"):
        consortium.admit(code)
    auditor = Account.create()
    consortium.govern(GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [auditor.address]))
    anchors = make_anchors(node_endpoint, consortium)
    artifact = load_artifact("SharingPractice")
    client = LedgerClient(node_endpoint, anchors_abi(artifact, load_artifact("DataExchangeLedger")))
    deployed = client.deploy(
        governors[0], artifact.bytecode, consortium.client.address, EVALUATION_PERIOD_S,
        anchors.client.address,
    )  # fmt: skip
    assert deployed.contract_address is not None
    return Practice(consortium, client.at(deployed.contract_address), auditor, anchors)


def test_constructor_anchorsOfAnotherLedger_refused(practice: Practice, node_endpoint: NodeEndpoint) -> None:
    other = Consortium(deploy(node_endpoint, practice.ledger.governors, 2), practice.ledger.governors)
    foreign = make_anchors(node_endpoint, other)
    artifact = load_artifact("SharingPractice")
    with reverts("PracticeInvalidField", field="anchors"):
        practice.client.deploy(
            practice.ledger.governors[0], artifact.bytecode, practice.ledger.client.address,
            EVALUATION_PERIOD_S, foreign.client.address,
        )  # fmt: skip
    assert practice.call("anchors") == practice.anchors.client.address


def test_publishDemand_recordsHashesPartiesAndTimes(practice: Practice) -> None:
    hrss, psb = practice.dept("HRSS"), practice.dept("PSB")
    result = practice.send(hrss, "publishDemand", TEXT, psb.id, practice.ledger.now() + DUE)
    assert names(result) == ["DemandPublished"]
    ev = result.event("DemandPublished").args
    assert (ev["publisher"], ev["addressee"], ev["textHash"]) == (hrss.id, psb.id, TEXT)
    stored = practice.demand(ev["demandId"])
    assert (stored.publisher, stored.addressee) == (hrss.id, psb.id)
    assert stored.text_hash == TEXT and stored.answer == DemandAnswer.NONE
    assert stored.catalog_size == practice.ledger.call("resourceCount")


@pytest.mark.parametrize(
    ("text", "addressee", "due", "error", "args"),
    [
        (ZERO, "PSB", DUE, "PracticeInvalidField", {"field": "textHash"}),
        (TEXT, "PSB", -DAY, "PracticeInvalidField", {"field": "dueBy"}),
        (TEXT, "HRSS", DUE, "PracticeInvalidField", {"field": "addressee"}),
        (TEXT, 99, DUE, "DepartmentUnknown", {"departmentId": 99}),
    ],
)
def test_publishDemand_refusesBadFields(
    practice: Practice, text: bytes, addressee: str | int, due: int, error: str, args: dict[str, object]
) -> None:
    to = addressee if isinstance(addressee, int) else practice.dept(addressee).id
    with reverts(error, **args):
        practice.send(practice.dept("HRSS"), "publishDemand", text, to, practice.ledger.now() + due)


def test_publishDemand_dueWithinAWeek_refused_aWeekToTheSecondTaken(practice: Practice) -> None:
    """The due date marks a late addressee overdue on its scorecard: due a second after its block, a demand
    was overdue before its addressee could answer, and any department could so mark any other overdue as often
    as it published. The addressee is given a week at least (``DEMAND_NOTICE_S``, the contract's figure)."""
    hrss, psb = practice.dept("HRSS"), practice.dept("PSB")
    before = practice.call("demandCount")
    for due in (1, DAY, DEMAND_NOTICE_S - 1):
        at = practice.ledger.now() + 1
        practice.client.w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
        with reverts("PracticeInvalidField", field="dueBy"):
            practice.send(hrss, "publishDemand", TEXT, psb.id, at + due)
    assert practice.call("demandCount") == before
    at = practice.ledger.now() + 1
    practice.client.w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
    result = practice.send(hrss, "publishDemand", TEXT, psb.id, at + DEMAND_NOTICE_S)
    assert names(result) == ["DemandPublished"]
    assert practice.demand(result.event("DemandPublished").args["demandId"]).due_by == at + DEMAND_NOTICE_S


def test_publishDemand_toASuspendedDepartment_refused_takenOnceReinstated(practice: Practice) -> None:
    """A suspended department cannot answer, so a demand addressed to it would be overdue and unmet on its
    card before it could: refused with the ledger's own error naming it."""
    hrss, civil = practice.dept("HRSS"), practice.dept("CIVIL")
    suspend = abi_encode(["uint32"], [civil.id])
    practice.ledger.govern(GovernanceAction.SUSPEND_DEPARTMENT, suspend)
    try:
        with reverts("DepartmentNotActive", departmentId=civil.id):
            practice.send(hrss, "publishDemand", TEXT, civil.id, practice.ledger.now() + DUE)
    finally:
        practice.ledger.govern(GovernanceAction.REINSTATE_DEPARTMENT, suspend)
    result = practice.send(hrss, "publishDemand", TEXT, civil.id, practice.ledger.now() + DUE)
    assert names(result) == ["DemandPublished"]


def test_publishDemand_byANonDepartment_isUnauthorized(practice: Practice) -> None:
    outsider = practice.ledger.outsider
    with reverts("DepartmentUnauthorized", account=outsider.address):
        practice.send(outsider, "publishDemand", TEXT, 0, practice.ledger.now() + DUE)


def test_answerDemand_newResource_onlyTheAddressee_once(practice: Practice) -> None:
    psb, civil = practice.dept("PSB"), practice.dept("CIVIL")
    demand = practice.publish()
    resource = practice.ledger.resource(psb)
    with reverts("PracticeNotAddressee", demandId=demand, departmentId=civil.id):
        practice.send(civil, "answerDemand", demand, DemandAnswer.DECLINED, 0, DeclineReason.NOT_HELD, ZERO)
    with reverts("PracticeResourceUnfit", demandId=demand, resourceId=resource):
        practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, resource, 0, ZERO)
    result = practice.send(psb, "answerDemand", demand, DemandAnswer.NEW_RESOURCE, resource, 0, TEXT)
    assert names(result) == ["DemandAnswered"]
    ev = result.event("DemandAnswered").args
    assert (ev["answeredBy"], ev["answer"], ev["resourceId"], ev["answerHash"]) == (
        psb.id, DemandAnswer.NEW_RESOURCE, resource, TEXT)  # fmt: skip
    with reverts("PracticeDemandAnswered", demandId=demand, answer=DemandAnswer.NEW_RESOURCE):
        practice.send(psb, "answerDemand", demand, DemandAnswer.DECLINED, 0, DeclineReason.NOT_HELD, ZERO)


def test_answerDemand_refusesUnfitAnswers(practice: Practice) -> None:
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    existing = practice.ledger.resource(psb)
    not_shared = practice.ledger.resource(psb, ShareType.NOT_SHARED)
    others = practice.ledger.resource(hrss)
    demand = practice.publish()
    for code in (0, max(DeclineReason) + 1):
        with reverts("PracticeUnknownDeclineCode", code=code):
            practice.send(psb, "answerDemand", demand, DemandAnswer.DECLINED, 0, code, ZERO)
    with reverts("PracticeInvalidField", field="resourceId"):
        practice.send(
            psb, "answerDemand", demand, DemandAnswer.DECLINED, existing, DeclineReason.NOT_HELD, ZERO
        )
    with reverts("PracticeInvalidField", field="declineCode"):
        practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, existing, 1, ZERO)
    for resource in (existing, not_shared, others):  # existing but claimed new / not shared / not PSB's
        with reverts("PracticeResourceUnfit", resourceId=resource):
            practice.send(psb, "answerDemand", demand, DemandAnswer.NEW_RESOURCE, resource, 0, ZERO)
    with reverts("CatalogUnknownResource"):
        practice.send(psb, "answerDemand", demand, DemandAnswer.NEW_RESOURCE, 10**6, 0, ZERO)
    with reverts("PracticeInvalidField", field="answer"):
        practice.send(psb, "answerDemand", demand, DemandAnswer.NONE, 0, 0, ZERO)
    with reverts("PracticeUnknownDemand", demandId=10**6):
        practice.send(psb, "answerDemand", 10**6, DemandAnswer.DECLINED, 0, 1, ZERO)
    # Addressed to no one: anyone but the publisher answers, with a resource.
    open_demand = practice.publish(addressee=None)
    with reverts("PracticeNotAddressee", departmentId=hrss.id):
        practice.send(hrss, "answerDemand", open_demand, DemandAnswer.DECLINED, 0, 1, ZERO)
    practice.send(psb, "answerDemand", open_demand, DemandAnswer.EXISTING_RESOURCE, existing, 0, ZERO)


def test_answerDemand_declined_onlyByTheAddressee(practice: Practice) -> None:
    """A demand to no one waits for a department holding the data: any other department declining it closed
    it, unmet for good, so a department never asked could close every such demand of the network. No one
    declines it; it stays open for a resource. The addressee of a demand declines it as ever."""
    psb, hrss, civil = practice.dept("PSB"), practice.dept("HRSS"), practice.dept("CIVIL")
    open_demand = practice.publish(addressee=None)
    for who in (psb, civil):
        with reverts("PracticeOpenDemandDeclined", demandId=open_demand, departmentId=who.id):
            practice.send(
                who, "answerDemand", open_demand, DemandAnswer.DECLINED, 0, DeclineReason.NOT_HELD, TEXT
            )
    with reverts("PracticeNotAddressee", demandId=open_demand, departmentId=hrss.id):  # its publisher
        practice.send(
            hrss, "answerDemand", open_demand, DemandAnswer.DECLINED, 0, DeclineReason.NOT_HELD, TEXT
        )
    assert practice.demand(open_demand).answer == DemandAnswer.NONE
    resource = practice.ledger.resource(civil)
    met = practice.send(civil, "answerDemand", open_demand, DemandAnswer.NEW_RESOURCE, resource, 0, ZERO)
    assert names(met) == ["DemandAnswered"]
    assert (practice.demand(open_demand).answered_by, practice.demand(open_demand).resource_id) == (
        civil.id,
        resource,
    )

    addressed = practice.publish()
    declined = practice.send(
        psb, "answerDemand", addressed, DemandAnswer.DECLINED, 0, DeclineReason.HELD_ELSEWHERE, TEXT
    )
    assert names(declined) == ["DemandAnswered"]
    ev = declined.event("DemandAnswered").args
    assert (ev["answeredBy"], ev["answer"], ev["resourceId"], ev["declineCode"], ev["answerHash"]) == (
        psb.id, DemandAnswer.DECLINED, 0, DeclineReason.HELD_ELSEWHERE, TEXT)  # fmt: skip
    stored = practice.demand(addressed)
    assert (stored.answer, stored.answered_by, stored.decline_code) == (
        DemandAnswer.DECLINED, psb.id, DeclineReason.HELD_ELSEWHERE)  # fmt: skip


def test_rejectAnswer_openDemand_anUnfitAnswerIsRejected_theHolderAnswersIt(practice: Practice) -> None:
    """A demand to no one took any department's resource, unrelated or not, and was closed by it for good:
    the department holding the data could no longer answer, and the publisher had no say. The publisher
    rejects such an answer with a declared reason code; the demand is open again, to anyone but the rejected
    answerer."""
    hrss, psb, civil = practice.dept("HRSS"), practice.dept("PSB"), practice.dept("CIVIL")
    unrelated, unrelated_too = practice.ledger.resource(civil), practice.ledger.resource(civil)
    demand = practice.publish(addressee=None)
    practice.send(civil, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, unrelated, 0, ZERO)
    rejected = practice.send(hrss, "rejectAnswer", demand, RejectionReason.NOT_THE_DATA_ASKED, TEXT)
    assert names(rejected) == ["DemandAnswerRejected"]
    ev = rejected.event("DemandAnswerRejected").args
    assert (ev["demandId"], ev["answeredBy"], ev["resourceId"], ev["reasonCode"], ev["reasonHash"]) == (
        demand, civil.id, unrelated, RejectionReason.NOT_THE_DATA_ASKED, TEXT)  # fmt: skip
    stored = practice.demand(demand)
    cleared = (stored.answer, stored.answered_by, stored.answered_at, stored.resource_id, stored.answer_hash)
    assert cleared == (DemandAnswer.NONE, 0, 0, 0, ZERO)
    assert practice.call("answerRejected", demand, civil.id) is True
    assert practice.call("answerRejected", demand, psb.id) is False
    with reverts("PracticeAnswererRejected", demandId=demand, departmentId=civil.id):
        practice.send(civil, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, unrelated_too, 0, ZERO)
    held = practice.ledger.resource(psb)
    met = practice.send(psb, "answerDemand", demand, DemandAnswer.NEW_RESOURCE, held, 0, ZERO)
    assert names(met) == ["DemandAnswered"]
    assert (practice.demand(demand).answered_by, practice.demand(demand).resource_id) == (psb.id, held)


def test_rejectAnswer_addressedDemand_theAddresseeAnswersAgain(practice: Practice) -> None:
    """The addressee is the only department that may answer its demand: rejected, it may answer again."""
    hrss, psb = practice.dept("HRSS"), practice.dept("PSB")
    wrong, right = practice.ledger.resource(psb), practice.ledger.resource(psb)
    demand = practice.publish()
    practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, wrong, 0, ZERO)
    rejected = practice.send(hrss, "rejectAnswer", demand, RejectionReason.INCOMPLETE, ZERO)
    assert names(rejected) == ["DemandAnswerRejected"]
    assert practice.call("answerRejected", demand, psb.id) is False
    again = practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, right, 0, ZERO)
    assert names(again) == ["DemandAnswered"]
    assert practice.demand(demand).resource_id == right


def test_rejectAnswer_refusals_nothingRecorded(practice: Practice) -> None:
    hrss, psb, civil = practice.dept("HRSS"), practice.dept("PSB"), practice.dept("CIVIL")
    resource = practice.ledger.resource(psb)
    demand = practice.publish()
    with reverts("PracticeNotRejectable", demandId=demand, answer=DemandAnswer.NONE):
        practice.send(hrss, "rejectAnswer", demand, RejectionReason.INCOMPLETE, ZERO)
    practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, resource, 0, ZERO)
    for who in (psb, civil):  # the answerer, a third department
        with reverts("PracticeNotPublisher", demandId=demand, departmentId=who.id):
            practice.send(who, "rejectAnswer", demand, RejectionReason.INCOMPLETE, ZERO)
    for code in (0, max(RejectionReason) + 1):
        with reverts("PracticeUnknownRejectionCode", code=code):
            practice.send(hrss, "rejectAnswer", demand, code, ZERO)
    with reverts("PracticeUnknownDemand", demandId=10**6):
        practice.send(hrss, "rejectAnswer", 10**6, RejectionReason.INCOMPLETE, ZERO)
    outsider = practice.ledger.outsider
    with reverts("DepartmentUnauthorized", account=outsider.address):
        practice.send(outsider, "rejectAnswer", demand, RejectionReason.INCOMPLETE, ZERO)
    assert practice.demand(demand).resource_id == resource
    declined = practice.publish()
    practice.send(psb, "answerDemand", declined, DemandAnswer.DECLINED, 0, DeclineReason.NOT_HELD, ZERO)
    with reverts("PracticeNotRejectable", demandId=declined, answer=DemandAnswer.DECLINED):
        practice.send(hrss, "rejectAnswer", declined, RejectionReason.INCOMPLETE, ZERO)
    assert practice.call("rejectionCodeMax") == max(RejectionReason) == len(RejectionReason)


def test_withdrawDemand_unansweredOnly_byItsPublisher_thenClosedToEveryone(practice: Practice) -> None:
    hrss, psb = practice.dept("HRSS"), practice.dept("PSB")
    resource = practice.ledger.resource(psb)
    answered = practice.publish()
    practice.send(psb, "answerDemand", answered, DemandAnswer.EXISTING_RESOURCE, resource, 0, ZERO)
    with reverts("PracticeDemandAnswered", demandId=answered, answer=DemandAnswer.EXISTING_RESOURCE):
        practice.send(hrss, "withdrawDemand", answered)
    demand = practice.publish()
    with reverts("PracticeNotPublisher", demandId=demand, departmentId=psb.id):
        practice.send(psb, "withdrawDemand", demand)
    assert practice.call("demandWithdrawnAt", demand) == 0
    withdrawn = practice.send(hrss, "withdrawDemand", demand)
    assert names(withdrawn) == ["DemandWithdrawn"]
    assert withdrawn.event("DemandWithdrawn").args["publisher"] == hrss.id
    at = int(practice.client.w3.eth.get_block(withdrawn.block_number)["timestamp"])
    assert practice.call("demandWithdrawnAt", demand) == at
    with reverts("PracticeDemandWithdrawn", demandId=demand):
        practice.send(psb, "answerDemand", demand, DemandAnswer.EXISTING_RESOURCE, resource, 0, ZERO)
    with reverts("PracticeDemandWithdrawn", demandId=demand):
        practice.send(hrss, "withdrawDemand", demand)
    with reverts("PracticeDemandWithdrawn", demandId=demand):
        practice.send(hrss, "rejectAnswer", demand, RejectionReason.INCOMPLETE, ZERO)
    assert practice.demand(demand).answer == DemandAnswer.NONE
    with reverts("PracticeUnknownDemand", demandId=10**6):
        practice.call("demandWithdrawnAt", 10**6)


def test_scores_needADeliveryUnderTheAgreement_oncePerPeriodAndSide(practice: Practice) -> None:
    psb, hrss, civil = practice.dept("PSB"), practice.dept("HRSS"), practice.dept("CIVIL")
    agreement = practice.ledger.agreement(psb, hrss)
    other_agreement = practice.ledger.agreement(psb, hrss)
    delivery, recorded = practice.ledger.deliver(psb, practice.ledger.grant(psb, agreement))
    elsewhere, elsewhere_recorded = practice.ledger.deliver(psb, practice.ledger.grant(psb, other_agreement))
    receipt = receipt_of(recorded)
    for bad in (0, 6):
        with reverts("PracticeScoreOutOfRange", score=bad):
            practice.send(hrss, "scoreProvider", agreement, 5, bad, 5, ZERO, delivery, receipt)
    with reverts("DepartmentUnauthorized"):
        practice.send(civil, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)
    with reverts("DepartmentUnauthorized"):  # the provider scores only the consumer
        practice.send(psb, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)
    with reverts("PracticeNoDelivery", agreementId=agreement, deliveryId=elsewhere):
        practice.send(
            hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, elsewhere, receipt_of(elsewhere_recorded)
        )
    with reverts("PracticeNoDelivery", agreementId=agreement, deliveryId=delivery):
        forged = (*receipt[:3], os.urandom(32), *receipt[4:])
        practice.send(hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, forged)
    with reverts("AgreementUnknown", agreementId=10**6):
        practice.send(hrss, "scoreProvider", 10**6, 5, 5, 5, ZERO, delivery, receipt)

    result = practice.send(hrss, "scoreProvider", agreement, 5, 4, 3, TEXT, delivery, receipt)
    ev = result.event("EvaluationRecorded").args
    period = practice.ledger.client.w3.eth.get_block(result.block_number)["timestamp"] // EVALUATION_PERIOD_S
    assert (ev["period"], ev["side"], ev["scorer"]) == (period, ScoredSide.PROVIDER, hrss.id)
    assert (ev["timeliness"], ev["completeness"], ev["accuracy"], ev["purposeCompliance"]) == (5, 4, 3, 0)
    assert practice.call("scored", agreement, period, ScoredSide.PROVIDER) is True
    with reverts("PracticeAlreadyScored", agreementId=agreement, side=ScoredSide.PROVIDER):
        practice.send(hrss, "scoreProvider", agreement, 1, 1, 1, ZERO, delivery, receipt)
    consumer = practice.send(psb, "scoreConsumer", agreement, 4, ZERO, delivery, receipt)
    assert consumer.event("EvaluationRecorded").args["purposeCompliance"] == 4
    with reverts("PracticeAlreadyScored", side=ScoredSide.CONSUMER):
        practice.send(psb, "scoreConsumer", agreement, 4, ZERO, delivery, receipt)


def test_scoresForBatch_anAnchoredBatchUnderTheAgreementIsADelivery(practice: Practice) -> None:
    """An agreement delivered only through receipts is evaluated on the evidence of one anchored batch of a
    grant of it, by both sides; a batch not anchored, or anchored under another agreement's grant, is not."""
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    agreement = practice.ledger.agreement(psb, hrss)
    grant = practice.ledger.grant(psb, agreement)
    elsewhere = practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    for gid in (grant, elsewhere):
        practice.anchors.send(psb, "anchorBatch", gid, 0, 3, os.urandom(32))
    for gid, first in ((grant, 3), (elsewhere, 0), (10**6, 0)):
        with reverts("PracticeNoReceiptBatch", agreementId=agreement, grantId=gid, firstSequence=first):
            practice.send(hrss, "scoreProviderForBatch", agreement, 5, 5, 5, ZERO, gid, first)
        with reverts("PracticeNoReceiptBatch", agreementId=agreement, grantId=gid, firstSequence=first):
            practice.send(psb, "scoreConsumerForBatch", agreement, 5, ZERO, gid, first)
    with reverts("DepartmentUnauthorized"):  # the provider scores only the consumer
        practice.send(psb, "scoreProviderForBatch", agreement, 5, 5, 5, ZERO, grant, 0)

    result = practice.send(hrss, "scoreProviderForBatch", agreement, 5, 4, 3, TEXT, grant, 0)
    ev = result.event("EvaluationRecorded").args
    assert (ev["agreementId"], ev["side"], ev["scorer"]) == (agreement, ScoredSide.PROVIDER, hrss.id)
    assert (ev["timeliness"], ev["completeness"], ev["accuracy"], ev["commentHash"]) == (5, 4, 3, TEXT)
    consumer = practice.send(psb, "scoreConsumerForBatch", agreement, 4, ZERO, grant, 0)
    assert consumer.event("EvaluationRecorded").args["purposeCompliance"] == 4
    with reverts("PracticeAlreadyScored", agreementId=agreement, side=ScoredSide.PROVIDER):
        practice.send(hrss, "scoreProviderForBatch", agreement, 5, 5, 5, ZERO, grant, 0)


def _short_practice(practice: Practice, node_endpoint: NodeEndpoint, period: int) -> Practice:
    """A SharingPractice with an evaluation period of ``period`` seconds beside the module's ledger: a 30-day
    period cannot pass on the node every test shares."""
    artifact = load_artifact("SharingPractice")
    client = LedgerClient(node_endpoint, anchors_abi(artifact, load_artifact("DataExchangeLedger")))
    deployed = client.deploy(
        practice.ledger.governors[0], artifact.bytecode, practice.ledger.client.address, period,
        practice.anchors.client.address,
    )  # fmt: skip
    assert deployed.contract_address is not None
    return Practice(practice.ledger, client.at(deployed.contract_address), practice.auditor, practice.anchors)


def test_scores_oneDeliveryVouchesForItsPeriodAndTheNext_neverAThird(
    practice: Practice, node_endpoint: NodeEndpoint
) -> None:
    """Evidence may be one evaluation period old, so a delivery made late in a period vouches for the scores
    of that period and of the next, in which nothing was delivered; a third period's score is refused. (A
    100 s period; the delivery 80 s into its period.)"""
    period = 100
    short = _short_practice(practice, node_endpoint, period)
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    agreement = practice.ledger.agreement(psb, hrss)
    grant = practice.ledger.grant(psb, agreement)
    w3 = practice.ledger.client.w3
    first = practice.ledger.now() // period + 2

    def at(t: int) -> None:
        """A block at ``t``: what is sent next is checked, and mined, a moment after it."""
        w3.provider.make_request("evm_setNextBlockTimestamp", [t])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    at(first * period + 80)
    delivery, recorded = practice.ledger.deliver(psb, grant)
    receipt = receipt_of(recorded)
    for p, into in ((first, 85), (first + 1, 30)):
        at(p * period + into)
        scored = short.send(hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)
        assert (
            names(scored) == ["EvaluationRecorded"] and scored.event("EvaluationRecorded").args["period"] == p
        )
    at((first + 2) * period + 1)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=receipt[7]):
        short.send(hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)
    assert not short.call("scored", agreement, first + 2, ScoredSide.PROVIDER)


def test_scores_needRecentEvidence_atMostOneEvaluationPeriodOld(
    practice: Practice, node_endpoint: NodeEndpoint
) -> None:
    """A delivery, or an anchored batch, vouches for scores made up to one evaluation period after it: older,
    it is refused with when it was made, and no score is recorded; one delivery long past could otherwise
    vouch for a score of the same agreement every period for ever. (A 20-second period.)"""
    period = 20
    short = _short_practice(practice, node_endpoint, period)
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    agreement = practice.ledger.agreement(psb, hrss)
    grant = practice.ledger.grant(psb, agreement)
    delivery, recorded = practice.ledger.deliver(psb, grant)
    receipt = receipt_of(recorded)
    practice.anchors.send(psb, "anchorBatch", grant, 0, 3, os.urandom(32))
    anchored_at = practice.anchors.call("batch", grant, 0)[2]  # type: ignore[index]
    w3 = practice.ledger.client.w3
    w3.provider.make_request("evm_increaseTime", [period + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=receipt[7]):
        short.send(hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=receipt[7]):
        short.send(psb, "scoreConsumer", agreement, 5, ZERO, delivery, receipt)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=anchored_at):
        short.send(hrss, "scoreProviderForBatch", agreement, 5, 5, 5, ZERO, grant, 0)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=anchored_at):
        short.send(psb, "scoreConsumerForBatch", agreement, 5, ZERO, grant, 0)
    now = practice.ledger.now()
    assert not any(short.call("scored", agreement, p, side) for p in (now // period, now // period - 1)
                   for side in ScoredSide)  # fmt: skip

    # A delivery of this period is evidence again, for both sides.
    fresh, fresh_recorded = practice.ledger.deliver(psb, grant)
    scored = short.send(hrss, "scoreProvider", agreement, 4, 4, 4, ZERO, fresh, receipt_of(fresh_recorded))
    assert names(scored) == ["EvaluationRecorded"]
    assert names(short.send(psb, "scoreConsumer", agreement, 3, ZERO, fresh, receipt_of(fresh_recorded))) == [
        "EvaluationRecorded"
    ]


def test_scores_evidenceExactlyOnePeriodOld_isRecent_aSecondOlderIsStale(
    practice: Practice, node_endpoint: NodeEndpoint
) -> None:
    """The bound to the second, alike for both sides and both kinds of evidence: made exactly one evaluation
    period before the score's block it vouches, one second earlier it is stale, with the earliest time that
    would do. (A 100 s period; the delivery at ``t``, the batch anchored at ``t + 1``.)"""
    period = 100
    short = _short_practice(practice, node_endpoint, period)
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    agreement = practice.ledger.agreement(psb, hrss)
    grant = practice.ledger.grant(psb, agreement)
    rpc = practice.ledger.client.w3.provider
    t = (practice.ledger.now() // period + 2) * period + 10

    def next_block_at(at: int) -> None:
        """What is sent next is estimated and mined at ``at``: a block the second before, ``at`` pinned."""
        rpc.make_request("evm_setNextBlockTimestamp", [at - 1])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        rpc.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]

    next_block_at(t)
    delivery, recorded = practice.ledger.deliver(psb, grant)
    receipt = receipt_of(recorded)
    next_block_at(t + 1)
    practice.anchors.send(psb, "anchorBatch", grant, 0, 3, os.urandom(32))
    assert (receipt[7], practice.anchors.call("batch", grant, 0)[2]) == (t, t + 1)  # type: ignore[index]

    next_block_at(t + period)
    assert names(short.send(hrss, "scoreProvider", agreement, 5, 5, 5, ZERO, delivery, receipt)) == [
        "EvaluationRecorded"
    ]
    next_block_at(t + period + 1)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=t, notBefore=t + 1):
        short.send(psb, "scoreConsumer", agreement, 5, ZERO, delivery, receipt)
    batch_scored = short.send(psb, "scoreConsumerForBatch", agreement, 5, ZERO, grant, 0)
    assert names(batch_scored) == ["EvaluationRecorded"]
    next_block_at(t + period + 2)
    with reverts("PracticeStaleEvidence", agreementId=agreement, deliveredAt=t + 1, notBefore=t + 2):
        short.send(hrss, "scoreProviderForBatch", agreement, 5, 5, 5, ZERO, grant, 0)


def test_inspection_seedIsTheCommittedBlocksHash_outcomesByAuditorsOnly(practice: Practice) -> None:
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    delivery, _ = practice.ledger.deliver(
        psb, practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    )
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    start, end = practice.closed_period()
    args = (start, end, 3, head + 3, now + 2)
    with reverts("PracticeNotAuditor", account=psb.account.address):
        practice.send(psb, "openInspection", *args)
    for bad, field in (((end, start, 3, head + 3, now + 2), "periodFrom"),
                       ((start, end + EVALUATION_PERIOD_S, 3, head + 3, now + 2), "periodTo"),
                       ((start, end, 0, head + 3, now + 2), "sampleSize"),
                       ((start, end, 3, head, now + 2), "seedBlock"),
                       ((start, end, 3, head + 3, now - 1), "presentBy")):  # fmt: skip
        with reverts("PracticeInvalidInspection", field=field):
            practice.send(practice.auditor, "openInspection", *bad)
    opened = practice.send(practice.auditor, "openInspection", *args)
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    with reverts("PracticeInspectionStatus", inspectionId=inspection):
        practice.send(practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.PASSED, ZERO)
    with reverts("PracticeSeedUnavailable", inspectionId=inspection, seedBlock=head + 3):
        practice.send(psb, "drawSample", inspection)
    while w3.eth.block_number <= head + 3:  # the seed block, and one after it (blockhash of a past block)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    drawn = practice.send(psb, "drawSample", inspection)  # anyone may draw, once the block exists
    seed = drawn.event("InspectionDrawn").args["seed"]
    assert seed == bytes(w3.eth.get_block(head + 3)["hash"])
    assert practice.inspection(inspection).seed == seed
    with reverts("PracticeInspectionStatus", inspectionId=inspection):
        practice.send(psb, "drawSample", inspection)

    with reverts("PracticeNotAuditor"):
        practice.send(psb, "recordOutcome", inspection, delivery, InspectionOutcome.PASSED, ZERO)
    with reverts("DeliveryUnknown"):
        practice.send(
            practice.auditor, "recordOutcome", inspection, os.urandom(32), InspectionOutcome.PASSED, ZERO
        )
    for early in (InspectionOutcome.NONE, InspectionOutcome.NOT_PRESENTED):
        if practice.ledger.now() < args[4]:
            with reverts("PracticeInvalidOutcome", outcome=early):
                practice.send(practice.auditor, "recordOutcome", inspection, delivery, early, ZERO)
    recorded = practice.send(
        practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.FAILED, TEXT
    )
    assert names(recorded) == ["InspectionOutcomeRecorded"]
    assert practice.call("outcome", inspection, delivery) == InspectionOutcome.FAILED
    with reverts("PracticeInvalidOutcome", outcome=InspectionOutcome.PASSED):
        practice.send(practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.PASSED, ZERO)


#: The evaluation period of the practice contracts whose inspections cover this module's own deliveries: the
#: period holding them must be over before it is inspected, and 30 days cannot pass on the shared node.
SHORT_PERIOD = 600


def _mine_at(practice: Practice, at: int) -> None:
    rpc = practice.ledger.client.w3.provider
    rpc.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
    rpc.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_openInspection_aPeriodNarrowedAroundOneDelivery_refused_aWholePeriodDrawsFromAllOfIt(
    practice: Practice, node_endpoint: NodeEndpoint
) -> None:
    """A period is over when it is inspected, so its auditor knows every delivery in it. With bounds of the
    auditor's choosing, a one-second period around one delivery among six made that delivery the whole
    "random" sample, and a period ending a second before it spared it. Only whole evaluation periods are
    inspected: each narrowed period is refused by the bound that narrows it, and the period holding the
    delivery draws from all six."""
    short = _short_practice(practice, node_endpoint, SHORT_PERIOD)
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    grant = practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    start = (practice.ledger.now() // SHORT_PERIOD + 1) * SHORT_PERIOD
    _mine_at(practice, start)  # a period of this test's deliveries alone
    made = [practice.ledger.deliver(psb, grant)[0] for _ in range(3)]
    _mine_at(practice, start + 100)
    chosen, recorded = practice.ledger.deliver(psb, grant)
    at = int(recorded.event("DeliveryRecorded").args["recordedAt"])
    _mine_at(practice, start + 200)  # blocks may share a second: the chosen delivery's is its own
    made += [chosen] + [practice.ledger.deliver(psb, grant)[0] for _ in range(2)]
    _mine_at(practice, start + SHORT_PERIOD)  # the period is over
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    for (period_from, period_to), field in (
        ((at, at + 1), "periodFrom"),  # the chosen delivery alone
        ((start, at), "periodTo"),  # the period but the chosen delivery
        ((at, start + SHORT_PERIOD), "periodFrom"),
        ((start, start + SHORT_PERIOD - 1), "periodTo"),
    ):
        with reverts("PracticeInvalidInspection", field=field):
            short.send(practice.auditor, "openInspection", period_from, period_to, 1, head + 3, now + DAY)
    assert short.call("inspectionCount") == 0
    # Two whole periods are taken as well as one: the least an inspection covers is a whole period.
    two = short.send(practice.auditor, "openInspection", start - SHORT_PERIOD, start + SHORT_PERIOD, 1,
                     head + 3, now + DAY)  # fmt: skip
    assert names(two) == ["InspectionOpened"]
    opened = short.send(
        practice.auditor, "openInspection", start, start + SHORT_PERIOD, 2, head + 3, now + DAY
    )
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    while w3.eth.block_number <= head + 3:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    seed = short.send(hrss, "drawSample", inspection).event("InspectionDrawn").args["seed"]
    reader = LedgerReader(node_endpoint.rpc_url, str(practice.ledger.client.address))
    derived = derive_sample(reader, str(short.client.address), inspection)
    assert derived.population_size == 6
    assert list(derived.sample) == draw_sample(seed, inspection, sorted(made), 2, version=3)


def test_recordOutcome_drawnPastPresentBy_notPresentedRefused(practice: Practice) -> None:
    """An auditor who puts the seed block after the presentation deadline (here: deadline 5 s on, seed 20
    blocks on) would have a sample no provider learned before its deadline: its deliveries were never
    presentable, so `NotPresented` is refused for them for good; passed or failed still go on record."""
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    delivery, _ = practice.ledger.deliver(
        psb, practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    )
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    opened = practice.send(
        practice.auditor, "openInspection", *practice.closed_period(), 3, head + 20, now + 5
    )
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    w3.provider.make_request("evm_increaseTime", [10])  # type: ignore[arg-type]
    while w3.eth.block_number <= head + 20:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    practice.send(psb, "drawSample", inspection)
    assert practice.ledger.now() > now + 5
    with reverts("PracticeInvalidOutcome", inspectionId=inspection, outcome=InspectionOutcome.NOT_PRESENTED):
        practice.send(
            practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.NOT_PRESENTED, ZERO
        )
    recorded = practice.send(
        practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.PASSED, TEXT
    )
    assert names(recorded) == ["InspectionOutcomeRecorded"]


@pytest.mark.parametrize(
    ("left", "taken"), [(1, False), (PRESENTATION_NOTICE_S - 1, False), (PRESENTATION_NOTICE_S, True)]
)
def test_recordOutcome_drawnWithinThePresentationNotice_notPresentedRefused(
    practice: Practice, left: int, taken: bool
) -> None:
    """The deadline is the auditor's to set: one a second after its seed block's time had the sample drawn
    with a second left, every sampled provider then recorded not presented for a deadline it could not meet.
    A sample drawn less than ``PRESENTATION_NOTICE_S`` (the contract's figure) before its deadline is never
    `NotPresented`, passed or failed still go on record; drawn with the notice to the second, it is."""
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    delivery, _ = practice.ledger.deliver(
        psb, practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    )
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    draw_at = now + 60
    opened = practice.send(
        practice.auditor, "openInspection", *practice.closed_period(), 3, head + 3, draw_at + left
    )
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    while w3.eth.block_number < head + 3:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    w3.provider.make_request("evm_setNextBlockTimestamp", [draw_at])  # type: ignore[arg-type]
    drawn = practice.send(psb, "drawSample", inspection)
    assert w3.eth.get_block(drawn.block_number)["timestamp"] == draw_at
    w3.provider.make_request("evm_setNextBlockTimestamp", [draw_at + left + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    args = (inspection, delivery, InspectionOutcome.NOT_PRESENTED, ZERO)
    if taken:
        assert names(practice.send(practice.auditor, "recordOutcome", *args)) == ["InspectionOutcomeRecorded"]
        assert practice.call("outcome", inspection, delivery) == InspectionOutcome.NOT_PRESENTED
        return
    with reverts("PracticeInvalidOutcome", inspectionId=inspection, outcome=InspectionOutcome.NOT_PRESENTED):
        practice.send(practice.auditor, "recordOutcome", *args)
    recorded = practice.send(
        practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.FAILED, TEXT
    )
    assert names(recorded) == ["InspectionOutcomeRecorded"]


def test_recordOutcome_byAnotherAuditor_refusedWhileTheOpenerIsOne(practice: Practice) -> None:
    """An outcome is final once recorded, so the auditor who opened the inspection records its outcomes:
    another auditor's pass sent first would have stood for good in place of the failure the opening auditor's
    check called for. Once governance takes the opener's role (a key rotated, an auditor dismissed), any
    auditor records the outcomes left, so an inspection under way is not stranded."""
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    grant = practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    (delivery, _), (other, _) = practice.ledger.deliver(psb, grant), practice.ledger.deliver(psb, grant)
    rival = Account.create()
    practice.ledger.govern(GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [rival.address]))
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    opened = practice.send(
        practice.auditor, "openInspection", *practice.closed_period(), 3, head + 2, now + DAY
    )
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    while w3.eth.block_number <= head + 2:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    practice.send(rival, "drawSample", inspection)  # drawing stays anyone's
    with reverts(
        "PracticeNotInspectionAuditor",
        inspectionId=inspection,
        auditor=practice.auditor.address,
        account=rival.address,
    ):
        practice.send(rival, "recordOutcome", inspection, delivery, InspectionOutcome.PASSED, ZERO)
    assert practice.call("outcome", inspection, delivery) == InspectionOutcome.NONE
    recorded = practice.send(
        practice.auditor, "recordOutcome", inspection, delivery, InspectionOutcome.FAILED, TEXT
    )
    assert names(recorded) == ["InspectionOutcomeRecorded"]
    assert practice.call("outcome", inspection, delivery) == InspectionOutcome.FAILED

    practice.ledger.govern(
        GovernanceAction.REVOKE_AUDITOR, abi_encode(["address"], [practice.auditor.address])
    )
    try:
        with reverts("PracticeNotAuditor", account=practice.auditor.address):
            practice.send(
                practice.auditor, "recordOutcome", inspection, other, InspectionOutcome.PASSED, ZERO
            )
        taken_over = practice.send(rival, "recordOutcome", inspection, other, InspectionOutcome.PASSED, TEXT)
        assert names(taken_over) == ["InspectionOutcomeRecorded"]
    finally:  # the module's other tests open and record with this auditor
        practice.ledger.govern(
            GovernanceAction.GRANT_AUDITOR, abi_encode(["address"], [practice.auditor.address])
        )


def _slot(grant_id: int, sequence: int) -> bytes:
    return bytes(16) + grant_id.to_bytes(8, "big") + sequence.to_bytes(8, "big")


def test_recordOutcome_receiptSlot_acceptedInsideAnAnchoredBatchOnly(practice: Practice) -> None:
    """A drawn receipt's outcome is keyed by its slot (grant and sequence under 16 zero bytes): taken for a
    sequence the grant's contiguous anchored batches cover, refused with DeliveryUnknown beyond them or for a
    grant with none; the derivation the contract's inspections follow is version 3."""
    psb, hrss = practice.dept("PSB"), practice.dept("HRSS")
    grant = practice.ledger.grant(psb, practice.ledger.agreement(psb, hrss))
    practice.anchors.send(psb, "anchorBatch", grant, 0, 3, os.urandom(32))
    delivery, _ = practice.ledger.deliver(psb, grant)
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    opened = practice.send(
        practice.auditor, "openInspection", *practice.closed_period(), 4, head + 2, now + 2
    )
    inspection = opened.event("InspectionOpened").args["inspectionId"]
    while w3.eth.block_number <= head + 2:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    practice.send(psb, "drawSample", inspection)
    assert practice.call("sampleVersion") == 3
    for unknown in (_slot(grant, 3), _slot(grant + 1000, 0)):
        with reverts("DeliveryUnknown", deliveryId=unknown):
            practice.send(
                practice.auditor, "recordOutcome", inspection, unknown, InspectionOutcome.PASSED, ZERO
            )
    for key in (_slot(grant, 2), delivery):
        recorded = practice.send(
            practice.auditor, "recordOutcome", inspection, key, InspectionOutcome.PASSED, TEXT
        )
        assert names(recorded) == ["InspectionOutcomeRecorded"]
        assert recorded.event("InspectionOutcomeRecorded").args["deliveryId"] == key
        assert practice.call("outcome", inspection, key) == InspectionOutcome.PASSED


def test_drawSample_pastTheBlockhashWindow_isExpiredForGood(practice: Practice) -> None:
    """An inspection not drawn while its seed block's hash was known reads Expired and can never be drawn:
    its auditor cannot let it lapse unseen after computing a sample it dislikes, then open another."""
    psb = practice.dept("PSB")
    w3 = practice.ledger.client.w3
    now, head = practice.ledger.now(), w3.eth.block_number
    # Two inspections on one seed block: the block that draws the first is the one that expires the second
    # (no snapshot and revert, whose handling of the reverted blocks' transactions is the node's own).
    seed_block = head + 3
    drawn_one, lapsed = (
        practice.send(practice.auditor, "openInspection", *practice.closed_period(), 3, seed_block, now + DAY)
        .event("InspectionOpened")
        .args["inspectionId"]
        for _ in range(2)
    )
    # The last block whose next one may still draw it: BLOCKHASH reaches back 256 blocks from the draw's.
    w3.provider.make_request("anvil_mine", [hex(seed_block + 255 - w3.eth.block_number)])  # type: ignore[arg-type]
    assert [practice.inspection(i).status for i in (drawn_one, lapsed)] == [InspectionStatus.OPEN] * 2
    drawn = practice.send(psb, "drawSample", drawn_one)
    assert drawn.block_number == seed_block + 256  # the last block that can draw it
    assert drawn.event("InspectionDrawn").args["seed"] == bytes(w3.eth.get_block(seed_block)["hash"])

    stored = practice.inspection(lapsed)
    assert stored.status == InspectionStatus.EXPIRED and stored.seed == ZERO
    for anyone in (psb, practice.auditor):
        with reverts("PracticeInspectionStatus", inspectionId=lapsed, status=InspectionStatus.EXPIRED):
            practice.send(anyone, "drawSample", lapsed)
    with reverts("PracticeInspectionStatus", status=InspectionStatus.EXPIRED):
        practice.send(
            practice.auditor, "recordOutcome", lapsed, os.urandom(32), InspectionOutcome.PASSED, ZERO
        )
    assert practice.call("inspectionCount") >= lapsed  # it stays on the ledger
