"""The sharing practice contract (``SharingPractice``) as typed records: demands, evaluations, inspections.

A value read from the chain becomes a record here, once; the API, the scorecard and the CLI use the records.
Reading is plain views and logs of the practice contract through a :class:`~node.chain.LedgerClient` bound to
it (:func:`node.deploy.practice_client`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from node.chain import LedgerClient
from node.errors import NodeError
from node.types import (
    PRESENTATION_NOTICE_S,
    Agreement,
    ChainPosition,
    DemandAnswer,
    InspectionOutcome,
    InspectionStatus,
    ScoredSide,
    delivery_id_provider,
)
from verifier.onchain import ChainCheckError, LedgerReader
from verifier.sampling import BLOCKHASH_WINDOW, DerivedSample, derive_sample


@dataclass(frozen=True)
class AnswerRecord:
    """One answer a demand was given (a ``DemandAnswered`` event), standing or rejected since."""

    answer: DemandAnswer
    answered_by: int
    answered_at: int
    resource_id: int
    decline_code: int
    answer_hash: bytes
    #: Where its log sits (None: hand-made).
    answered: ChainPosition | None = None


@dataclass(frozen=True)
class RejectionRecord:
    """A resource answer its demand's publisher rejected as not meeting the demand (a
    ``DemandAnswerRejected`` event), with the answer it rejected."""

    rejected_answer: AnswerRecord
    #: A :class:`~node.types.RejectionReason` value.
    reason_code: int
    reason_hash: bytes
    rejected_at: int
    rejected: ChainPosition | None = None


@dataclass(frozen=True)
class Withdrawal:
    """A ``DemandWithdrawn`` log: when (block time) and where."""

    withdrawn_at: int
    withdrawn: ChainPosition | None = None


@dataclass
class DemandHistory:
    """What a demand's logs tell after its publication: its answers and rejections in chain order and its
    withdrawal, if any (what :meth:`DemandRecord.with_history` takes). Built up log by log."""

    answers: list[AnswerRecord] = field(default_factory=list)
    rejections: list[RejectionRecord] = field(default_factory=list)
    withdrawal: Withdrawal | None = None

    def reject(
        self, reason_code: int, reason_hash: bytes, rejected_at: int, rejected: ChainPosition | None
    ) -> None:
        """Add a ``DemandAnswerRejected`` log, with the answer it rejected. A demand's answers and rejections
        alternate (a rejection clears the one answer standing, and a demand takes an answer only while none
        stands), so the n-th rejection is of the n-th answer: read after the answers before it. A rejection
        of no answer read is dropped (the contract logs none)."""
        if len(self.answers) > len(self.rejections):
            answer = self.answers[len(self.rejections)]
            self.rejections.append(RejectionRecord(answer, reason_code, reason_hash, rejected_at, rejected))


@dataclass(frozen=True)
class DemandRecord:
    """One demand as the chain holds it (``Demand`` in ``contracts/src/types/Practice.sol``)."""

    demand_id: int
    publisher: int
    addressee: int  # 0: not known to the publisher
    published_at: int
    due_by: int
    catalog_size: int
    text_hash: bytes
    answer: DemandAnswer
    answered_by: int
    answered_at: int
    resource_id: int
    decline_code: int
    answer_hash: bytes
    #: Where its ``DemandPublished`` and ``DemandAnswered`` logs sit (None: read from the view alone, or not
    #: answered): what the scorecard orders an answer and a delivery by, and cuts a card's facts at.
    published: ChainPosition | None = None
    answered: ChainPosition | None = None
    #: The answers its publisher rejected, in chain order (none: none rejected, or read from the view alone).
    #: A rejected answer is cleared from the fields above and never meets the demand.
    rejections: tuple[RejectionRecord, ...] = ()
    #: Block time its publisher withdrew it at (0: not withdrawn), and where that log sits.
    withdrawn_at: int = 0
    withdrawn: ChainPosition | None = None

    @classmethod
    def from_chain(cls, demand_id: int, raw: Any) -> DemandRecord:
        (publisher, addressee, published_at, due_by, catalog_size, text_hash, answer, answered_by,
         answered_at, resource_id, decline_code, answer_hash) = raw  # fmt: skip
        return cls(
            demand_id, int(publisher), int(addressee), int(published_at), int(due_by), int(catalog_size),
            bytes(text_hash), DemandAnswer(answer), int(answered_by), int(answered_at), int(resource_id),
            int(decline_code), bytes(answer_hash),
        )  # fmt: skip

    def with_answer(self, answer: AnswerRecord | None) -> DemandRecord:
        """This demand with ``answer`` standing (None: unanswered)."""
        if answer is None:
            return replace(self, answer=DemandAnswer.NONE, answered_by=0, answered_at=0, resource_id=0,
                           decline_code=0, answer_hash=b"\x00" * 32, answered=None)  # fmt: skip
        return replace(
            self, answer=answer.answer, answered_by=answer.answered_by, answered_at=answer.answered_at,
            resource_id=answer.resource_id, decline_code=answer.decline_code, answer_hash=answer.answer_hash,
            answered=answer.answered,
        )  # fmt: skip

    def with_history(self, history: DemandHistory) -> DemandRecord:
        """This demand as its logs tell it: the answer standing is the last one, unless a rejection followed
        it; withdrawn if it was."""
        answers, w, rejections = history.answers, history.withdrawal, tuple(history.rejections)
        standing = answers[-1] if len(answers) > len(rejections) else None
        d = replace(self.with_answer(standing), rejections=rejections)
        return d if w is None else replace(d, withdrawn_at=w.withdrawn_at, withdrawn=w.withdrawn)

    def known_at(self, block: int) -> DemandRecord:
        """This demand as it stood at the end of ``block`` (it was published by then): an answer given later
        is not known, one rejected later still stands, a withdrawal later is not made yet. Facts without a
        position (hand-made) are kept."""
        return self._until(lambda position, _time: position is not None and position.block_number > block)

    def as_of(self, at: int) -> DemandRecord:
        """This demand as it stood at block time ``at`` (it was published by then), as :meth:`known_at` by
        block: what a scorecard evaluated at ``at`` counts, whatever its publisher did after."""
        return self._until(lambda _position, time: time > at)

    def _until(self, later: Callable[[ChainPosition | None, int], bool]) -> DemandRecord:
        """This demand without what ``later(position, block time)`` says came later."""
        rejections = tuple(r for r in self.rejections if not later(r.rejected, r.rejected_at))
        d = self
        if len(rejections) < len(self.rejections):
            # The first rejection still to come: its answer stood, if it was given by then.
            answer = self.rejections[len(rejections)].rejected_answer
            d = self.with_answer(None if later(answer.answered, answer.answered_at) else answer)
        elif self.answer is not DemandAnswer.NONE and later(self.answered, self.answered_at):
            d = self.with_answer(None)
        if self.withdrawn_at and later(self.withdrawn, self.withdrawn_at):
            d = replace(d, withdrawn_at=0, withdrawn=None)
        return replace(d, rejections=rejections)

    @property
    def answered_with_resource(self) -> bool:
        return self.answer in (DemandAnswer.NEW_RESOURCE, DemandAnswer.EXISTING_RESOURCE)

    def overdue(self, at: int) -> bool:
        """Whether, as of block time ``at``, the demand was answered after its due date or is unanswered past
        it (an answer after ``at`` is not known yet at ``at``). The contract takes a late answer, which may
        meet the demand all the same: lateness is told, not refused. The addressee's clock stops at its
        answer, as a provider's does at its decision on a request."""
        answered = self.answer is not DemandAnswer.NONE and self.answered_at <= at
        return (self.answered_at if answered else at) > self.due_by


