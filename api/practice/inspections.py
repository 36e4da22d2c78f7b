"""Sampling inspection: an auditor opens an inspection of a past period, anyone draws its sample from a block
hash, sampled providers present what they delivered, and the auditor records each outcome."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from sqlalchemy import select

from api import models as m
from api.auth import Role
from api.db import InspectionPresentationRow
from api.errors import ApiError, revert_to_api_error
from api.ledger import AtBlock, Finish, Listed, ListPage
from api.limits import JsonBodyError, parse_json
from api.practice.texts import ZERO32, as_hex
from api.verdicts import without_node
from node.audit import practice_index
from node.audit.errors import InvalidQueryError
from node.chain import LedgerRevertError, NodeBehindError
from node.endpoint import NodeHead
from node.practice import InspectionRecord, RecordedOutcome, presentable, sampled_provider
from node.types import PRESENTATION_NOTICE_S, InspectionOutcome, InspectionStatus
from verifier.catalog import canonical_document
from verifier.codes import VerdictStatus
from verifier.onchain import ChainCheckError
from verifier.sampling import DerivedSample, derive_sample, slot_of
from verifier.text import iso_time

if TYPE_CHECKING:
    from api.auth import Principal
    from api.ledger import LedgerService
    from api.practice.core import PracticeCore
    from node.audit.service import AuditContext

#: The field of ``POST /inspections`` each ``PracticeInvalidInspection`` of ``openInspection`` names: the seed
#: block and the deadline are the head's block number and time plus what the caller sent.
INSPECTION_FIELDS: Mapping[str, str] = {
    "periodFrom": "period_from",
    "periodTo": "period_to",
    "sampleSize": "sample_size",
    "seedBlock": "seed_delay_blocks",
    "presentBy": "present_within",
}

_STATUS_NAMES: dict[InspectionStatus, Literal["open", "drawn", "expired"]] = {
    InspectionStatus.OPEN: "open",
    InspectionStatus.DRAWN: "drawn",
    InspectionStatus.EXPIRED: "expired",
}
_OUTCOME_NAMES = {
    InspectionOutcome.PASSED: "passed",
    InspectionOutcome.FAILED: "failed",
    InspectionOutcome.NOT_PRESENTED: "not_presented",
}


@dataclass(frozen=True)
class KeptPresentation:
    """A presentation the service kept (the latest of a sampled delivery): its verdict's status (empty for a
    verdict that cannot be read), the SHA-256 of the verdict as kept, the evidence its outcome records, and
    the block it was judged at (its verdict's ``block``; None for a verdict that read no block)."""

    status: str
    evidence_hash: bytes
    block: int | None

    @classmethod
    def of(cls, row: InspectionPresentationRow) -> KeptPresentation:
        # Read as a client's JSON is: a row edited into text that is no JSON object (or nested past the C
        # stack's reach) made every read of its inspection, and the list, answer 500 (or stopped the service).
        try:
            verdict = parse_json(row.verdict)
        except JsonBodyError:
            verdict = None
        if not isinstance(verdict, dict):
            verdict = {}
        block, status = verdict.get("block"), verdict.get("status")
        # The status is the verdict's, whose hash an outcome records as its evidence, not the row's status
        # column beside it: edited apart, that column had a pass recorded for a verdict that says MISMATCH.
        # A verdict that cannot be read has none, and calls for no pass.
        return cls(
            status if isinstance(status, str) else "",
            hashlib.sha256(row.verdict.encode("utf-8")).digest(),
            block if isinstance(block, int) else None,
        )


def outcome_called_for(kept: KeptPresentation | None) -> RecordedOutcome:
    """The outcome a sampled delivery's presentation calls for, and its evidence: passed for a verdict that
    matched the chain, failed for any other, with the verdict's hash; not presented, with a zero hash, when
    none was kept (which only the deadline's passing makes an outcome). What the service records, and what a
    read holds an outcome recorded on chain to (:attr:`api.models.SampledDelivery.outcome_as_checked`)."""
    if kept is None:
        return RecordedOutcome(InspectionOutcome.NOT_PRESENTED, ZERO32)
    passed = kept.status == VerdictStatus.MATCH
    return RecordedOutcome(
        InspectionOutcome.PASSED if passed else InspectionOutcome.FAILED, kept.evidence_hash
    )


def _below_kept(node: str, head: int, kept: int, delivery_id: str) -> ApiError:
    """NODE_UNAVAILABLE for a presentation of ``delivery_id`` on a node at block ``head``, below block
    ``kept`` where the presentation kept for it was judged."""
    return ApiError(
        "NODE_UNAVAILABLE",
        f"the node {node} is at block {head}, behind block {kept} where delivery {delivery_id}'s kept "
        "presentation was judged, and no node of the endpoint reached that block in time: judged there, this "
        "one would replace that verdict with an earlier one; nothing was kept",
    )


class PresentationJudge(Protocol):
    """A presentation's check of the chain at one block: the node's head as read when the judge was made, and
    the verdict on a payload and manifest with every read of the chain made there (the readers ``POST
    /verify`` pins, :class:`api.routes.verify.PinnedCheck`)."""

    @property
    def head(self) -> NodeHead: ...

    def verdict(self, manifest: dict[str, Any], payload_base64: str, drawn: bytes) -> dict[str, Any]:
        """The verdict for ``drawn`` (a delivery id or a receipt's slot), ``block`` the head's number."""
        ...


class InspectionService:
    """Inspections for one ledger service: auditors open, draw and record with the custodied auditor key;
    sampled providers present. The sample is derived by :mod:`verifier.sampling` from the chain alone."""

    def __init__(self, practice: PracticeCore, ledger: LedgerService) -> None:
        self.practice = practice
        self.ledger = ledger

    def _record(self, inspection_id: int, *, block: int | str = "latest") -> InspectionRecord:
        try:
            return self.practice.reader.inspection(inspection_id, block=block)
        except LedgerRevertError as exc:
            if exc.error_name == "PracticeUnknownInspection":
                raise ApiError("INSPECTION_NOT_FOUND", f"no inspection {inspection_id}") from None
            raise

    def sample(self, record: InspectionRecord, *, block: int | None = None) -> DerivedSample | None:
        """The drawn inspection's sample (None before it is drawn), derived from the chain once per seed (at
        ``block``, where ``record`` was read, if given)."""
        if record.status is not InspectionStatus.DRAWN:
            return None
        key = (record.inspection_id, record.seed)
        with self.practice._samples_guard:
            derived = self.practice._samples.get(key)
        if derived is not None:
            return derived
        reader = self.ledger.chain_reader()
        if block is not None:
            reader.rpc.pin(block)
        try:
            derived = derive_sample(reader, str(self.practice.client.address), record.inspection_id)
        except ChainCheckError as exc:
            raise ApiError("NODE_UNAVAILABLE", exc.message) from None
        if derived.inspection.seed != record.seed:  # drawn again between the two reads: keep neither
            return derived
        with self.practice._samples_guard:
            return self.practice._samples.setdefault(key, derived)

    def inspection(self, inspection_id: int) -> m.InspectionPublic:
        return self.read(inspection_id).item

    def read(self, inspection_id: int) -> AtBlock[m.InspectionPublic]:
        """The inspection and its sample as the chain held them at one block, the node's head as the read
        began: the contract's view (expired by that block's number), the outcomes recorded up to it, overdue
        by its time. Read apart, an outcome mined between the outcomes' read and the clock's showed its
        delivery overdue and unrecorded, which it was at no block. The presentations are the service's, as
        it holds them once the block is read (each verdict names the block it was judged at): one kept since,
        judged at a later block, is shown, and contradicts nothing the block says. It was taken while the
        later block's time was within the deadline, so the block's was too (not overdue), and while no outcome
        was recorded at that later block, so none is at this one. An outcome shown was recorded with the
        evidence of the presentation kept as it was sent, which none replaces after: the delivery's lock is
        held until the outcome is mined, and then the outcome on chain closes presentations.

        Raises:
            ApiError: INSPECTION_NOT_FOUND (unknown at that block), NODE_UNAVAILABLE.
            NodeError: the node does not answer.
        """
        head = self.ledger.client.node_head()
        record = self._with_draw_time(self._record(inspection_id, block=head.number), head.timestamp)
        derived = self.sample(record, block=head.number)
        outcomes: dict[bytes, RecordedOutcome] = {}
        presented: dict[str, KeptPresentation] = {}
        if derived is not None:
            read = self.practice.reader.outcomes(inspection_id, to_block=head.number)
            outcomes = {o.delivery_id: RecordedOutcome(o.outcome, o.evidence_hash) for o in read}
            presented = self._presentations(inspection_id)
        return AtBlock(self._public(record, derived, outcomes, presented, head.timestamp), head.number)

    def _public(
        self,
        record: InspectionRecord,
        derived: DerivedSample | None,
        outcomes: Mapping[bytes, RecordedOutcome],
        presented: Mapping[str, KeptPresentation],
        now: int,
    ) -> m.InspectionPublic:
        """The inspection as the API shows it: ``record`` (the contract's view), its sample ``derived`` (None
        before the draw), the ``outcomes`` recorded and the presentations kept, overdue by block time ``now``;
        all read at one block by the caller (:meth:`read`, or a page of the audit index). Each outcome is
        held to what the presentation kept calls for (:func:`outcome_called_for`): the contract takes any
        outcome and evidence hash from an auditor's key, around the service's check."""
        sampled: list[m.SampledDelivery] = []
        if derived is not None:
            # The scorecard's rule (node.audit.scorecard: present_by before the clock, no outcome recorded,
            # drawn with the time to present left).
            late = record.present_by < now and presentable(record.drawn_at, record.present_by)
            sampled = []
            for d in derived.sample:
                kept, recorded = presented.get(as_hex(d)), outcomes.get(d)
                slot = slot_of(d)
                sampled.append(
                    m.SampledDelivery(
                        delivery_id=as_hex(d), provider=sampled_provider(derived, d),
                        presented=None if kept is None else kept.status or None,
                        outcome=None if recorded is None else _OUTCOME_NAMES[recorded.outcome],
                        outcome_as_checked=None if recorded is None else recorded == outcome_called_for(kept),
                        overdue=late and recorded is None,
                        grant_id=None if slot is None else slot[0],
                        sequence=None if slot is None else slot[1],
                    )
                )  # fmt: skip
        return m.InspectionPublic(
            id=record.inspection_id, auditor=record.auditor,
            status=_STATUS_NAMES[record.status],
            period_from=record.period_from, period_to=record.period_to, sample_size=record.sample_size,
            seed_block=record.seed_block, present_by=record.present_by,
            seed=as_hex(record.seed) if derived is not None else None,
            population_size=None if derived is None else derived.population_size, sample=sampled,
        )  # fmt: skip

    def inspections(self, *, index: AuditContext, page: ListPage) -> Listed[m.InspectionPublic]:
        """The inspections newest first, one page read from the audit index once it is healed and brought up
        to the chain's head (:meth:`~node.audit.service.AuditContext.caught_up`): the page's inspections, the
        outcomes recorded in them (not in every inspection) and their presentations, each read in one query.
        A drawn inspection's sample is derived from the chain once and kept (:meth:`sample`).

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor; NODE_UNAVAILABLE when a sample cannot be
                derived.
            NodeError: the node fails while the index catches up.
        """
        block, now = index.caught_up()
        try:
            found = practice_index.inspections(
                index.engine, at_block=block, cursor=page.cursor, limit=page.limit
            )
        except InvalidQueryError as exc:
            raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
        ids = [r.inspection_id for r in found.items]
        outcomes = practice_index.outcomes(index.engine, ids)
        presented: dict[int, dict[str, KeptPresentation]] = {}
        with self.ledger._sessions()() as session:
            for row in session.scalars(
                select(InspectionPresentationRow).where(InspectionPresentationRow.inspection_id.in_(ids))
            ):
                presented.setdefault(row.inspection_id, {})[row.delivery_id] = KeptPresentation.of(row)
        return Listed(
            [self._public(r, self.sample(r), outcomes.get(r.inspection_id, {}),
                          presented.get(r.inspection_id, {}), now)
             for r in found.items],
            found.next_cursor,
            block,
        )  # fmt: skip

    def seen_by(self, principal: Principal, record: m.InspectionPublic) -> m.InspectionPublic:
        """The inspection as ``principal`` reads it: whole for an auditor; for a department, only the sampled
        deliveries it provided (the inspected department's, which it must present). Another department's
        sampled delivery names an exchange the reader is not party to, and its presentation's verdict is
        the service's alone (the chain holds outcomes, not verdicts)."""
        if principal.role is Role.AUDITOR:
            return record
        me = self.ledger.department_id_of(principal)
        return record.model_copy(update={"sample": [s for s in record.sample if s.provider == me]})

    def _presentations(self, inspection_id: int) -> dict[str, KeptPresentation]:
        with self.ledger._sessions()() as session:
            rows = session.scalars(
                select(InspectionPresentationRow).where(
                    InspectionPresentationRow.inspection_id == inspection_id
                )
            )
            return {row.delivery_id: KeptPresentation.of(row) for row in rows}

    def _send(
        self, fn: str, *args: Any, finish: Finish, auditor: str | None = None
    ) -> m.Written[m.InspectionPublic]:
        account = self.ledger.auditor_account(prefer=auditor)
        written = self.practice._send(self.ledger, account, fn, *args, finish=finish)
        return cast(m.Written[m.InspectionPublic], written)

    def _resumed(self, principal: Principal) -> m.Written[m.InspectionPublic] | None:
        return cast(m.Written[m.InspectionPublic] | None, self.ledger._resume(principal))

    def open(self, *, principal: Principal, body: m.InspectionCreate) -> m.Written[m.InspectionPublic]:
        if (resumed := self._resumed(principal)) is not None:
            return resumed
        length = self.practice.reader.period_length()
        # The contract's rule (openInspection: whole evaluation periods), said with the period the bound falls
        # in: the period is over before it is inspected, so bounds of the auditor's choosing chose its
        # population, down to the one delivery the sample then had to be.
        for name, bound in (("period_from", body.period_from), ("period_to", body.period_to)):
            if bound % length:
                start = bound - bound % length
                raise ApiError(
                    "INVALID_INSPECTION",
                    f"an inspection covers whole evaluation periods of {length} s, from the epoch: {name} "
                    f"{bound} ({iso_time(bound)}) falls inside the one from {start} ({iso_time(start)}) to "
                    f"{start + length} ({iso_time(start + length)})",
                    field=name,
                    evaluation_period=length,
                )
        head = self.ledger.client.block_number()
        now = self.ledger._chain_time()
        # The contract's rule (openInspection: periodTo <= block.timestamp), checked here against the latest
        # block's time, the earliest the next block can carry where blocks may share a second (anvil): a
        # period ending after it is refused, by the field, also where the next block (on whose time the
        # estimate runs) would come a second or a block period later and take it.
        if body.period_to > now:
            raise ApiError(
                "INVALID_INSPECTION",
                f"the inspected period must be over by the chain's clock: period_to {body.period_to} is "
                f"after the chain's latest block time {now} ({iso_time(now)})",
                field="period_to",
                chain_time=now,
            )
        try:
            return self._send(
                "openInspection", body.period_from, body.period_to, body.sample_size,
                head + body.seed_delay_blocks, now + body.present_within,
                finish=Finish("practice.inspection", event="InspectionOpened", arg="inspectionId"),
            )  # fmt: skip
        except LedgerRevertError as exc:
            # Checked on the head, mined later: its block came after the presentation deadline, or at or
            # past the seed block. The contract's refusal, naming the field that set it.
            raise revert_to_api_error(exc, fields=INSPECTION_FIELDS) from exc

    def draw(self, *, principal: Principal, inspection_id: int) -> m.Written[m.InspectionPublic]:
        """Fix the seed, signed by the caller's own key: an auditor's custodied auditor key, a department's
        key. Anyone may draw, so an auditor cannot keep a sample it dislikes from being fixed."""
        if (resumed := self._resumed(principal)) is not None:
            return resumed
        record = self._record(inspection_id)
        if record.status is InspectionStatus.DRAWN:
            # Drawn already (by the service's drawer, another member, an earlier call): the seed is fixed,
            # and the answer is that draw, the same sample whoever asks again.
            return self._drawn(inspection_id)
        if record.status is InspectionStatus.EXPIRED:
            raise ApiError(
                "INSPECTION_STATUS_MISMATCH",
                f"inspection {inspection_id} expired: it was not drawn while block {record.seed_block}'s "
                "hash was known, and can never be",
            )
        account = (
            self.ledger.auditor_account()
            if principal.role is Role.AUDITOR
            else self.ledger.department_account(self.ledger.department_id_of(principal))
        )
        finish = Finish("practice.inspection", inspection_id)
        try:
            written = self.practice._send(self.ledger, account, "drawSample", inspection_id, finish=finish)
        except LedgerRevertError as exc:
            # Another draw got in first (checked on a head where the inspection was open, this one reverted
            # behind it): the seed is fixed all the same, and the answer is the draw that fixed it.
            if exc.error_name == "PracticeInspectionStatus" and (
                self._record(inspection_id).status is InspectionStatus.DRAWN
            ):
                return self._drawn(inspection_id)
            raise
        return cast(m.Written[m.InspectionPublic], written)

    def _with_draw_time(self, record: InspectionRecord, now: int) -> InspectionRecord:
        """``record`` with its draw's block time where it decides anything: drawn, its deadline passed by
        block time ``now``. A sample drawn less than the presentation notice before its deadline (or after it)
        left no provider the time to present; the contract takes no not-presented outcome for it, and none of
        its deliveries is overdue (:func:`node.practice.presentable`)."""
        if (
            record.status is not InspectionStatus.DRAWN
            or record.drawn_at is not None
            or record.present_by >= now
        ):
            return record
        block = self._draw_transaction(record.inspection_id).block_number
        return replace(record, drawn_at=int(self.practice.client.w3.eth.get_block(block)["timestamp"]))

    def _drawn(self, inspection_id: int) -> m.Written[m.InspectionPublic]:
        """A drawn inspection with the transaction that drew it."""
        return m.Written(
            transaction=self._draw_transaction(inspection_id), record=self.inspection(inspection_id)
        )

    def _draw_transaction(self, inspection_id: int) -> m.TransactionPublic:
        """The transaction that drew the inspection, from its ``InspectionDrawn`` log."""
        for event, block in self.practice.client.get_logs(
            "InspectionDrawn", inspection_id.to_bytes(32, "big"), from_block=self.practice.from_block,
            newest_first=True,
        ):  # fmt: skip
            return m.TransactionPublic(hash=event.tx_hash, block_number=block)
        raise ApiError("NODE_UNAVAILABLE", f"the node holds no log of inspection {inspection_id}'s draw")

    def _sampled(
        self, inspection_id: int, delivery_id: str, *, provider: int | None = None
    ) -> tuple[InspectionRecord, bytes, DerivedSample]:
        """The inspection, the delivery's id and the drawn sample, the delivery being in the sample (and, with
        ``provider``, provided by it: another department's sampled delivery answers as one not sampled, as
        the sample a department reads holds only what it provided, :meth:`seen_by`).

        Raises:
            ApiError: INSPECTION_STATUS_MISMATCH (not drawn), NOT_SAMPLED.
        """
        record = self._record(inspection_id)
        derived = self.sample(record)
        if derived is None:
            raise ApiError("INSPECTION_STATUS_MISMATCH", f"inspection {inspection_id} is not drawn yet")
        raw = bytes.fromhex(delivery_id.removeprefix("0x"))
        if raw not in derived.sample or provider not in (None, sampled_provider(derived, raw)):
            whose = "" if provider is None else f" of department {provider}'s deliveries"
            raise ApiError(
                "NOT_SAMPLED", f"delivery {delivery_id} is not in inspection {inspection_id}'s sample{whose}"
            )
        return record, raw, derived

    def present(
        self,
        *,
        principal: Principal,
        inspection_id: int,
        body: m.PresentationCreate,
        judge: Callable[[], PresentationJudge],
    ) -> m.PresentationPublic:
        """Check and keep a sampled provider's presentation. ``judge()`` reads the node's head and checks
        there (:class:`PresentationJudge`): the presentation is judged at that one block, taken under the
        delivery's lock (so after an outcome the service was recording for it is mined): whether its outcome
        is recorded, whether the deadline passed (by that block's time), and every read of the verdict; the
        verdict names the block (``block``), and the outcome's evidence hash commits to it.

        The head is judged once the journal's gate is passed, as a write's checks are
        (:meth:`api.journal.JournaledSender.gate`): a node that lost blocks or is behind the newest block of a
        journaled transaction (a failover to a member that has not imported it yet) is waited for, so that an
        outcome the service recorded is seen, never a head below it where the delivery looks open.

        The gate knows only the blocks this service journaled, and a presentation writes nothing: the verdict
        kept for the delivery may have been judged at a head above them all. A presentation is never judged
        below that block, which would replace the verdict with one judged earlier (a deadline, an outcome or
        a record the kept one saw, unseen): a node behind it is waited for as the gate waits for one.

        Raises:
            ApiError: NODE_UNAVAILABLE when the node does not hold the journal's newest block, or the block
                the verdict kept was judged at, in time (nothing is kept); PRESENTATION_CLOSED, NOT_SAMPLED
                (also for another department's sampled delivery), INSPECTION_STATUS_MISMATCH.
        """
        me = self.ledger.department_id_of(principal)
        record, raw, _derived = self._sampled(inspection_id, body.delivery_id, provider=me)
        with self.practice.presentation_lock(inspection_id, raw):  # an outcome being recorded is waited for
            # Under the lock, right before the head is read: the node checked is the one judged on, and the
            # outcome the lock waited for is in the journal's newest block.
            self.ledger.sender.gate()
            kept = self._kept(inspection_id, raw)
            if kept is not None and kept.block is not None:
                # Waited for rather than refused at once: the provider presented nothing wrong, the service
                # only moved to a node that has not imported the block yet, which a network member does in
                # seconds (DXL_CATCH_UP_TIMEOUT bounds the wait, as for the deployment's block).
                what = f"the block delivery {body.delivery_id}'s kept presentation was judged at"
                try:
                    self.ledger.client.reach(kept.block, what=what)
                except NodeBehindError as exc:
                    raise _below_kept(exc.rpc_url, exc.head, kept.block, body.delivery_id) from None
            at = judge()
            if kept is not None and kept.block is not None and at.head.number < kept.block:
                # A lone node that is not syncing is not waited for (it has nothing to import the block from).
                raise _below_kept(self.ledger.client.rpc_url, at.head.number, kept.block, body.delivery_id)
            # The presentation kept is the one an outcome's evidence hash commits to: once the outcome is on
            # chain, a later one would show a verdict the chain's evidence does not hash to; after the
            # deadline, a late one would turn a delivery not presented in time into a pass.
            recorded = self.practice.reader.outcome(inspection_id, raw, block=at.head.number)
            if recorded is not InspectionOutcome.NONE:
                raise ApiError(
                    "PRESENTATION_CLOSED", f"delivery {body.delivery_id}'s outcome is recorded already"
                )
            # Its recording answered TRANSACTION_PENDING and let the lock go: the transaction, journaled and
            # re-sent until mined, commits to the verdict kept now.
            if (sent := self._outcome_in_flight(inspection_id, raw)) is not None:
                raise ApiError(
                    "PRESENTATION_CLOSED",
                    f"delivery {body.delivery_id}'s outcome is being recorded (transaction {sent}, sent and "
                    "not mined yet)",
                )
            if at.head.timestamp > record.present_by:
                raise ApiError(
                    "PRESENTATION_CLOSED",
                    f"inspection {inspection_id} took presentations until {record.present_by} "
                    f"({iso_time(record.present_by)}); the chain's head, block {at.head.number}, is of "
                    f"{at.head.timestamp} ({iso_time(at.head.timestamp)})",
                )
            # Kept as answered to the presenting department (as POST /verify answers it, without the address
            # of the service's node): the outcome's evidence hash is the hash of a document its parties hold,
            # not of one naming an internal endpoint that no answer shows.
            judged = at.verdict(body.manifest, body.payload_base64, raw)
            verdict = without_node(judged, self.ledger.client.rpc_url)
            key = as_hex(raw)
            with self.ledger._sessions()() as session:
                row = session.get(InspectionPresentationRow, (inspection_id, key))
                text = canonical_document(verdict).decode("utf-8")
                if row is None:
                    session.add(
                        InspectionPresentationRow(
                            inspection_id=inspection_id,
                            delivery_id=key,
                            status=str(verdict["status"]),
                            verdict=text,
                        )
                    )
                else:
                    row.status, row.verdict = str(verdict["status"]), text
                session.commit()
        return m.PresentationPublic(
            inspection_id=inspection_id, delivery_id=key, verdict=m.VerdictPublic.model_validate(verdict)
        )

    def _kept(self, inspection_id: int, drawn: bytes) -> KeptPresentation | None:
        """The presentation kept for ``drawn`` in the inspection, if any."""
        with self.ledger._sessions()() as session:
            row = session.get(InspectionPresentationRow, (inspection_id, as_hex(drawn)))
            return None if row is None else KeptPresentation.of(row)

    def _outcome_in_flight(self, inspection_id: int, drawn: bytes) -> str | None:
        """The hash of a journaled transaction recording the outcome of ``drawn`` in the inspection that is
        sent and not known mined, if any: its calldata (``recordOutcome(inspectionId, deliveryId, …)``, whose
        leading 68 bytes name the two) lies verbatim in the signed bytes the journal keeps."""
        call = self.practice.client.functions.plain_calldata(
            "recordOutcome", (inspection_id, drawn, int(InspectionOutcome.PASSED), ZERO32)
        )
        assert call is not None  # plain arguments of the contract's own types
        names = bytes.fromhex(call[2:])[: 4 + 32 + 32]
        return next((e.tx_hash for e in self.ledger.sender.journal.unsettled() if names in e.raw), None)

    def record_outcome(
        self, *, principal: Principal, inspection_id: int, body: m.OutcomeCreate
    ) -> m.Written[m.InspectionPublic]:
        if (resumed := self._resumed(principal)) is not None:
            return resumed
        record, raw, _derived = self._sampled(inspection_id, body.delivery_id)
        # Held until the outcome is mined (or refused): the verdict read here stays the one kept.
        with self.practice.presentation_lock(inspection_id, raw):
            kept = self._kept(inspection_id, raw)
            if kept is None and (now := self.ledger._chain_time()) <= record.present_by:
                raise ApiError(
                    "INVALID_OUTCOME",
                    f"delivery {body.delivery_id} may still be presented until {iso_time(record.present_by)}",
                )
            if (
                kept is None
                and (drawn_at := self._with_draw_time(record, now).drawn_at) is not None
                and not presentable(drawn_at, record.present_by)
            ):
                days = PRESENTATION_NOTICE_S // 86400
                when = "after" if drawn_at > record.present_by else f"less than {days} days before"
                raise ApiError(
                    "INVALID_OUTCOME",
                    f"inspection {inspection_id} was drawn at {iso_time(drawn_at)}, {when} its deadline "
                    f"{iso_time(record.present_by)}: its providers had not the {days} days to present that "
                    f"the ledger gives them, so delivery {body.delivery_id} is not recorded as not presented",
                )
            called = outcome_called_for(kept)
            finish = Finish("practice.inspection", inspection_id)
            return self._send(
                "recordOutcome", inspection_id, raw, int(called.outcome), called.evidence_hash,
                finish=finish, auditor=record.auditor,
            )  # fmt: skip
