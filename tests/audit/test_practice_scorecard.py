"""The scorecard's practice indicators on hand-made facts: demand met (answered with a resource that was then
delivered to the publisher), evaluations' averages and counts, inspection outcomes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from node.audit.scorecard import DeliveryFact, Facts, ReceiptBatchFact, compute_scorecard
from node.practice import (
    AnswerRecord,
    DemandHistory,
    DemandRecord,
    EvaluationRecord,
    InspectionRecord,
    OutcomeRecord,
    PracticeFacts,
    RejectionRecord,
    SampledRecord,
)
from node.types import (
    PRESENTATION_NOTICE_S,
    ChainPosition,
    DemandAnswer,
    InspectionOutcome,
    InspectionStatus,
    ScoredSide,
)

Z = b"\x00" * 32
PSB, HRSS, CIVIL = 1, 2, 4
#: A presentation deadline well past the presentation notice from the epoch.
DEADLINE = 1_000_000


def demand(ident: int, publisher: int, addressee: int, answer: DemandAnswer, *, resource: int = 0,
           answered_by: int = 0, published: int = 100, answered: int = 200,
           due: int = 10_000) -> DemandRecord:  # fmt: skip
    return DemandRecord(
        ident, publisher, addressee, published, due, 5, b"\x01" * 32, answer,
        answered_by or (addressee if answer is not DemandAnswer.NONE else 0),
        answered if answer is not DemandAnswer.NONE else 0, resource,
        3 if answer is DemandAnswer.DECLINED else 0, Z,
    )  # fmt: skip


def delivery(resource: int, consumer: int, at: int) -> DeliveryFact:
    return DeliveryFact(f"0x{resource:02x}{consumer:02x}{at:x}", resource, HRSS, consumer, at)


PRACTICE = PracticeFacts(
    demands=[
        demand(1, PSB, HRSS, DemandAnswer.NEW_RESOURCE, resource=7),  # delivered after the answer: met
        demand(2, PSB, HRSS, DemandAnswer.EXISTING_RESOURCE, resource=3),  # delivered before only: not met
        demand(3, CIVIL, HRSS, DemandAnswer.DECLINED),
        demand(4, CIVIL, HRSS, DemandAnswer.NONE),
        demand(
            5, PSB, 0, DemandAnswer.NEW_RESOURCE, resource=8, answered_by=HRSS
        ),  # to no one, HRSS answered
        demand(6, PSB, HRSS, DemandAnswer.NEW_RESOURCE, resource=9, published=5_000),  # outside the period
        demand(7, HRSS, PSB, DemandAnswer.NONE),
    ],
    evaluations=[
        EvaluationRecord(1, 0, ScoredSide.PROVIDER, PSB, HRSS, (5, 4, 3), Z, 10, 300),
        EvaluationRecord(2, 0, ScoredSide.PROVIDER, CIVIL, HRSS, (4, 4, 4), Z, 11, 310),
        EvaluationRecord(1, 0, ScoredSide.CONSUMER, HRSS, PSB, (2,), Z, 12, 320),
    ],
    inspections=[
        InspectionRecord(1, "0xa", InspectionStatus.DRAWN, 3, 0, 90, 15, 500, b"\x05" * 32),
        InspectionRecord(2, "0xa", InspectionStatus.EXPIRED, 3, 0, 90, 30, 500, Z, expired_at=600),
        InspectionRecord(3, "0xa", InspectionStatus.EXPIRED, 3, 0, 90, 40, 500, Z, expired_at=1_200),
        InspectionRecord(4, "0xa", InspectionStatus.OPEN, 3, 0, 90, 2_000, 500, Z),
    ],
    outcomes=[
        OutcomeRecord(1, b"\x00\x00\x00\x02" + b"\x01" * 28, HRSS, InspectionOutcome.PASSED, Z, 20, 400),
        OutcomeRecord(1, b"\x00\x00\x00\x02" + b"\x02" * 28, HRSS, InspectionOutcome.FAILED, Z, 20, 400),
        OutcomeRecord(
            1, b"\x00\x00\x00\x02" + b"\x03" * 28, HRSS, InspectionOutcome.NOT_PRESENTED, Z, 21, 410
        ),
        OutcomeRecord(1, b"\x00\x00\x00\x01" + b"\x04" * 28, PSB, InspectionOutcome.PASSED, Z, 21, 410),
    ],
)
FACTS = Facts(deliveries=[delivery(7, PSB, 250), delivery(3, PSB, 150), delivery(8, CIVIL, 260)])


def card(department: int | None) -> dict[str, Any]:
    part: dict[str, Any] = compute_scorecard(
        FACTS, department=department, period_from=0, period_to=1_000, now=2_000, practice=PRACTICE
    )["practice"]
    return part


def test_demands_received_and_met() -> None:
    hrss = card(HRSS)["demands_received"]
    # Received: 1, 2, 3, 4 (addressed) and 5 (to no one, answered by HRSS); 6 is outside the period.
    assert hrss == {"total": 5, "new_resource": 2, "existing_resource": 1, "declined": 1, "open": 1,
                    "met": 1, "met_rate": 0.2, "unmet_demand_ids": [2, 3, 4, 5], "overdue": 0,
                    "overdue_demand_ids": []}  # fmt: skip
    # 6 is outside; 5 went to CIVIL
    assert card(PSB)["demands_published"] == {"total": 3, "met": 1, "withdrawn": 0, "answers_rejected": 0}
    assert card(None)["demands_received"]["total"] == 6


def test_a_rejected_answer_never_meets_its_demand_and_a_withdrawn_demand_counts_against_no_one() -> None:
    """CIVIL answered PSB's demand to no one with an unrelated resource, delivered to PSB after: before, the
    demand was CIVIL's, met, and no one else could answer it. PSB rejected it at 300; HRSS answered at 400
    with resource 8, delivered at 450: the demand is HRSS's and met, CIVIL's rejected answer counts on no
    card but as rejected. PSB withdrew demand 2 to HRSS at 500, past its due date: not unmet, not overdue.
    A card evaluated at 350 sees the rejection and no answer yet; one at 250 sees CIVIL's answer standing."""
    unfit = AnswerRecord(DemandAnswer.EXISTING_RESOURCE, CIVIL, 200, 9, 0, Z, ChainPosition(20, 0))
    fit = AnswerRecord(DemandAnswer.NEW_RESOURCE, HRSS, 400, 8, 0, Z, ChainPosition(40, 0))
    to_no_one = demand(1, PSB, 0, DemandAnswer.NONE).with_history(
        DemandHistory([unfit, fit], [RejectionRecord(unfit, 1, Z, 300, ChainPosition(30, 0))])
    )
    withdrawn = replace(demand(2, PSB, HRSS, DemandAnswer.NONE, due=450), withdrawn_at=500)
    practice = PracticeFacts(demands=[to_no_one, withdrawn], evaluations=[], inspections=[], outcomes=[])
    facts = Facts(deliveries=[delivery(9, PSB, 250), delivery(8, PSB, 450)])

    def card_at(department: int | None, as_of: int) -> dict[str, Any]:
        part: dict[str, Any] = compute_scorecard(
            facts, department=department, period_from=0, period_to=as_of, now=2_000, practice=practice
        )["practice"]
        return part

    hrss, civil, psb = (card_at(d, 1_000) for d in (HRSS, CIVIL, PSB))
    assert (hrss["demands_received"]["total"], hrss["demands_received"]["met"]) == (1, 1)
    assert hrss["demand_answers_rejected"] == {"total": 0, "demand_ids": []}
    assert civil["demands_received"]["total"] == 0
    assert civil["demand_answers_rejected"] == {"total": 1, "demand_ids": [1]}
    assert psb["demands_published"] == {"total": 2, "met": 1, "withdrawn": 1, "answers_rejected": 1}
    consortium = card_at(None, 1_000)["demands_received"]
    assert (consortium["total"], consortium["unmet_demand_ids"], consortium["overdue_demand_ids"]) == (
        1,
        [],
        [],
    )
    # Before the withdrawal demand 2 was HRSS's, unanswered past its due date: overdue and unmet then.
    before = card_at(HRSS, 480)["demands_received"]
    assert (before["total"], before["unmet_demand_ids"], before["overdue_demand_ids"]) == (2, [2], [2])
    rejected_not_answered = card_at(None, 350)
    assert rejected_not_answered["demands_received"]["open"] == 2
    assert rejected_not_answered["demand_answers_rejected"]["demand_ids"] == [1]
    standing = card_at(CIVIL, 260)
    assert (standing["demands_received"]["met"], standing["demand_answers_rejected"]["total"]) == (1, 0)