@dataclass(frozen=True)
class EvaluationRecord:
    """One ``EvaluationRecorded`` event: a side of an agreement scored by the other side."""

    agreement_id: int
    period: int
    side: ScoredSide
    scorer: int
    #: The scored department (the agreement's other party).
    scored: int
    #: Provider side: (timeliness, completeness, accuracy); consumer side: (purpose compliance,).
    scores: tuple[int, ...]
    comment_hash: bytes
    block_number: int
    #: Block time of the evaluation.
    recorded_at: int


@dataclass(frozen=True)
class EvaluationPeriod:
    """The practice contract's evaluation period as of a block time: each side of an agreement is scored at
    most once per period, periods numbered from the epoch (``block.timestamp / evaluationPeriod``)."""

    #: Length in seconds, as the deployed contract holds it (``evaluationPeriod()``).
    length: int
    #: The period the chain's clock is in: where a score sent now is recorded, unless a later block is.
    current: int
    #: First second of the current period, and the first of the next.
    starts_at: int
    ends_at: int
    #: The block time it was read at (the chain's latest block's).
    chain_time: int

    @classmethod
    def at(cls, length: int, chain_time: int) -> EvaluationPeriod:
        current = chain_time // length
        return cls(length, current, current * length, (current + 1) * length, chain_time)


