"""Department and consortium scorecards: the indicators government data-sharing assessments use.

:func:`compute_scorecard` is a pure function of the indexed facts (:class:`Facts`), so every figure can be
checked on hand-made rows; :func:`load_facts` reads those facts from the audit database.

Definitions (period = ``[from, to)`` in block time, UTC):

* **resources by share type**: catalogued resources registered before ``to``, by share type as of ``to``.
* **catalog share actually shared**: of those resources, the fraction with at least one delivery recorded in
  the period or an agreement active at some moment of the period (concluded before ``to``, not revoked before
  ``from``). Denominator: all of the department's catalogued resources, ``NotShared`` included. The same by
  share type (``catalog_shared.by_share_type``): how much of what the catalog offers unconditionally, or on
  conditions, is actually shared.
* **requests received / approved / rejected / pending**: requests *made* in the period to the department (as
  provider), by their outcome as of the evaluation time ``min(to - 1, now)``, the period's last second: a
  closed period's scorecard is a snapshot at its end and never changes afterwards (a decision after the period
  end leaves the request pending in that period's figures, one in a block of second ``to`` included: blocks of
  that second may still come once the chain's clock reads ``to``). A request approved on arrival counts as
  the ledger reads it: pending, for the provider to decide within the deadline like any other, while its
  resource is not unconditionally shared (until it is concluded or withdrawn, which fixes its status); the
  provider's decision then is a manual one.
* **withdrawn**: requests of the period withdrawn (by either party) before any decision, as of evaluation
  time: neither pending nor counted against the provider's demand satisfaction; overdue only if the deadline
  had passed before the withdrawal. A request withdrawn after its approval stays approved.
* **overdue**: requests of the period decided after their deadline, or still pending past it at evaluation
  time. Deadline = requested-at + N working days (default 10; Monday-Friday, UTC; public holidays are not
  modelled unless passed as ``holidays``).
* **response time**: decided-at minus requested-at of *manual* decisions; median (midpoint of the two middle
  values for an even count) and p90 (nearest rank). Unconditional resources are approved on arrival
  (``automatic``): they are counted in ``auto_approved`` and left out of response times, which would otherwise
  be flattered by zeros.
* **demand satisfaction per consumer**: requests approved (automatically or not, concluded or not) / requests
  made, per requesting department.
* **deliveries**: recorded in the period (sent as provider / received as consumer); **acknowledgement rate**:
  of the deliveries sent in the period, the fraction acknowledged by the consumer (at any time up to
  evaluation); **disputes**: of those, the number disputed by then. Deliveries at volume, as batches of
  receipts anchored beside the ledger (``POST /receipts``), are counted apart, as demand met counts them:
  **receipt batches** anchored in the period (sent as provider / received as consumer) and the **receipts**
  they hold, leaf counts as anchored (the chain never sees the leaves: a receipt anchored twice past the
  service counts twice; ``dxl audit verify`` of a report carrying the leaves names it ``RECEIPT_DUPLICATE``);
  ``sent``, ``received`` and the acknowledgement rate stay those of ledger deliveries.
* **refused deliveries**: failed ``recordDelivery`` transactions of the department in the period, by reason.

From the sharing practice contract (``practice``; null when it is not deployed):

* **demands received**: demands *published in the period* and *addressed to* the department (or addressed to
  no one and answered by it by evaluation time; the consortium: all demands of the period), by their answer
  as of evaluation time. **Met**: answered with a resource (new or existing) that was then delivered to the
  demand's publisher (a delivery of that resource to it recorded, or a batch of receipts of it anchored,
  after the answer in chain order, block then log index, up to evaluation time). **Demand met rate** =
  met / received: the share of demands made of the department that it actually satisfied; the others (open,
  declined, or answered with a resource not delivered to the publisher yet) are listed by id, for an assessor
  to follow up (``unmet_demand_ids``). **Overdue**: of
  those, the demands answered after their due date, or still unanswered past it at evaluation time (the
  contract takes a late answer, and it meets the demand all the same, but it was late); the ids are listed.
  A demand its publisher withdrew by evaluation time is none of these: it asks nothing of anyone any more. An
  answer its publisher rejected by evaluation time (a resource that does not meet the demand) is no answer:
  the demand reads open, or as answered since, and the addressee's clock runs again from the rejection.
* **demand answers rejected**: the department's answers (the consortium: all answers) to demands of the
  period that their publisher rejected by evaluation time, with the demands' ids: an answer with a resource
  that does not meet the demand counts nowhere else, not even for the department that gave it to a demand
  addressed to no one.
* **demands published**: the department's own demands of the period, how many were met, how many it
  withdrew, and how many answers to them it rejected.
* **evaluations**: scores the department received in the period (as provider: timeliness, completeness,
  accuracy; as consumer: purpose compliance), count and average of each. Each average weighs every pair of
  scoring and scored department once (the mean of each pair's own mean): the contract takes one score per
  side, agreement and 30-day period, so two departments with many agreements between them, or a long
  period, would otherwise outweigh every other department's view of the scored one. ``scorers``: how many
  pairs (on a department's card, how many departments) the averages rest on. ``reciprocal``: how many of
  those pairs the scored department returned in the period, scoring its scorer on the same side (each
  consumes the other's data and scores it). Nothing on chain tells a fair score from a favour returned: two
  departments that score each other 5 in a loop are one voice among the scored one's scorers, and a card
  whose averages rest on reciprocal pairs alone says so.
* **inspections**: outcomes recorded in the period for sampled deliveries the department provided (passed,
  failed, not presented) and the pass rate, each delivery once, by the outcome first recorded for it in the
  period (an auditor may inspect a period as often as it likes, each inspection drawing the same deliveries of
  a narrow one again: one failure is not multiplied, nor is it outweighed by a good delivery passed again);
  **overdue**: its sampled deliveries whose presentation deadline fell in the period and has passed at
  evaluation time with no outcome recorded, listed with their inspection: until the auditor records one (not
  presented, or the verdict of what was presented), they would count nowhere (a sample counts from its draw's
  block: one drawn after the period adds nothing to it; one drawn less than the presentation notice, 3 days,
  before its deadline left no one the time to present and is never overdue); the ledger's inspections that
  expired in the period (never drawn while their seed block's hash was known, so their sample was never fixed;
  whichever department); and **inspected**: the ledger's inspections drawn in the period, each with its
  inspected period, sample size and the population the sample was drawn from (whichever department).

These are evaluated at the period's end in block time (a closed period's figures never change; an open one
counts what the chain holds now), not at this machine's clock.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from node.audit import models as m
from node.audit.errors import InvalidQueryError
from node.audit.queries import departments
from node.practice import DemandRecord, EvaluationRecord, OutcomeRecord, PracticeFacts, presentable
from node.types import ChainPosition, DemandAnswer, InspectionOutcome, InspectionStatus, ScoredSide, ShareType

SHARE_TYPES = {s.value: s.name.lower() for s in ShareType}


@dataclass(frozen=True)
class ResourceFact:
    resource_id: int
    owner: int
    #: The share type it was registered with; ``changes`` says what it became later.
    share_type: int
    registered_at: int
    #: Each ``ResourceUpdated``: (block time, share type), in chain order.
    changes: tuple[tuple[int, int], ...] = ()

    def share_type_at(self, at: int) -> int:
        """The share type as of block time ``at`` (the last change at or before it)."""
        current = self.share_type
        for changed_at, share_type in self.changes:
            if changed_at > at:
                break
            current = share_type
        return current


@dataclass(frozen=True)
class RequestFact:
    request_id: int
    resource_id: int
    provider: int
    consumer: int
    requested_at: int
    decided_at: int | None = None
    outcome: str = "pending"  # pending | approved | rejected
    #: The decision above is the approval on arrival of an unconditionally shared resource.
    automatic: bool = False
    withdrawn_at: int | None = None
    #: Approved on arrival, and decided again by the provider (the decision above) after its resource stopped
    #: being unconditionally shared.
    approved_on_arrival: bool = False
    #: When an agreement was concluded from it: its status is fixed from then on.
    concluded_at: int | None = None


@dataclass(frozen=True)
class AgreementFact:
    agreement_id: int
    resource_id: int
    provider: int
    consumer: int
    concluded_at: int
    revoked_at: int | None = None


@dataclass(frozen=True)
class DeliveryFact:
    delivery_id: str
    resource_id: int | None
    provider: int
    consumer: int
    recorded_at: int
    status: str = "recorded"  # recorded | acknowledged | disputed
    #: When the consumer acknowledged or disputed it (None: not settled, or a hand-made fact of no time).
    settled_at: int | None = None
    #: Where its ``DeliveryRecorded`` log sits (None: a hand-made fact, ordered by its time alone).
    position: ChainPosition | None = None


@dataclass(frozen=True)
class ReceiptBatchFact:
    """A batch of receipts anchored under a grant: deliveries at volume, of the grant's resource."""

    resource_id: int | None
    provider: int
    consumer: int
    anchored_at: int
    leaf_count: int
    #: Where its ``ReceiptBatchAnchored`` log sits (None: a hand-made fact, ordered by its time alone).
    position: ChainPosition | None = None