def test_a_demand_met_by_anchored_receipts() -> None:
    """A resource delivered at volume, as a batch of anchored receipts rather than ledger deliveries, meets
    the demand it answered all the same; a batch anchored before the answer does not."""
    practice = PracticeFacts(
        demands=[
            demand(1, PSB, HRSS, DemandAnswer.EXISTING_RESOURCE, resource=11),
            demand(2, CIVIL, HRSS, DemandAnswer.EXISTING_RESOURCE, resource=12),
        ],
        evaluations=[], inspections=[], outcomes=[],
    )  # fmt: skip
    facts = Facts(
        receipt_batches=[
            ReceiptBatchFact(11, HRSS, PSB, 250, 4_096),
            ReceiptBatchFact(12, HRSS, CIVIL, 150, 3),
        ]
    )
    hrss = compute_scorecard(facts, department=HRSS, period_from=0, period_to=1_000, now=2_000,
                             practice=practice)["practice"]  # fmt: skip
    assert (hrss["demands_received"]["met"], hrss["demands_received"]["met_rate"]) == (1, 0.5)


def test_deliveries_count_anchored_receipt_batches() -> None:
    """The deliveries section counts deliveries at volume (batches of anchored receipts) as demand met does,
    apart from ledger deliveries: sent by the provider, received by the consumer, in the period only."""
    facts = Facts(
        deliveries=[delivery(11, PSB, 100)],
        receipt_batches=[
            ReceiptBatchFact(11, HRSS, PSB, 250, 4_096),
            ReceiptBatchFact(12, HRSS, CIVIL, 150, 3),
            ReceiptBatchFact(11, HRSS, PSB, 1_500, 7),  # after the period
        ],
    )

    def deliveries(department: int | None) -> dict[str, object]:
        card = compute_scorecard(facts, department=department, period_from=0, period_to=1_000, now=2_000)
        return dict(card["deliveries"])

    assert deliveries(HRSS) == {"sent": 1, "received": 0, "acknowledged": 0, "acknowledgement_rate": 0.0,
                                "disputed": 0, "receipt_batches_sent": 2, "receipts_sent": 4_099,
                                "receipt_batches_received": 0, "receipts_received": 0}  # fmt: skip
    psb = deliveries(PSB)
    assert (psb["sent"], psb["received"], psb["receipt_batches_received"], psb["receipts_received"]) == (
        0,
        1,
        1,
        4_096,
    )
    assert (deliveries(None)["receipt_batches_sent"], deliveries(None)["receipts_sent"]) == (2, 4_099)