def scores_of(side: ScoredSide, args: Any) -> tuple[int, ...]:
    """The scores an ``EvaluationRecorded`` event gives for ``side``, in :attr:`EvaluationRecord.scores`
    order."""
    if side is ScoredSide.PROVIDER:
        return (int(args["timeliness"]), int(args["completeness"]), int(args["accuracy"]))
    return (int(args["purposeCompliance"]),)


@dataclass(frozen=True)
class InspectionRecord:
    """One sampling inspection (``Inspection`` in ``contracts/src/types/Practice.sol``)."""

    inspection_id: int
    auditor: str
    status: InspectionStatus
    sample_size: int
    period_from: int
    period_to: int
    seed_block: int
    present_by: int
    seed: bytes
    #: For an expired inspection, the block time from which it reads expired (its seed block + 256: no later
    #: block can draw it); None otherwise.
    expired_at: int | None = None
    #: For a drawn inspection, where its ``InspectionDrawn`` log sits and that block's time: the sample is
    #: known from there on, not before (None: not drawn, or read from the view alone).
    drawn: ChainPosition | None = None
    drawn_at: int | None = None
    #: For a drawn inspection read with its sample (:meth:`PracticeReader.facts`): how many deliveries and
    #: receipts its period held, the population its sample was drawn from (None: not drawn, or not derived).
    population_size: int | None = None

    @property
    def expired_block(self) -> int:
        """The first block from which it reads expired, if it is never drawn."""
        return self.seed_block + BLOCKHASH_WINDOW

    @classmethod
    def from_chain(cls, inspection_id: int, raw: Any) -> InspectionRecord:
        auditor, status, sample_size, period_from, period_to, seed_block, present_by, seed = raw
        return cls(
            inspection_id, str(auditor), InspectionStatus(status), int(sample_size), int(period_from),
            int(period_to), int(seed_block), int(present_by), bytes(seed),
        )  # fmt: skip


@dataclass(frozen=True)
class OutcomeRecord:
    """One ``InspectionOutcomeRecorded`` event."""

    inspection_id: int
    delivery_id: bytes
    provider: int
    outcome: InspectionOutcome
    evidence_hash: bytes
    block_number: int
    #: Block time the outcome was recorded.
    recorded_at: int


@dataclass(frozen=True)
class RecordedOutcome:
    """What the contract holds of one sampled delivery's outcome: the outcome and the evidence hash recorded
    with it (the SHA-256 of the verdict the service kept for a presentation; zero for none presented)."""

    outcome: InspectionOutcome
    evidence_hash: bytes


@dataclass(frozen=True)
class SampledRecord:
    """A delivery (or receipt slot) a drawn inspection's sample holds, and by when it was to be presented."""

    inspection_id: int
    delivery_id: bytes
    provider: int
    present_by: int
    #: Where its inspection was drawn and that block's time (None: hand-made, known from the start).
    drawn: ChainPosition | None = None
    drawn_at: int | None = None


def presentable(drawn_at: int | None, present_by: int) -> bool:
    """Whether a sample drawn at block time ``drawn_at`` left its providers the time to present by
    ``present_by``: drawn :data:`~node.types.PRESENTATION_NOTICE_S` before it at the latest, as the contract
    judges at the draw (``None``: a hand-made fact of no draw time, taken as drawn in time). Only such a
    sample's deliveries are overdue once the deadline passes, and recorded not presented."""
    return drawn_at is None or drawn_at + PRESENTATION_NOTICE_S <= present_by


def sampled_provider(derived: DerivedSample, drawn: bytes) -> int:
    """The department that delivered a drawn delivery (its id's namespace) or receipt (its batch's: a slot
    names no department)."""
    batch = derived.batches.get(drawn)
    return batch.provider if batch is not None else delivery_id_provider(drawn)