@dataclass(frozen=True)
class RefusalFact:
    provider: int | None
    consumer: int | None
    at: int
    reason: str


@dataclass
class Facts:
    resources: list[ResourceFact] = field(default_factory=list)
    requests: list[RequestFact] = field(default_factory=list)
    agreements: list[AgreementFact] = field(default_factory=list)
    deliveries: list[DeliveryFact] = field(default_factory=list)
    refusals: list[RefusalFact] = field(default_factory=list)
    receipt_batches: list[ReceiptBatchFact] = field(default_factory=list)
    #: Each admitted department's code by its id: the card names its department by both, however asked.
    department_codes: dict[int, str] = field(default_factory=dict)


def add_working_days(start: int, days: int, holidays: frozenset[date] = frozenset()) -> int:
    """``start`` moved forward by ``days`` working days (Mon-Fri, not in ``holidays``), same time of day."""
    moment = datetime.fromtimestamp(start, UTC)
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5 and moment.date() not in holidays:
            left -= 1
    return int(moment.timestamp())


def answered_late(deadline: int, answered_at: int | None, at: int) -> bool:
    """Whether an answer due by ``deadline`` came after it, or, not given (``answered_at`` None), is still
    missing past it at ``at``: a request's decision, as of evaluation time."""
    return (at if answered_at is None else answered_at) > deadline


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _p90(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)])


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def compute_scorecard(
    facts: Facts,
    *,
    department: int | None,
    period_from: int,
    period_to: int,
    now: int,
    deadline_days: int = 10,
    holidays: frozenset[date] = frozenset(),
    practice: PracticeFacts | None = None,
    at_block: int | None = None,
    reader: int | None = None,
) -> dict[str, Any]:
    """The scorecard of ``department`` (None: the whole consortium) over ``[period_from, period_to)``,
    evaluated at ``min(period_to - 1, now)``. See the module docstring for every definition. The card names
    its department by id and code (``{"id", "code"}``, the code from ``facts.department_codes``; null on the
    consortium's), as a report does, whichever it was asked for by. ``at_block`` is the last block ``facts``
    hold (:func:`load_facts` ``through_block``) and ``now`` its time: ``practice``, read from the chain at a
    later head, is cut back to it (:meth:`PracticeFacts.known_at`).

    ``reader``: the department reading the consortium's card (None: an auditor, who reads everything). Its
    counts stay the consortium's; what the card lists record by record (overdue requests, shared resources,
    sampled deliveries overdue) and by department (demand satisfaction) is narrowed to the reader's own
    exchanges, which are all another department's card would show it of them.

    Raises:
        InvalidQueryError: an empty period or a negative deadline.
    """
    if period_from >= period_to:
        raise InvalidQueryError("period", "from must be before to")
    if deadline_days < 0:
        raise InvalidQueryError("deadline_days", f"must not be negative, got {deadline_days}")
    # The period's last second: ``to`` is outside it, and blocks of second ``to`` may still be mined after the
    # chain's clock reads it, so a closed card evaluated at ``to`` changed with them.
    as_of = min(period_to - 1, now)

    def mine(provider: int | None) -> bool:
        return department is None or provider == department

    def in_period(t: int) -> bool:
        return period_from <= t < period_to

    def shown(*parties: int | None) -> bool:
        """Whether the card lists a record of these parties by id: every record to an auditor and on a
        department's own card, to a department reading the consortium's only records it is party to."""
        return department is not None or reader is None or reader in parties

    resources = [r for r in facts.resources if mine(r.owner) and r.registered_at < period_to]
    share_type = {r.resource_id: r.share_type_at(as_of) for r in resources}
    by_type = Counter(
        SHARE_TYPES.get(share_type[r.resource_id], str(share_type[r.resource_id])) for r in resources
    )
    delivered = {d.resource_id for d in facts.deliveries if in_period(d.recorded_at)}
    agreed = {
        a.resource_id
        for a in facts.agreements
        if a.concluded_at < period_to and (a.revoked_at is None or a.revoked_at >= period_from)
    }
    shared = [r for r in resources if r.resource_id in delivered or r.resource_id in agreed]
    # The resources the reader consumes: shared with it, so listed to it on the consortium's card.
    consumed = {d.resource_id for d in facts.deliveries if d.consumer == reader} | {
        a.resource_id for a in facts.agreements if a.consumer == reader
    }
    shared_by_type = Counter(
        SHARE_TYPES.get(share_type[r.resource_id], str(share_type[r.resource_id])) for r in shared
    )

    received = [q for q in facts.requests if mine(q.provider) and in_period(q.requested_at)]
    catalog = {r.resource_id: r for r in facts.resources}

    def on_arrival(q: RequestFact) -> bool:
        """Whether ``q``, approved on arrival, still reads approved as of evaluation. The ledger reads such an
        approval as pending, for the provider to decide, while its resource is not unconditionally shared,
        until the request is concluded or withdrawn, which fixes its status."""
        if not (q.automatic or q.approved_on_arrival):
            return False
        fixed = min(t for t in (as_of, q.concluded_at, q.withdrawn_at) if t is not None)
        resource = catalog.get(q.resource_id)
        return resource is None or resource.share_type_at(fixed) == ShareType.UNCONDITIONAL

    def manual(q: RequestFact) -> bool:
        """Whether the provider decided ``q`` itself by evaluation time."""
        return q.decided_at is not None and q.decided_at <= as_of and not q.automatic

    def decided(q: RequestFact) -> int | None:
        if manual(q):
            return q.decided_at
        return q.requested_at if on_arrival(q) else None

    def outcome(q: RequestFact) -> str:
        """``q``'s decision as of evaluation (only for a request :func:`decided` by then)."""
        return q.outcome if manual(q) else "approved"

    def withdrawn(q: RequestFact) -> int | None:
        """When ``q`` was withdrawn undecided, as of evaluation (None: decided first, or not withdrawn)."""
        if q.withdrawn_at is None or q.withdrawn_at > as_of or decided(q) is not None:
            return None
        return q.withdrawn_at

    decided_by_as_of = [q for q in received if decided(q) is not None]
    approved = [q for q in decided_by_as_of if outcome(q) == "approved"]
    rejected = [q for q in decided_by_as_of if outcome(q) == "rejected"]
    withdrawn_undecided = {q.request_id for q in received if withdrawn(q) is not None}
    pending = [q for q in received if decided(q) is None and q.request_id not in withdrawn_undecided]
    overdue: list[RequestFact] = []
    for q in received:
        deadline = add_working_days(q.requested_at, deadline_days, holidays)
        # The provider's clock stops at a decision or at the request's withdrawal.
        if answered_late(deadline, decided(q) or withdrawn(q), as_of):
            overdue.append(q)
    response_times = [q.decided_at - q.requested_at for q in decided_by_as_of if manual(q) and q.decided_at]
    per_consumer: dict[int, dict[str, Any]] = {}
    approved_set = set(approved)  # membership below, once per request: a list would make it quadratic
    for q in received:
        if q.request_id in withdrawn_undecided:  # withdrawn before the provider answered: no demand left
            continue
        entry = per_consumer.setdefault(q.consumer, {"requested": 0, "satisfied": 0})
        entry["requested"] += 1
        entry["satisfied"] += q in approved_set
    for entry in per_consumer.values():
        entry["rate"] = _rate(entry["satisfied"], entry["requested"])

    sent = [d for d in facts.deliveries if mine(d.provider) and in_period(d.recorded_at)]
    received_deliveries = [
        d
        for d in facts.deliveries
        if department is not None and d.consumer == department and in_period(d.recorded_at)
    ]
    batches_sent = [b for b in facts.receipt_batches if mine(b.provider) and in_period(b.anchored_at)]
    batches_received = [
        b
        for b in facts.receipt_batches
        if department is not None and b.consumer == department and in_period(b.anchored_at)
    ]

    def settled(d: DeliveryFact) -> str:
        """``d``'s status as of evaluation: a settlement after it is not known yet then."""
        return d.status if d.settled_at is None or d.settled_at <= as_of else "recorded"

    acknowledged = sum(settled(d) == "acknowledged" for d in sent)
    disputed = sum(settled(d) == "disputed" for d in sent)
    refused = [f for f in facts.refusals if mine(f.provider) and in_period(f.at)]

    return {
        "department": None
        if department is None
        else {"id": department, "code": facts.department_codes.get(department)},
        "period": {"from": period_from, "to": period_to, "evaluated_at": as_of},
        "response_deadline_working_days": deadline_days,
        "resources": {"total": len(resources), "by_share_type": dict(sorted(by_type.items()))},
        "catalog_shared": {
            "shared": len(shared),
            "total": len(resources),
            "rate": _rate(len(shared), len(resources)),
            "resource_ids": sorted(
                r.resource_id for r in shared if shown(r.owner) or r.resource_id in consumed
            ),
            "by_share_type": {
                kind: {
                    "shared": shared_by_type[kind],
                    "total": total,
                    "rate": _rate(shared_by_type[kind], total),
                }
                for kind, total in sorted(by_type.items())
            },
        },
        "requests": {
            "received": len(received),
            "approved": len(approved),
            "auto_approved": sum(not manual(q) for q in approved),
            "rejected": len(rejected),
            "pending": len(pending),
            "withdrawn": len(withdrawn_undecided),
            "overdue": len(overdue),
            "overdue_request_ids": sorted(q.request_id for q in overdue if shown(q.provider, q.consumer)),
        },
        "response_time_seconds": {
            "decisions": len(response_times),
            "median": _median(response_times),
            "p90": _p90(response_times),
        },
        "demand_satisfaction": {str(k): v for k, v in sorted(per_consumer.items()) if shown(k)},
        "deliveries": {
            "sent": len(sent),
            "received": len(received_deliveries),
            "acknowledged": acknowledged,
            "acknowledgement_rate": _rate(acknowledged, len(sent)),
            "disputed": disputed,
            "receipt_batches_sent": len(batches_sent),
            "receipts_sent": sum(b.leaf_count for b in batches_sent),
            "receipt_batches_received": len(batches_received),
            "receipts_received": sum(b.leaf_count for b in batches_received),
        },
        "refused_deliveries": {
            "total": len(refused),
            "by_reason": dict(sorted(Counter(f.reason for f in refused).items())),
        },
        "practice": None
        if practice is None
        # Evaluated when the ledger's facts are: practice facts read from the chain at a later head than the
        # index's last block count up to that block's time, beside the deliveries they refer to.
        else practice_indicators(
            practice if at_block is None else practice.known_at(at_block),
            facts,
            department=department,
            period_from=period_from,
            period_to=period_to,
            as_of=as_of,
            now=as_of,
            reader=reader,
        ),
    }