def test_evaluations_and_inspections() -> None:
    hrss = card(HRSS)
    assert hrss["evaluations"]["as_provider"] == {"count": 2, "scorers": 2, "reciprocal": 0,
                                                  "timeliness": 4.5, "completeness": 4.0,
                                                  "accuracy": 3.5}  # fmt: skip
    assert hrss["evaluations"]["as_consumer"] == {
        "count": 0,
        "scorers": 0,
        "reciprocal": 0,
        "purpose_compliance": None,
    }
    assert card(PSB)["evaluations"]["as_consumer"] == {
        "count": 1,
        "scorers": 1,
        "reciprocal": 0,
        "purpose_compliance": 2.0,
    }
    assert hrss["inspections"] == {"sampled_outcomes": 3, "passed": 1, "failed": 1, "not_presented": 1,
                                   "pass_rate": 0.333333, "expired": 1, "inspected": [], "overdue": 0,
                                   "overdue_deliveries": []}  # fmt: skip
    assert card(None)["inspections"]["sampled_outcomes"] == 4


def test_every_card_names_the_inspections_drawn_in_its_period_with_the_population_sampled() -> None:
    """A sample of two says how much of the inspected period it stood for only beside the population it was
    drawn from: forty deliveries here. An inspection belongs to no department, so every card of the period
    of its draw names it, as an expired one; one drawn after the period (or after the card's evaluation) is
    another period's."""
    drawn = InspectionRecord(1, "0xa", InspectionStatus.DRAWN, 2, 0, 90, 15, 5_000, b"\x05" * 32,
                             drawn_at=350, population_size=40)  # fmt: skip
    later = replace(drawn, inspection_id=2, drawn_at=1_500, population_size=7)
    practice = PracticeFacts(inspections=[drawn, later])

    def inspected(department: int | None, period_to: int = 1_000, now: int = 2_000) -> list[Any]:
        card = compute_scorecard(Facts(), department=department, period_from=0, period_to=period_to, now=now,
                                 practice=practice)["practice"]["inspections"]  # fmt: skip
        return list(card["inspected"])

    one = {"inspection_id": 1, "period_from": 0, "period_to": 90, "sample_size": 2, "population_size": 40}
    assert [inspected(d) for d in (None, PSB, HRSS, CIVIL)] == [[one]] * 4
    assert inspected(HRSS, period_to=2_000) == [one, {**one, "inspection_id": 2, "population_size": 7}]
    assert inspected(HRSS, period_to=300) == []  # drawn after the period