@dataclass
class PracticeFacts:
    """Everything the scorecard reads from the practice contract."""

    demands: list[DemandRecord] = field(default_factory=list)
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    inspections: list[InspectionRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    #: What every drawn inspection sampled, with or without an outcome.
    sampled: list[SampledRecord] = field(default_factory=list)

    def known_at(self, block: int) -> PracticeFacts:
        """These facts as they stood at the end of ``block``: read at a later head, they are cut back to the
        moment the audit index holds, so a card counts the practice and the deliveries at one chain
        position. A demand answered later reads unanswered, an inspection drawn or expired later reads open.
        Facts without a position (hand-made) are kept."""

        def after(position: ChainPosition | None) -> bool:
            return position is not None and position.block_number > block

        demands = [d.known_at(block) for d in self.demands if not after(d.published)]
        inspections = []
        for i in self.inspections:
            if (after(i.drawn)
                    or (i.status is InspectionStatus.EXPIRED and i.expired_block > block)):  # fmt: skip
                i = replace(i, status=InspectionStatus.OPEN, seed=b"\x00" * 32, expired_at=None, drawn=None,
                            drawn_at=None, population_size=None)  # fmt: skip
            inspections.append(i)
        return PracticeFacts(
            demands,
            [e for e in self.evaluations if e.block_number <= block],
            inspections,
            [o for o in self.outcomes if o.block_number <= block],
            [s for s in self.sampled if not after(s.drawn)],
        )


class PracticeReader:
    """Reads the practice contract from its deployment block ``from_block``; ``ledger`` answers who the
    parties of an agreement are, and its deliveries are read from ``ledger_from_block``, the ledger's
    deployment block (the practice contract may have been deployed long after it: read from there, an
    inspection's population would lack the deliveries before)."""

    def __init__(
        self, practice: LedgerClient, ledger: LedgerClient, *, from_block: int, ledger_from_block: int
    ) -> None:
        self.practice, self.ledger, self.from_block = practice, ledger, from_block
        self.ledger_from_block = ledger_from_block
        self._times: dict[int, int] = {}
        self._samples: dict[int, DerivedSample] = {}
        self._period_length: int | None = None

    def _time(self, block: int) -> int:
        if block not in self._times:
            self._read_times([block])
        return self._times[block]

    def _read_times(self, blocks: Iterable[int]) -> None:
        """Read the times of ``blocks`` not known yet, in one batch: what :meth:`_time` answers then. A reader
        of many logs asks for them all first, or each new block would cost a round trip."""
        missing = {b for b in blocks if b not in self._times}
        if missing:
            self._times.update(self.practice.block_times(missing))

    def period_length(self) -> int:
        """The contract's evaluation period in seconds: fixed at deployment, so read once."""
        if self._period_length is None:
            self._period_length = int(self.practice.call("evaluationPeriod"))
        return self._period_length

    def evaluation_period(self) -> EvaluationPeriod:
        """The contract's evaluation period as of the chain's latest block time, not this machine's clock."""
        return EvaluationPeriod.at(self.period_length(), self.practice.head_time())

    def demand(self, demand_id: int, *, block: int | str = "latest") -> DemandRecord:
        """The demand as the contract's view answers it at ``block``.

        Raises: LedgerRevertError ``PracticeUnknownDemand`` for an unknown id."""
        return DemandRecord.from_chain(demand_id, self.practice.call("demand", demand_id, block=block))

    def demands(self) -> list[DemandRecord]:
        """Every demand as the contract's view answers it, read in batches (``LedgerClient.call_many``)."""
        count = int(self.practice.call("demandCount"))
        ids = range(1, count + 1)
        return [
            DemandRecord.from_chain(i, raw)
            for i, raw in zip(ids, self.practice.call_many("demand", [(i,) for i in ids]), strict=True)
        ]

    def _positions(self, event: str, key: str) -> dict[int, ChainPosition]:
        """Where each ``event`` log sits, by its ``key`` argument (the last one's, were there several)."""
        return {
            int(ev.args[key]): ChainPosition(block, ev.log_index)
            for ev, block in self.practice.get_logs(event, from_block=self.from_block)
        }

    def positioned_demands(self) -> list[DemandRecord]:
        """Every demand with where it was published, its answers, the ones its publisher rejected and its
        withdrawal, from its logs: read after the views, so every demand they count has its logs."""
        demands = self.demands()
        published = self._positions("DemandPublished", "demandId")
        histories = self.demand_histories()
        return [
            replace(d, published=published.get(d.demand_id)).with_history(
                histories.get(d.demand_id, DemandHistory())
            )
            for d in demands
        ]

    def demand_histories(
        self, demand_id: int | None = None, *, to_block: int | None = None
    ) -> dict[int, DemandHistory]:
        """Each demand's answers and rejections in chain order and its withdrawal, from the logs (of one
        demand, or of all) up to ``to_block`` (default: the head): what :meth:`DemandRecord.with_history`
        takes. A contract deployed by an older dxl logs neither rejections nor withdrawals: its demands have
        none."""
        topic = None if demand_id is None else demand_id.to_bytes(32, "big")

        read = {
            event: list(self.practice.get_logs(event, topic, from_block=self.from_block, to_block=to_block))
            for event in ("DemandAnswered", "DemandAnswerRejected", "DemandWithdrawn")
        }
        self._read_times(block for found in read.values() for _, block in found)

        def logs(event: str) -> Iterable[tuple[Any, ChainPosition, int]]:
            for ev, block in read[event]:
                yield ev.args, ChainPosition(block, ev.log_index), self._time(block)

        histories: dict[int, DemandHistory] = {}
        for a, at, time in logs("DemandAnswered"):
            histories.setdefault(int(a["demandId"]), DemandHistory()).answers.append(
                AnswerRecord(
                    DemandAnswer(a["answer"]),
                    int(a["answeredBy"]),
                    time,
                    int(a["resourceId"]),
                    int(a["declineCode"]),
                    bytes(a["answerHash"]),
                    at,
                )
            )
        for a, at, time in logs("DemandAnswerRejected"):
            # After every answer of the demand: the n-th rejection is of the n-th answer.
            histories.setdefault(int(a["demandId"]), DemandHistory()).reject(
                int(a["reasonCode"]), bytes(a["reasonHash"]), time, at
            )
        for a, at, time in logs("DemandWithdrawn"):
            histories.setdefault(int(a["demandId"]), DemandHistory()).withdrawal = Withdrawal(time, at)
        return histories

    def inspection(self, inspection_id: int, *, block: int | str = "latest") -> InspectionRecord:
        """The inspection as the contract's view answers it at ``block`` (expired by that block's number).

        Raises: LedgerRevertError ``PracticeUnknownInspection`` for an unknown id."""
        return InspectionRecord.from_chain(
            inspection_id, self.practice.call("inspection", inspection_id, block=block)
        )

    def outcome(
        self, inspection_id: int, delivery_id: bytes, *, block: int | str = "latest"
    ) -> InspectionOutcome:
        """The outcome recorded for one delivery (or receipt slot) of an inspection as of ``block``: one view,
        where :meth:`outcomes` reads every log of the inspection."""
        return InspectionOutcome(int(self.practice.call("outcome", inspection_id, delivery_id, block=block)))

    def inspections(self) -> list[InspectionRecord]:
        """Every inspection, an expired one with the time it expired (a closed period's count of expired
        inspections stays what it was)."""
        count = int(self.practice.call("inspectionCount"))
        ids = range(1, count + 1)
        found = [
            InspectionRecord.from_chain(i, raw)
            for i, raw in zip(ids, self.practice.call_many("inspection", [(i,) for i in ids]), strict=True)
        ]
        draws = self._positions("InspectionDrawn", "inspectionId")
        self._read_times(
            [i.expired_block for i in found if i.status is InspectionStatus.EXPIRED]
            + [draws[i.inspection_id].block_number for i in found
               if i.status is InspectionStatus.DRAWN and i.inspection_id in draws]
        )  # fmt: skip
        out = []
        for i in found:
            if i.status is InspectionStatus.EXPIRED:
                i = replace(i, expired_at=self._time(i.expired_block))
            elif i.status is InspectionStatus.DRAWN and i.inspection_id in draws:
                drawn = draws[i.inspection_id]
                i = replace(i, drawn=drawn, drawn_at=self._time(drawn.block_number))
            out.append(i)
        return out

    def evaluations(self, agreement_id: int | None = None) -> list[EvaluationRecord]:
        topic = None if agreement_id is None else agreement_id.to_bytes(32, "big")
        out = []
        logs = list(self.practice.get_logs("EvaluationRecorded", topic, from_block=self.from_block))
        self._read_times(block for _, block in logs)
        scored = sorted({int(ev.args["agreementId"]) for ev, _ in logs})
        parties = {a.id: (a.provider, a.consumer) for a in Agreement.read_many(self.ledger, scored)}
        for ev, block in logs:
            a = ev.args
            agreement = int(a["agreementId"])
            provider, consumer = parties[agreement]
            side = ScoredSide(a["side"])
            scores = scores_of(side, a)
            out.append(
                EvaluationRecord(
                    agreement_id=agreement, period=int(a["period"]), side=side, scorer=int(a["scorer"]),
                    scored=provider if side is ScoredSide.PROVIDER else consumer,
                    scores=scores,
                    comment_hash=bytes(a["commentHash"]), block_number=block,
                    recorded_at=self._time(block),
                )
            )  # fmt: skip
        return out

    def outcomes(
        self, inspection_id: int | None = None, *, to_block: int | None = None
    ) -> list[OutcomeRecord]:
        """The outcomes recorded (of one inspection, or of all), up to ``to_block`` (default: the head)."""
        topic = None if inspection_id is None else inspection_id.to_bytes(32, "big")
        out = []
        logs = list(
            self.practice.get_logs(
                "InspectionOutcomeRecorded", topic, from_block=self.from_block, to_block=to_block
            )
        )
        self._read_times(block for _, block in logs)
        for ev, block in logs:
            a = ev.args
            delivery = bytes(a["deliveryId"])
            out.append(
                OutcomeRecord(
                    inspection_id=int(a["inspectionId"]), delivery_id=delivery,
                    provider=delivery_id_provider(delivery), outcome=InspectionOutcome(a["outcome"]),
                    evidence_hash=bytes(a["evidenceHash"]), block_number=block,
                    recorded_at=self._time(block),
                )
            )  # fmt: skip
        return out

    def samples(self, inspection_ids: Iterable[int]) -> dict[int, DerivedSample]:
        """The sample of each of ``inspection_ids`` (drawn inspections), recomputed from the chain by
        :func:`verifier.sampling.derive_sample` once and kept: a drawn inspection's seed is fixed and its
        period closed before it was opened, so its sample never changes.

        Raises:
            NodeError: the node fails, or an inspection's seed is not its committed block's hash.
        """
        wanted = sorted(set(inspection_ids))
        missing = [n for n in wanted if n not in self._samples]
        if missing:
            try:
                reader = LedgerReader(
                    self.ledger.endpoint.rpc_url, str(self.ledger.address), chain_id=self.ledger.chain_id,
                    from_block=self.ledger_from_block, abi=[dict(e) for e in self.ledger.abi],
                    timeout=self.ledger.request_timeout,
                )  # fmt: skip
                for number in missing:
                    self._samples[number] = derive_sample(reader, str(self.practice.address), number)
            except ChainCheckError as exc:
                raise NodeError(f"cannot recompute the inspections' samples: {exc.message}") from None
        return {n: self._samples[n] for n in wanted}

    def sampled_outcomes(self) -> list[OutcomeRecord]:
        """The outcomes of deliveries their inspection drew. The contract records an outcome for any delivery
        it knows (drawing the sample is beyond it), so one sent with the auditor's key for a delivery never
        drawn is left out here, as ``dxl audit verify`` names it.

        Raises:
            NodeError: as :meth:`samples`.
        """
        outcomes = self.outcomes()
        if not outcomes:
            return []
        samples = self.samples(o.inspection_id for o in outcomes)
        # A drawn receipt's outcome is keyed by its slot, which names no department: its batch's provider.
        return [
            replace(o, provider=sampled_provider(samples[o.inspection_id], o.delivery_id))
            for o in outcomes if o.delivery_id in samples[o.inspection_id].sample
        ]  # fmt: skip

    def sampled(self, inspections: Iterable[InspectionRecord]) -> list[SampledRecord]:
        """What each drawn one of ``inspections`` sampled. Raises: NodeError as :meth:`samples`."""
        drawn = {i.inspection_id: i for i in inspections if i.status is InspectionStatus.DRAWN}
        samples = self.samples(drawn)
        return [
            SampledRecord(number, d, sampled_provider(derived, d), drawn[number].present_by,
                          drawn[number].drawn, drawn[number].drawn_at)
            for number, derived in samples.items() for d in derived.sample
        ]  # fmt: skip

    def facts(self) -> PracticeFacts:
        """Raises: NodeError as :meth:`samples`."""
        inspections = self.inspections()
        derived = self.samples(i.inspection_id for i in inspections if i.status is InspectionStatus.DRAWN)
        inspections = [
            replace(i, population_size=derived[i.inspection_id].population_size) if i.inspection_id in derived
            else i
            for i in inspections
        ]  # fmt: skip
        outcomes = self.sampled_outcomes()
        return PracticeFacts(
            self.positioned_demands(), self.evaluations(), inspections, outcomes, self.sampled(inspections)
        )