def _pair_mean(evaluations: list[EvaluationRecord], index: int) -> float | None:
    """The mean over (scorer, scored) pairs of each pair's mean score ``scores[index]``: every pair weighs
    once, however many agreements and periods its scores came from."""
    by_pair: dict[tuple[int, int], list[int]] = {}
    for e in evaluations:
        by_pair.setdefault((e.scorer, e.scored), []).append(e.scores[index])
    return round(statistics.fmean(statistics.fmean(v) for v in by_pair.values()), 3) if by_pair else None


def _scorers(evaluations: list[EvaluationRecord]) -> int:
    return len({(e.scorer, e.scored) for e in evaluations})


def _reciprocal(evaluations: list[EvaluationRecord], side: list[EvaluationRecord]) -> int:
    """How many of the (scorer, scored) pairs of ``evaluations`` the scored department returned, scoring its
    scorer on the same side in ``side`` (the period's scores of that side, every department's)."""
    given = {(e.scorer, e.scored) for e in side}
    return len({(e.scorer, e.scored) for e in evaluations if (e.scored, e.scorer) in given})


def practice_indicators(
    practice: PracticeFacts,
    facts: Facts,
    *,
    department: int | None,
    period_from: int,
    period_to: int,
    as_of: int,
    now: int,
    reader: int | None = None,
) -> dict[str, Any]:
    """The demand, evaluation and inspection indicators of the module docstring, from facts up to ``as_of``;
    a due date is passed by ``min(as_of, now)`` (an open period's end lies ahead of the chain's clock).
    ``reader`` as for :func:`compute_scorecard`: a department reading the consortium's card is listed the
    sampled deliveries it provided (as it reads an inspection's sample); demands are read by every member."""

    def in_period(t: int) -> bool:
        return period_from <= t < period_to

    # When each resource reached each consumer: ledger deliveries, and batches of anchored receipts (the
    # volume path delivers as surely).
    delivered = [(x.resource_id, x.consumer, x.recorded_at, x.position) for x in facts.deliveries] + [
        (b.resource_id, b.consumer, b.anchored_at, b.position) for b in facts.receipt_batches
    ]

    def after_answer(d: DemandRecord, at: int, position: ChainPosition | None) -> bool:
        """Whether a delivery at ``at`` / ``position`` came after ``d``'s answer. By chain position: a block
        time is a whole second that several blocks share, and a delivery mined before the answer in the same
        second did not meet it. Facts without a position (hand-made) by time, a same-second pair not."""
        if position is not None and d.answered is not None:
            return position > d.answered
        return at > d.answered_at

    def met(d: DemandRecord) -> bool:
        if not d.answered_with_resource or d.answered_at > as_of:
            return False
        return any(
            resource == d.resource_id and consumer == d.publisher and at <= as_of
            and after_answer(d, at, position)
            for resource, consumer, at, position in delivered
        )  # fmt: skip

    # Each demand as it stood at evaluation time: a closed period's card neither gains an answer given after
    # its end nor loses one rejected after it.
    demands = [d.as_of(as_of) for d in practice.demands if in_period(d.published_at)]
    # A demand to no one becomes its answerer's when answered, not before: the chain's answer is read at its
    # head, and a closed period's card must not gain a demand answered after the period's end.
    received = [
        d for d in demands
        if not d.withdrawn_at
        and (department in (None, d.addressee)
             or (d.addressee == 0 and d.answered_by == department and d.answered_at <= as_of))
    ]  # fmt: skip
    published = [d for d in demands if department is not None and d.publisher == department]
    rejected = [
        d.demand_id for d in demands for r in d.rejections
        if department in (None, r.rejected_answer.answered_by)
    ]  # fmt: skip

    def answer(d: Any) -> DemandAnswer:
        return d.answer if d.answered_at <= as_of else DemandAnswer.NONE

    unmet_received = sorted(d.demand_id for d in received if not met(d))
    met_received = len(received) - len(unmet_received)
    overdue_received = sorted(d.demand_id for d in received if d.overdue(min(as_of, now)))
    evaluations = [e for e in practice.evaluations if in_period(e.recorded_at) and e.recorded_at <= as_of]
    providers = [e for e in evaluations if e.side is ScoredSide.PROVIDER]
    consumers = [e for e in evaluations if e.side is ScoredSide.CONSUMER]
    as_provider = [e for e in providers if department in (None, e.scored)]
    as_consumer = [e for e in consumers if department in (None, e.scored)]
    # A delivery counts once, by the outcome first recorded for it in the period (block order; within a block,
    # the logs' order the list keeps): inspections of a period are the auditor's to open, as many as it
    # likes, and each draws the same few deliveries of a narrow one again. Counted per outcome, one delivery
    # not presented counted as often as it was drawn, and a good one passed again outweighed any failure.
    first: dict[bytes, OutcomeRecord] = {}
    for o in sorted(practice.outcomes, key=lambda o: o.block_number):
        if in_period(o.recorded_at) and o.recorded_at <= as_of and department in (None, o.provider):
            first.setdefault(o.delivery_id, o)
    outcomes = list(first.values())
    by_outcome = Counter(o.outcome for o in outcomes)
    # A sampled delivery past its presentation deadline whose outcome is not recorded counts nowhere above:
    # neither passed, failed nor not presented, it would show on no card, whoever let it lapse.
    clock = min(as_of, now)
    recorded = {(o.inspection_id, o.delivery_id) for o in practice.outcomes if o.recorded_at <= clock}
    # A sample is known from its draw on: one drawn after a closed period's end (its seed block may lie
    # inside the period) adds nothing to that period's card. One drawn less than the presentation notice
    # before its deadline (or after it) left no one the time to present, and the contract takes no
    # `NotPresented` for it: never overdue.
    unrecorded = sorted(
        (s.inspection_id, "0x" + s.delivery_id.hex(), s.provider) for s in practice.sampled
        if department in (None, s.provider) and in_period(s.present_by) and s.present_by < clock
        and presentable(s.drawn_at, s.present_by)
        and (s.drawn_at is None or (s.drawn_at <= as_of and s.drawn_at < period_to))
        and (s.inspection_id, s.delivery_id) not in recorded
    )  # fmt: skip
    # Inspections belong to no department: every scorecard shows the ledger's, so an auditor who lets them
    # lapse undrawn (a sample it could have read and disliked) is seen whichever card is read.
    expired = [
        i for i in practice.inspections
        if i.expired_at is not None and in_period(i.expired_at) and i.expired_at <= as_of
    ]  # fmt: skip
    # Every inspection drawn in the period, with the population its sample was drawn from: a sample says how
    # much of the inspected period it stood for only beside it (a sample of one from a population of one is
    # no random check). On every card, as expired ones: inspections belong to no department.
    inspected = [
        i for i in practice.inspections
        if i.status is InspectionStatus.DRAWN and i.drawn_at is not None and in_period(i.drawn_at)
        and i.drawn_at <= as_of
    ]  # fmt: skip
    return {
        "demands_received": {
            "total": len(received),
            "new_resource": sum(answer(d) is DemandAnswer.NEW_RESOURCE for d in received),
            "existing_resource": sum(answer(d) is DemandAnswer.EXISTING_RESOURCE for d in received),
            "declined": sum(answer(d) is DemandAnswer.DECLINED for d in received),
            "open": sum(answer(d) is DemandAnswer.NONE for d in received),
            "met": met_received,
            "met_rate": _rate(met_received, len(received)),
            "unmet_demand_ids": unmet_received,
            "overdue": len(overdue_received),
            "overdue_demand_ids": overdue_received,
        },
        "demand_answers_rejected": {"total": len(rejected), "demand_ids": sorted(set(rejected))},
        "demands_published": {
            "total": len(published),
            "met": sum(met(d) for d in published),
            "withdrawn": sum(bool(d.withdrawn_at) for d in published),
            "answers_rejected": sum(len(d.rejections) for d in published),
        },
        "evaluations": {
            "as_provider": {
                "count": len(as_provider),
                "scorers": _scorers(as_provider),
                "reciprocal": _reciprocal(as_provider, providers),
                "timeliness": _pair_mean(as_provider, 0),
                "completeness": _pair_mean(as_provider, 1),
                "accuracy": _pair_mean(as_provider, 2),
            },
            "as_consumer": {
                "count": len(as_consumer),
                "scorers": _scorers(as_consumer),
                "reciprocal": _reciprocal(as_consumer, consumers),
                "purpose_compliance": _pair_mean(as_consumer, 0),
            },
        },
        "inspections": {
            "sampled_outcomes": len(outcomes),
            "passed": by_outcome[InspectionOutcome.PASSED],
            "failed": by_outcome[InspectionOutcome.FAILED],
            "not_presented": by_outcome[InspectionOutcome.NOT_PRESENTED],
            "pass_rate": _rate(by_outcome[InspectionOutcome.PASSED], len(outcomes)),
            "expired": len(expired),
            "inspected": [
                {
                    "inspection_id": i.inspection_id,
                    "period_from": i.period_from,
                    "period_to": i.period_to,
                    "sample_size": i.sample_size,
                    "population_size": i.population_size,
                }
                for i in inspected
            ],
            "overdue": len(unrecorded),
            "overdue_deliveries": [
                {"inspection_id": i, "delivery_id": d}
                for i, d, provider in unrecorded
                if department is not None or reader in (None, provider)
            ],
        },
    }