@pytest.mark.parametrize(
    ("record", "period_to", "now", "overdue"),
    [
        (demand(1, PSB, HRSS, DemandAnswer.DECLINED, answered=200, due=150), 1_000, 2_000, True),  # late
        (demand(1, PSB, HRSS, DemandAnswer.DECLINED, answered=200, due=250), 1_000, 2_000, False),
        (demand(1, PSB, HRSS, DemandAnswer.NONE, due=300), 1_000, 2_000, True),  # never answered
        (demand(1, PSB, HRSS, DemandAnswer.NONE, due=10_000), 1_000, 2_000, False),
        # A closed period is a snapshot at its end: due after it, not overdue in it; an answer after the
        # period's end leaves the demand unanswered in that period.
        (demand(1, PSB, HRSS, DemandAnswer.NONE, due=300), 220, 2_000, False),
        (demand(1, PSB, HRSS, DemandAnswer.DECLINED, answered=900, due=300), 500, 2_000, True),
        # An open period ends ahead of the chain's clock: its end is not the moment a due date passes.
        (demand(1, PSB, HRSS, DemandAnswer.NONE, due=500), 10**9, 400, False),
    ],
)
def test_a_demand_answered_late_or_unanswered_past_its_due_date_is_overdue(
    record: DemandRecord, period_to: int, now: int, overdue: bool
) -> None:
    practice = PracticeFacts(demands=[record])
    got = compute_scorecard(Facts(), department=HRSS, period_from=0, period_to=period_to, now=now,
                            practice=practice)["practice"]["demands_received"]  # fmt: skip
    assert (got["overdue"], got["overdue_demand_ids"]) == ((1, [1]) if overdue else (0, []))
    # Counted against the addressee, not the publisher.
    publisher = compute_scorecard(Facts(), department=PSB, period_from=0, period_to=period_to, now=now,
                                  practice=practice)["practice"]["demands_received"]  # fmt: skip
    assert publisher["overdue"] == 0


def test_each_pair_of_departments_weighs_once_in_the_averages() -> None:
    """PSB and HRSS with three agreements between them (or three periods of one) give HRSS three 5s; CIVIL,
    with one, gives it a 1. The plain mean of timeliness, 4.0, is mostly PSB's view; each pair weighing once
    gives 3.0."""
    by_psb = [EvaluationRecord(a, 0, ScoredSide.PROVIDER, PSB, HRSS, (5, 5, 5), Z, a, 300) for a in (1, 2, 3)]
    evaluations = [*by_psb, EvaluationRecord(4, 0, ScoredSide.PROVIDER, CIVIL, HRSS, (1, 2, 3), Z, 20, 400)]
    practice = PracticeFacts(evaluations=evaluations)
    got = compute_scorecard(Facts(), department=HRSS, period_from=0, period_to=1_000, now=2_000,
                            practice=practice)["practice"]["evaluations"]["as_provider"]  # fmt: skip
    assert got == {
        "count": 4,
        "scorers": 2,
        "reciprocal": 0,
        "timeliness": 3.0,
        "completeness": 3.5,
        "accuracy": 4.0,
    }


def test_a_sampled_delivery_past_its_deadline_without_an_outcome_is_overdue_on_its_providers_card() -> None:
    """Inspection 1 (deadline 500) drew three of HRSS's deliveries and one of PSB's; the auditor recorded
    the outcome of HRSS's first at 400 and of the second at 700, after the deadline, and never the third's.
    Until an outcome is recorded, the delivery counts as overdue on its provider's card, and nowhere else."""
    hrss_1, hrss_2, hrss_3 = (b"\x00\x00\x00\x02" + bytes([n]) * 28 for n in (1, 2, 3))
    psb_1 = b"\x00\x00\x00\x01" + b"\x04" * 28
    practice = PracticeFacts(
        inspections=[InspectionRecord(1, "0xa", InspectionStatus.DRAWN, 4, 0, 90, 15, 500, b"\x05" * 32)],
        outcomes=[
            OutcomeRecord(1, hrss_1, HRSS, InspectionOutcome.PASSED, Z, 20, 400),
            OutcomeRecord(1, hrss_2, HRSS, InspectionOutcome.NOT_PRESENTED, Z, 30, 700),
        ],
        sampled=[SampledRecord(1, d, p, 500) for d, p in ((hrss_1, HRSS), (hrss_2, HRSS), (hrss_3, HRSS),
                                                           (psb_1, PSB))],
    )  # fmt: skip

    def overdue(department: int | None, period_to: int, now: int = 2_000) -> list[str]:
        card = compute_scorecard(Facts(), department=department, period_from=0, period_to=period_to, now=now,
                                 practice=practice)["practice"]["inspections"]  # fmt: skip
        assert card["overdue"] == len(card["overdue_deliveries"])
        return [d["delivery_id"] for d in card["overdue_deliveries"]]

    assert overdue(HRSS, 1_000) == ["0x" + hrss_3.hex()]
    assert overdue(HRSS, 600) == ["0x" + d.hex() for d in (hrss_2, hrss_3)]  # as it stood at 600
    assert overdue(HRSS, 1_000, now=500) == []  # the deadline not passed yet by the chain's clock
    assert overdue(HRSS, 400) == []  # a deadline after the period is another period's
    assert overdue(PSB, 1_000) == ["0x" + psb_1.hex()]
    assert len(overdue(None, 1_000)) == 2 and overdue(CIVIL, 1_000) == []


@pytest.mark.parametrize(
    ("drawn_at", "overdue_on_a_card"),
    [(DEADLINE + 100, False), (DEADLINE - PRESENTATION_NOTICE_S + 1, False),
     (DEADLINE - PRESENTATION_NOTICE_S, True)],
    ids=["after-the-deadline", "a-second-short-of-the-notice", "the-notice-to-the-second"],
)  # fmt: skip
def test_a_sample_drawn_with_less_than_the_notice_left_is_overdue_on_no_card(
    drawn_at: int, overdue_on_a_card: bool
) -> None:
    """Inspection 1's deadline is ``DEADLINE``: drawn after it, or less than ``PRESENTATION_NOTICE_S`` before
    it, its providers learned the sample with no time to present, and the contract takes no not-presented
    outcome for it, so its unrecorded delivery is overdue on no card; drawn with the notice left, it is."""
    hrss_1 = b"\x00\x00\x00\x02" + b"\x01" * 28
    practice = PracticeFacts(
        inspections=[
            InspectionRecord(1, "0xa", InspectionStatus.DRAWN, 1, 0, 90, 15, DEADLINE, b"\x05" * 32)
        ],
        sampled=[SampledRecord(1, hrss_1, HRSS, DEADLINE, drawn_at=drawn_at)],
    )
    card = compute_scorecard(Facts(), department=None, period_from=0, period_to=2 * DEADLINE,
                             now=3 * DEADLINE, practice=practice)["practice"]["inspections"]  # fmt: skip
    shown = [d["delivery_id"] for d in card["overdue_deliveries"]]
    assert shown == (["0x" + hrss_1.hex()] if overdue_on_a_card else [])