def load_facts(engine: Engine, *, until: int | None = None, through_block: int | None = None) -> Facts:
    """The facts of the audit database (events up to block time ``until``, exclusive, and up to block
    ``through_block``, inclusive, if given: the index may have followed the chain further meanwhile)."""
    e = m.events.c
    facts = Facts()
    requests: dict[int, dict[str, Any]] = {}
    agreements: dict[int, dict[str, Any]] = {}
    deliveries: dict[str, dict[str, Any]] = {}
    resources: dict[int, dict[str, Any]] = {}
    names = (
        "ResourceRegistered",
        "ResourceUpdated",
        "AccessRequested",
        "RequestApproved",
        "RequestRejected",
        "RequestWithdrawn",
        "AgreementConcluded",
        "AgreementRevoked",
        "DeliveryRecorded",
        "DeliveryAcknowledged",
        "DeliveryDisputed",
        "ReceiptBatchAnchored",
    )
    q = (
        select(
            e.event,
            e.block_time,
            e.request_id,
            e.agreement_id,
            e.resource_id,
            e.provider_id,
            e.consumer_id,
            e.delivery_id,
            e.fields,
            e.block_number,
            e.log_index,
        )
        .where(e.event.in_(names))
        .order_by(e.seq)
    )
    if until is not None:
        q = q.where(e.block_time < until)
    if through_block is not None:
        q = q.where(e.block_number <= through_block)
    with engine.connect() as conn:
        for ev, t, req, agr, res, prov, cons, did, fields, block, log_index in conn.execute(q):
            if ev == "ResourceRegistered":
                resources[res] = {
                    "resource_id": res,
                    "owner": prov,
                    "share_type": json.loads(fields)["shareType"],
                    "registered_at": t,
                    "changes": (),
                }
            elif ev == "ResourceUpdated" and res in resources:
                resources[res]["changes"] += ((t, json.loads(fields)["shareType"]),)
            elif ev == "AccessRequested":
                requests[req] = {
                    "request_id": req,
                    "resource_id": res,
                    "provider": prov,
                    "consumer": cons,
                    "requested_at": t,
                }
            elif ev in ("RequestApproved", "RequestRejected") and req in requests:
                automatic = bool(json.loads(fields).get("automatic", False))
                requests[req].update(
                    decided_at=t,
                    outcome="approved" if ev == "RequestApproved" else "rejected",
                    automatic=automatic,
                    # A decision after an approval on arrival: its resource stopped being unconditional.
                    approved_on_arrival=requests[req].get("automatic", False) or automatic,
                )
            elif ev == "RequestWithdrawn" and req in requests:
                requests[req]["withdrawn_at"] = t
            elif ev == "AgreementConcluded":
                if req in requests:
                    requests[req]["concluded_at"] = t
                agreements[agr] = {
                    "agreement_id": agr,
                    "resource_id": res,
                    "provider": prov,
                    "consumer": cons,
                    "concluded_at": t,
                }
            elif ev == "AgreementRevoked" and agr in agreements:
                agreements[agr]["revoked_at"] = t
            elif ev == "DeliveryRecorded":
                deliveries[did] = {
                    "delivery_id": did,
                    "resource_id": res,
                    "provider": prov,
                    "consumer": cons,
                    "recorded_at": t,
                    "position": ChainPosition(block, log_index),
                }
            elif ev == "ReceiptBatchAnchored":
                leaves = int(json.loads(fields)["leafCount"])
                position = ChainPosition(block, log_index)
                facts.receipt_batches.append(ReceiptBatchFact(res, prov, cons, t, leaves, position))
            elif did in deliveries:
                deliveries[did]["status"] = "acknowledged" if ev == "DeliveryAcknowledged" else "disputed"
                deliveries[did]["settled_at"] = t
        rq = select(
            m.refusals.c.provider_id, m.refusals.c.consumer_id, m.refusals.c.block_time, m.refusals.c.reason
        )
        if through_block is not None:
            rq = rq.where(m.refusals.c.block_number <= through_block)
        for prov, cons, t, reason in conn.execute(rq):
            facts.refusals.append(RefusalFact(prov, cons, t, reason))
    facts.resources = [ResourceFact(**r) for r in resources.values()]
    facts.requests = [RequestFact(**r) for r in requests.values()]
    facts.agreements = [AgreementFact(**a) for a in agreements.values()]
    facts.deliveries = [DeliveryFact(**d) for d in deliveries.values()]
    facts.department_codes = {dept_id: d["code"] for dept_id, d in departments(engine).items()}
    return facts