def test_a_delivery_inspected_again_counts_once_by_its_first_outcome() -> None:
    """HRSS's delivery 1 failed inspection 1 and was passed by inspections 2 and 3 of the same period; its
    delivery 2 was not presented to inspections 4 and 5. Per outcome the card read 2 passed, 1 failed and 2
    not presented (pass rate 0.4); each delivery once, by its first outcome, it reads 1 failed and 1 not
    presented (0.0), and the same outcomes recorded in another order read by that order."""
    one, two = b"\x00\x00\x00\x02" + b"\x01" * 28, b"\x00\x00\x00\x02" + b"\x02" * 28
    recorded = [(1, one, InspectionOutcome.FAILED), (2, one, InspectionOutcome.PASSED),
                (3, one, InspectionOutcome.PASSED), (4, two, InspectionOutcome.NOT_PRESENTED),
                (5, two, InspectionOutcome.NOT_PRESENTED)]  # fmt: skip

    def card(order: list[int]) -> dict[str, Any]:
        outcomes = [OutcomeRecord(i, d, HRSS, o, Z, 20 + block, 400 + block)
                    for block, (i, d, o) in zip(order, recorded, strict=True)]  # fmt: skip
        facts = PracticeFacts(outcomes=list(reversed(outcomes)))  # the blocks order them, not the list
        inspections = compute_scorecard(Facts(), department=HRSS, period_from=0, period_to=1_000, now=2_000,
                                        practice=facts)["practice"]["inspections"]  # fmt: skip
        shown = ("sampled_outcomes", "passed", "failed", "not_presented", "pass_rate")
        return {k: inspections[k] for k in shown}

    assert card([0, 1, 2, 3, 4]) == {"sampled_outcomes": 2, "passed": 0, "failed": 1, "not_presented": 1,
                                     "pass_rate": 0.0}  # fmt: skip
    assert card([2, 0, 1, 3, 4])["passed"] == 1  # passed first (inspection 2), then failed: passed


def test_inspections_that_expired_in_the_period_show_on_every_card() -> None:
    """An inspection left undrawn past its seed block's hash counts in the period it expired in, on every
    department's card and the ledger's: its auditor's inaction belongs to no department. One that expired
    after the period, or is still open, does not count."""
    assert {card(d)["inspections"]["expired"] for d in (None, PSB, HRSS, CIVIL)} == {1}


def test_a_closed_period_is_a_snapshot() -> None:
    early = compute_scorecard(FACTS, department=HRSS, period_from=0, period_to=220, now=2_000,
                              practice=PRACTICE)["practice"]  # fmt: skip
    # Evaluated at 220: answers after it are open, the delivery at 250 has not happened, no scores yet.
    assert early["demands_received"]["met"] == 0 and early["evaluations"]["as_provider"]["count"] == 0


def test_without_the_contract_the_section_is_null() -> None:
    assert compute_scorecard(FACTS, department=HRSS, period_from=0, period_to=10, now=20)["practice"] is None


def test_a_demand_to_no_one_answered_after_a_closed_period_stays_off_the_answerers_card() -> None:
    """A demand addressed to no one is the answerer's once it is answered: HRSS's card of a period that
    closed before HRSS answered (at 200) does not hold it, as it did not at the period's end; the card of a
    period that closed after the answer does. A closed period's card never changes afterwards."""
    practice = PracticeFacts(demands=[demand(1, PSB, 0, DemandAnswer.DECLINED, answered_by=HRSS, due=120)])

    def received(period_to: int) -> dict[str, Any]:
        part: dict[str, Any] = compute_scorecard(
            Facts(), department=HRSS, period_from=0, period_to=period_to, now=2_000, practice=practice
        )["practice"]["demands_received"]
        return part

    assert received(150) == {"total": 0, "new_resource": 0, "existing_resource": 0, "declined": 0, "open": 0,
                             "met": 0, "met_rate": None, "unmet_demand_ids": [], "overdue": 0,
                             "overdue_demand_ids": []}  # fmt: skip
    after = received(250)
    assert (after["total"], after["declined"], after["overdue_demand_ids"]) == (1, 1, [1])
    consortium = compute_scorecard(Facts(), department=None, period_from=0, period_to=150, now=2_000,
                                   practice=practice)["practice"]["demands_received"]  # fmt: skip
    assert (consortium["total"], consortium["open"], consortium["overdue_demand_ids"]) == (1, 1, [1])


def test_two_departments_scoring_each_other_in_a_loop_show_as_reciprocal_scorers() -> None:
    """PSB and HRSS each consume the other's data and score each other 5 on everything, every period; CIVIL,
    HRSS's other consumer, scores it 1. Each pair weighs once, so the loop is one voice among HRSS's scorers
    (3.0, not 4.33), and the card says which of its voices it returned (``reciprocal``): PSB's, whose own
    card rests on HRSS's 5s alone."""
    loop = [
        EvaluationRecord(a, p, ScoredSide.PROVIDER, scorer, scored, (5, 5, 5), Z, a, 300 + p)
        for a, scorer, scored in ((1, PSB, HRSS), (2, HRSS, PSB)) for p in (0, 1)
    ]  # fmt: skip
    honest = EvaluationRecord(3, 0, ScoredSide.PROVIDER, CIVIL, HRSS, (1, 1, 1), Z, 30, 400)
    purpose = [
        EvaluationRecord(1, 0, ScoredSide.CONSUMER, HRSS, PSB, (5,), Z, 40, 500),
        EvaluationRecord(2, 0, ScoredSide.CONSUMER, PSB, HRSS, (5,), Z, 41, 500),
        EvaluationRecord(3, 0, ScoredSide.CONSUMER, HRSS, CIVIL, (2,), Z, 42, 500),
    ]
    practice = PracticeFacts(evaluations=[*loop, honest, *purpose])

    def evaluations(department: int | None) -> dict[str, Any]:
        part: dict[str, Any] = compute_scorecard(
            Facts(), department=department, period_from=0, period_to=1_000, now=2_000, practice=practice
        )["practice"]["evaluations"]
        return part

    hrss, psb, civil = evaluations(HRSS), evaluations(PSB), evaluations(CIVIL)
    assert hrss["as_provider"] == {"count": 3, "scorers": 2, "reciprocal": 1, "timeliness": 3.0,
                                   "completeness": 3.0, "accuracy": 3.0}  # fmt: skip
    assert psb["as_provider"] == {"count": 2, "scorers": 1, "reciprocal": 1, "timeliness": 5.0,
                                  "completeness": 5.0, "accuracy": 5.0}  # fmt: skip
    assert (hrss["as_consumer"]["reciprocal"], psb["as_consumer"]["reciprocal"]) == (1, 1)
    assert (civil["as_consumer"]["scorers"], civil["as_consumer"]["reciprocal"]) == (1, 0)
    # The consortium's: of the three scoring pairs as provider, two are the loop's.
    consortium = evaluations(None)
    assert (consortium["as_provider"]["scorers"], consortium["as_provider"]["reciprocal"]) == (3, 2)


def test_practice_read_at_a_later_head_is_cut_back_to_the_block_the_index_holds() -> None:
    """The practice contract is read at the head, the index's facts up to its last block (30 here): what was
    mined after that block (the answer of demand 1 in block 31, an evaluation and an outcome in block 32, the
    draw of inspection 1 in block 33) is not counted yet, though its block time is the index's last second."""
    answered = replace(
        demand(1, PSB, HRSS, DemandAnswer.NEW_RESOURCE, resource=7, answered=300),
        published=ChainPosition(10, 0), answered=ChainPosition(31, 0),
    )  # fmt: skip
    hrss_1 = b"\x00\x00\x00\x02" + b"\x01" * 28
    inspection = InspectionRecord(1, "0xa", InspectionStatus.DRAWN, 1, 0, 90, 29, 250, b"\x05" * 32,
                                  drawn=ChainPosition(33, 1), drawn_at=300)  # fmt: skip
    practice = PracticeFacts(
        demands=[answered],
        evaluations=[EvaluationRecord(1, 0, ScoredSide.PROVIDER, PSB, HRSS, (5, 5, 5), Z, 32, 300)],
        inspections=[inspection],
        outcomes=[OutcomeRecord(1, hrss_1, HRSS, InspectionOutcome.PASSED, Z, 32, 300)],
        sampled=[SampledRecord(1, hrss_1, HRSS, 250, ChainPosition(33, 1), 300)],
    )
    facts = Facts(deliveries=[replace(delivery(7, PSB, 300), position=ChainPosition(30, 2))])

    def practice_card(at_block: int | None) -> dict[str, Any]:
        part: dict[str, Any] = compute_scorecard(
            facts,
            department=HRSS,
            period_from=0,
            period_to=1_000,
            now=300,
            practice=practice,
            at_block=at_block,
        )["practice"]
        return part

    cut = practice_card(30)
    assert (cut["demands_received"]["open"], cut["demands_received"]["met"]) == (1, 0)
    assert cut["evaluations"]["as_provider"]["count"] == 0
    assert (cut["inspections"]["sampled_outcomes"], cut["inspections"]["overdue"]) == (0, 0)
    # Read at block 33, all of it is known: the answer came after the delivery of block 30, which
    # therefore does not meet it, although both are of second 300.
    whole = practice_card(33)
    assert (whole["demands_received"]["new_resource"], whole["demands_received"]["met"]) == (1, 0)
    assert whole["evaluations"]["as_provider"]["count"] == 1
    assert whole["inspections"]["sampled_outcomes"] == 1
