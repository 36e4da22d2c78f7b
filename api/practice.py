"""Demand lists and mutual evaluation over HTTP: the service side of the ``SharingPractice`` contract.

Texts (a demand's document, an answer's note, an evaluation's comment) are stored by the service like catalog
documents — under the SHA-256 of their canonical JSON (:mod:`verifier.catalog`), which is what the chain
holds — and every read re-hashes them: ``verified`` is true only while the stored text is the chain's.
Writes are signed with the department's custodied key and go through the ledger service's journal (one nonce
counter per key for the ledger and this contract alike).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import models as m
from api.auth import Role
from api.catalog import DocumentStore
from api.db import InspectionPresentationRow
from api.errors import ApiError, revert_to_api_error
from api.ledger import AtBlock, Finish, Listed, ListPage
from api.ledger.core import store_then_send
from node.audit import practice_index
from node.audit.errors import InvalidQueryError
from node.chain import LedgerClient, LedgerRevertError, NodeBehindError, TxResult
from node.contract_errors import iso_time
from node.endpoint import NodeHead
from node.practice import (
    DemandRecord,
    EvaluationRecord,
    InspectionRecord,
    PracticeReader,
    RecordedOutcome,
    sampled_provider,
    scores_of,
)
from node.types import (
    DeclineReason,
    DemandAnswer,
    InspectionOutcome,
    InspectionStatus,
    ScoredSide,
)
from verifier.catalog import canonical_document, document_hash
from verifier.codes import VerdictStatus
from verifier.onchain import ChainCheckError
from verifier.sampling import DerivedSample, derive_sample, slot_of

if TYPE_CHECKING:
    from api.auth import Principal
    from api.ledger import LedgerService
    from api.receipts import ReceiptService
    from node.audit.service import AuditContext

#: The field of ``POST /demands`` each ``PracticeInvalidField`` of ``publishDemand`` names.
DEMAND_FIELDS: Mapping[str, str] = {"dueBy": "due_by", "addressee": "addressee", "textHash": "document"}
#: The field of ``POST /inspections`` each ``PracticeInvalidInspection`` of ``openInspection`` names: the seed
#: block and the deadline are the head's block number and time plus what the caller sent.
INSPECTION_FIELDS: Mapping[str, str] = {
    "periodFrom": "period_from",
    "periodTo": "period_to",
    "sampleSize": "sample_size",
    "seedBlock": "seed_delay_blocks",
    "presentBy": "present_within",
}

log = logging.getLogger(__name__)

ZERO32 = b"\x00" * 32
_ANSWERS = {
    m.DemandAnswerName.NEW_RESOURCE: DemandAnswer.NEW_RESOURCE,
    m.DemandAnswerName.EXISTING_RESOURCE: DemandAnswer.EXISTING_RESOURCE,
    m.DemandAnswerName.DECLINED: DemandAnswer.DECLINED,
}
_ANSWER_NAMES = {v: k for k, v in _ANSWERS.items()}


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class TextStore:
    """Texts by the hash of their canonical JSON, in the table that holds the catalog's documents (both are
    content-addressed the same way, and stored and checked by the same code)."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions
        self._documents = DocumentStore(sessions)

    def get(self, digest: bytes) -> m.StoredText | None:
        """The stored text for ``digest`` and whether it still hashes to it; None for a zero hash."""
        return self.get_many([digest])(digest)

    def get_many(self, digests: Iterable[bytes]) -> Callable[[bytes], m.StoredText | None]:
        """:meth:`get` of each of ``digests``, read in one query (a page of a list at once)."""
        found = self._documents.stored(_hex(d) for d in digests if d != ZERO32)

        def get(digest: bytes) -> m.StoredText | None:
            if digest == ZERO32:
                return None
            key = _hex(digest)
            return found.get(key) or m.StoredText(hash=key, document=None, verified=False)

        return get


class PracticeService:
    """Demands and evaluations for one ledger service."""

    def __init__(self, *, client: LedgerClient, ledger: LedgerService, from_block: int) -> None:
        self.client = client
        self.reader = PracticeReader(
            client, ledger.client, from_block=from_block, ledger_from_block=ledger.from_block
        )
        self.texts = TextStore(ledger._sessions)
        self.from_block = from_block
        #: Whether the deployed contract offers a function added after its first release, by name.
        self._offered: dict[str, bool] = {}
        self._presentation_locks: dict[tuple[int, bytes], threading.Lock] = {}
        self._presentation_locks_guard = threading.Lock()
        #: Each drawn inspection's sample, by inspection and seed: derived once (a read of the period's
        #: deliveries and anchored batches, about 22 requests to the node) and answered as derived after. A
        #: drawn inspection's seed is fixed on chain and its period was over when it opened, so the sample
        #: cannot change; a seed that differs (the node lost the draw's block) is derived afresh.
        self._samples: dict[tuple[int, bytes], DerivedSample] = {}
        self._samples_guard = threading.Lock()

    def presentation_lock(self, inspection_id: int, delivery_id: bytes) -> threading.Lock:
        """Held by a presentation of the delivery while it checks and writes, and by the recording of its
        outcome from reading the verdict until its transaction is mined: a presentation written in between
        would replace the verdict the outcome's evidence hash commits to."""
        with self._presentation_locks_guard:
            return self._presentation_locks.setdefault((inspection_id, delivery_id), threading.Lock())

    def inspections(self, ledger: LedgerService) -> InspectionService:
        """Inspections on behalf of ``ledger`` (the request's bound view: its writes are journaled)."""
        return InspectionService(self, ledger)

    # --- sending -----------------------------------------------------------------------------------------

    def send(
        self,
        ledger: LedgerService,
        department_id: int,
        fn: str,
        *args: Any,
        finish: Finish,
        texts: Sequence[Mapping[str, Any]] = (),
    ) -> Any:
        """``fn(*args)`` signed by the department's key, journaled with ``finish``, awaited; the response
        ``finish`` names (:meth:`finish`). ``texts`` (what the arguments' hashes name) are stored once the
        estimate took the transaction, before it is sent (:func:`api.ledger.core.store_then_send`).

        Raises:
            LedgerRevertError: estimation or the mined transaction reverted.
            ApiError: as :meth:`api.journal.JournaledSender.send` and ``wait``.
        """
        account = ledger.department_account(department_id)
        return self._send(ledger, account, fn, *args, finish=finish, texts=texts)

    def _send(
        self,
        ledger: LedgerService,
        account: Any,
        fn: str,
        *args: Any,
        finish: Finish,
        texts: Sequence[Mapping[str, Any]] = (),
    ) -> Any:
        request = self.client.build(str(account.address), fn, *args)
        store_then_send(ledger.documents, texts)
        signed = ledger.sender.send(account, request, claim=ledger.claim, finish=finish.as_json())
        return self.finish(ledger, ledger.sender.wait(signed.tx_hash), finish)

    def finish(self, ledger: LedgerService, mined: TxResult, finish: Finish) -> Any:
        """The response of a mined practice write (``finish.view`` ``practice.demand``, ``.evaluation`` or
        ``.inspection``); also how a retry under the same idempotency claim finishes it
        (:meth:`api.ledger.LedgerService._finish`)."""
        receipt = self.client.receipt(mined.tx_hash)
        assert receipt is not None  # mined
        result = self.client.outcome(receipt)  # this contract's events, which the ledger's ABI lacks
        ident: Any = finish.record_id
        if finish.event is not None and finish.arg is not None:
            ident = result.event(finish.event).args[finish.arg]
        if finish.view == "practice.demand":
            return m.Written(transaction=_tx(result), record=self.demand(int(ident)))
        if finish.view == "practice.inspection":
            return m.Written(transaction=_tx(result), record=self.inspections(ledger).inspection(int(ident)))
        ev = result.event("EvaluationRecorded").args
        side = ScoredSide(ev["side"])
        agreement = ledger.agreement(int(ident))
        record = EvaluationRecord(
            agreement_id=agreement.id, period=int(ev["period"]), side=side, scorer=int(ev["scorer"]),
            scored=agreement.provider if side is ScoredSide.PROVIDER else agreement.consumer,
            scores=scores_of(side, ev), comment_hash=bytes(ev["commentHash"]),
            block_number=result.block_number,
            recorded_at=int(self.client.w3.eth.get_block(result.block_number)["timestamp"]),
        )  # fmt: skip
        return m.Written(transaction=_tx(result), record=self._evaluation(record))

    # --- demands -----------------------------------------------------------------------------------------

    def demand(self, demand_id: int) -> m.DemandPublic:
        return self.read_demand(demand_id).item

    def read_demand(self, demand_id: int) -> AtBlock[m.DemandPublic]:
        """The demand as the contract's view answers it at the node's head as the read began, overdue by that
        block's time: read apart, an answer mined between the view and the clock showed a demand open and
        overdue, which it was at no block.

        Raises:
            ApiError: DEMAND_NOT_FOUND (unknown at that block).
            NodeError: the node does not answer.
        """
        head = self.client.node_head()
        try:
            record = self.reader.demand(demand_id, block=head.number)
        except LedgerRevertError as exc:
            if exc.error_name == "PracticeUnknownDemand":
                raise ApiError("DEMAND_NOT_FOUND", f"no demand {demand_id}") from None
            raise
        return AtBlock(self._public(record, head.timestamp), head.number)

    def demands(
        self,
        *,
        index: AuditContext,
        page: ListPage,
        publisher: int | None,
        addressee: int | None,
        open_only: bool,
    ) -> Listed[m.DemandPublic]:
        """The demand lists newest first, one page read from the audit index
        (:func:`node.audit.practice_index.demands`: the filters and the page are one index range, nothing is
        read from the chain per demand), once the index is healed and brought up to the chain's head
        (:meth:`~node.audit.service.AuditContext.caught_up`): each demand as the chain's view answers it
        there, overdue by that block's time.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor.
            NodeError: the node fails while the index catches up.
        """
        block, now = index.caught_up()
        flt = practice_index.DemandFilter(publisher=publisher, addressee=addressee, open_only=open_only)
        try:
            found = practice_index.demands(index.engine, flt, cursor=page.cursor, limit=page.limit)
        except InvalidQueryError as exc:
            raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
        texts = self.texts.get_many(h for d in found.items for h in (d.text_hash, d.answer_hash))
        return Listed([self._public(d, now, texts) for d in found.items], found.next_cursor, block)

    def _public(
        self, d: DemandRecord, now: int, texts: Callable[[bytes], m.StoredText | None] | None = None
    ) -> m.DemandPublic:
        """``d`` as the API shows it, overdue or not by block time ``now``; its texts from ``texts`` (a
        page's, read at once), else read here."""
        texts = texts or self.texts.get
        text = texts(d.text_hash)
        answer = None
        if d.answer is not DemandAnswer.NONE:
            answer = m.DemandAnswerPublic(
                answer=_ANSWER_NAMES[d.answer],
                answered_by=d.answered_by,
                answered_at=d.answered_at,
                resource_id=d.resource_id or None,
                decline_reason=DeclineReason(d.decline_code).name.lower() if d.decline_code else None,
                decline_code=d.decline_code or None,
                note=texts(d.answer_hash),
            )
        return m.DemandPublic(
            id=d.demand_id, publisher=d.publisher, addressee=d.addressee or None,
            published_at=d.published_at, due_by=d.due_by, catalog_size=d.catalog_size, overdue=d.overdue(now),
            text_hash=_hex(d.text_hash),
            document=None if text is None else text.document, verified=bool(text and text.verified),
            status="open" if answer is None else answer.answer.value, answer=answer,
        )  # fmt: skip

    def publish(
        self, ledger: LedgerService, *, principal: Principal, body: m.DemandCreate
    ) -> m.Written[m.DemandPublic]:
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.DemandPublic], resumed)
        me = ledger.department_id_of(principal)
        addressee = 0
        if body.addressee is not None:
            addressee = ledger.department_id_by_code(body.addressee)
        # The contract's rule (publishDemand: dueBy > block.timestamp), checked against the earliest time the
        # next block can carry: its refusal names no field, and a client must tell a passed due day from
        # another field it may not use (the chain's clock is not the client's).
        earliest = ledger.client.next_block_time()
        if body.due_by <= earliest:
            raise ApiError(
                "INVALID_FIELD",
                f"due_by {body.due_by} ({iso_time(body.due_by)}) has passed by the chain's clock: the next "
                f"block's time is {earliest} ({iso_time(earliest)}) at the earliest",
                field="due_by",
                next_block_time=earliest,
            )
        text = body.document.as_json()
        digest = document_hash(text)
        finish = Finish("practice.demand", event="DemandPublished", arg="demandId")
        try:
            written = self.send(
                ledger, me, "publishDemand", digest, addressee, body.due_by, finish=finish, texts=[text]
            )
        except LedgerRevertError as exc:
            # The due day passed after the check above, before the transaction was mined (the next block
            # came later than the earliest it could): the contract's refusal, naming the field.
            raise revert_to_api_error(exc, fields=DEMAND_FIELDS) from exc
        return cast(m.Written[m.DemandPublic], written)

    def answer(
        self, ledger: LedgerService, *, principal: Principal, demand_id: int, body: m.DemandAnswerCreate
    ) -> m.Written[m.DemandPublic]:
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.DemandPublic], resumed)
        me = ledger.department_id_of(principal)
        current = self.demand(demand_id)
        if current.answer is not None:
            raise ApiError("DEMAND_ALREADY_ANSWERED", f"demand {demand_id} was answered already")
        if (current.addressee is not None and current.addressee != me) or (
            current.addressee is None and current.publisher == me
        ):
            raise ApiError("NOT_A_PARTY", f"demand {demand_id} is not addressed to department {me}")
        texts = [] if body.note is None else [{"note": body.note}]
        note = document_hash(texts[0]) if texts else ZERO32
        code = 0 if body.decline_reason is None else int(DeclineReason[body.decline_reason.upper()])
        args = (demand_id, int(_ANSWERS[body.answer]), body.resource_id or 0, code, note)
        finish = Finish("practice.demand", demand_id)
        written = self.send(ledger, me, "answerDemand", *args, finish=finish, texts=texts)
        return cast(m.Written[m.DemandPublic], written)

    # --- evaluations -------------------------------------------------------------------------------------

    def evaluation_period(self) -> m.EvaluationPeriodPublic:
        """The deployed contract's evaluation period by the chain's clock: the one value the console and the
        CLI read (a copy of it in either would tell "scored this period" by another clock or length)."""
        p = self.reader.evaluation_period()
        return m.EvaluationPeriodPublic(
            length_seconds=p.length, current=p.current, starts_at=p.starts_at, ends_at=p.ends_at,
            chain_time=p.chain_time,
        )  # fmt: skip

    def evaluations(
        self, agreement: m.AgreementPublic, *, index: AuditContext, page: ListPage
    ) -> Listed[m.EvaluationPublic]:
        """The agreement's evaluations in the order they were recorded, one page read from the audit index
        (:func:`node.audit.practice_index.evaluations`: one range of the agreement's entries, no log read
        from the chain) once the index is healed and brought up to the chain's head
        (:meth:`~node.audit.service.AuditContext.caught_up`); the page's comments read in one query.

        Raises:
            ApiError: VALIDATION_ERROR for a malformed cursor, or one past the agreement's evaluations.
            NodeError: the node fails while the index catches up.
        """
        block, _ = index.caught_up()
        try:
            found = practice_index.evaluations(
                index.engine, agreement.id, provider=agreement.provider, consumer=agreement.consumer,
                cursor=page.cursor, limit=page.limit,
            )  # fmt: skip
        except InvalidQueryError as exc:
            raise ApiError("VALIDATION_ERROR", exc.message, field=exc.field) from None
        texts = self.texts.get_many(e.comment_hash for e in found.items)
        return Listed([self._evaluation(e, texts) for e in found.items], found.next_cursor, block)

    def _evaluation(
        self, e: EvaluationRecord, texts: Callable[[bytes], m.StoredText | None] | None = None
    ) -> m.EvaluationPublic:
        """``e`` as the API shows it; its comment from ``texts`` (a page's, read at once), else read here."""
        names = (
            ("timeliness", "completeness", "accuracy")
            if e.side is ScoredSide.PROVIDER
            else ("purpose_compliance",)
        )
        side: Literal["provider", "consumer"] = "provider" if e.side is ScoredSide.PROVIDER else "consumer"
        return m.EvaluationPublic(
            agreement_id=e.agreement_id, period=e.period, scored_side=side, scorer=e.scorer, scored=e.scored,
            scores=dict(zip(names, e.scores, strict=True)), comment=(texts or self.texts.get)(e.comment_hash),
            block_number=e.block_number,
        )  # fmt: skip

    def evaluate(
        self,
        ledger: LedgerService,
        *,
        principal: Principal,
        agreement_id: int,
        body: m.EvaluationCreate,
        receipts: ReceiptService | None = None,
    ) -> m.Written[m.EvaluationPublic]:
        """Score the other side of ``agreement_id``; ``body.delivery_id`` names the evidence: a delivery
        recorded on the ledger, or a receipt (``receipts``' journal) whose anchored batch the contract checks.

        Raises:
            ApiError: DELIVERY_NOT_FOUND (neither a ledger delivery nor a receipt of the caller's),
                NO_DELIVERY_UNDER_AGREEMENT (under another agreement, or a receipt not anchored yet), the
                contract's refusals (SCORE_OUT_OF_RANGE, ALREADY_SCORED, EVIDENCE_TOO_OLD, ...).
        """
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.EvaluationPublic], resumed)
        agreement = ledger.agreement(agreement_id, principal=principal)
        me = ledger.department_id_of(principal)
        finish = Finish("practice.evaluation", agreement_id)
        delivery_id = bytes.fromhex(body.delivery_id.removeprefix("0x"))
        suffix, evidence = self._evidence(ledger, receipts, agreement_id, delivery_id, me)
        texts = [] if body.comment is None else [{"comment": body.comment}]
        comment = document_hash(texts[0]) if texts else ZERO32
        # A score of the other side's is refused, not dropped: the evaluation would be recorded without it.
        theirs = next(
            (f for f in (m.PROVIDER_SCORES if me == agreement.consumer else m.CONSUMER_SCORES)
             if getattr(body, f) is not None),
            None,
        )  # fmt: skip
        if theirs is not None:
            mine, side = (
                ("timeliness, completeness and accuracy", "consumer")
                if me == agreement.consumer
                else ("purpose_compliance", "provider")
            )
            raise ApiError(
                "VALIDATION_ERROR", f"the {side} scores {mine}, not {theirs}: that is the other side's score",
                field=theirs,
            )  # fmt: skip
        if me == agreement.consumer:
            if body.timeliness is None or body.completeness is None or body.accuracy is None:
                raise ApiError(
                    "VALIDATION_ERROR", "the consumer scores timeliness, completeness and accuracy",
                    field="timeliness",
                )  # fmt: skip
            written = self.send(
                ledger, me, "scoreProvider" + suffix, agreement_id, body.timeliness, body.completeness,
                body.accuracy, comment, *evidence, finish=finish, texts=texts,
            )  # fmt: skip
        else:
            if body.purpose_compliance is None:
                raise ApiError(
                    "VALIDATION_ERROR", "the provider scores purpose_compliance", field="purpose_compliance"
                )
            written = self.send(
                ledger, me, "scoreConsumer" + suffix, agreement_id, body.purpose_compliance, comment,
                *evidence, finish=finish, texts=texts,
            )  # fmt: skip
        return cast(m.Written[m.EvaluationPublic], written)

    def _offers(self, name: str) -> bool:
        """Whether the deployed practice contract has ``name`` (a build deployed by an older dxl is kept, and
        may lack a function added since: :data:`node.deploy.LATER_FUNCTIONS`); read once."""
        from node.deploy import offers_function

        known = self._offered.get(name)
        if known is None:
            known = self._offered[name] = offers_function(
                self.client.code_at(str(self.client.address)), self.client.abi, name
            )
        return known

    def _evidence(
        self,
        ledger: LedgerService,
        receipts: ReceiptService | None,
        agreement_id: int,
        delivery_id: bytes,
        me: int,
    ) -> tuple[str, tuple[Any, ...]]:
        """The contract's evidence that ``agreement_id`` was delivered under: the suffix of the scoring
        function and its evidence arguments. A ledger delivery is its receipt as recorded
        (``scoreProvider``); a receipt delivered at volume is the batch it was anchored in
        (``scoreProviderForBatch``): one id names one delivery, so at most one of the two exists."""
        shown = "0x" + delivery_id.hex()
        try:
            recorded, _block = ledger._delivery(delivery_id)
            grant_id: int = recorded.grant_id
            evidence: tuple[str, tuple[Any, ...]] = ("", (delivery_id, recorded.as_tuple()))
        except ApiError as exc:
            views = [] if receipts is None else receipts.reader.lookup([delivery_id], reader=me)
            if exc.code != "DELIVERY_NOT_FOUND" or not views:
                raise
            view = views[0]
            if view.proof is None or view.status not in ("anchored", "final"):
                raise ApiError(
                    "NO_DELIVERY_UNDER_AGREEMENT",
                    f"receipt {shown} is {view.status}, not in an anchored batch: evaluation follows "
                    "delivery",
                    field="delivery_id",
                ) from None
            if not self._offers("scoreProviderForBatch"):
                raise ApiError(
                    "NO_DELIVERY_UNDER_AGREEMENT",
                    f"{shown} is a receipt; this ledger's SharingPractice, deployed by an older dxl, takes "
                    "only a ledger delivery as evidence",
                    field="delivery_id",
                ) from None
            grant_id = view.receipt.grant_id
            evidence = ("ForBatch", (grant_id, view.proof.first_sequence))
        if ledger.agreement_of_grant(grant_id) != agreement_id:
            raise ApiError(
                "NO_DELIVERY_UNDER_AGREEMENT",
                f"delivery {shown} was not made under agreement {agreement_id}",
                field="delivery_id",
            )
        return evidence


def _tx(result: TxResult) -> m.TransactionPublic:
    return m.TransactionPublic(hash=result.tx_hash, block_number=result.block_number)


# --- sampling inspection ---------------------------------------------------------------------------------

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
    """A presentation the service kept (the latest of a sampled delivery): its verdict's status, the SHA-256
    of the verdict as kept, the evidence its outcome records, and the block it was judged at (its verdict's
    ``block``; None for a verdict that read no block)."""

    status: str
    evidence_hash: bytes
    block: int | None

    @classmethod
    def of(cls, row: InspectionPresentationRow) -> KeptPresentation:
        block = json.loads(row.verdict).get("block")
        return cls(
            row.status,
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

    def __init__(self, practice: PracticeService, ledger: LedgerService) -> None:
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
        record = self._record(inspection_id, block=head.number)
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
            # The scorecard's rule (node.audit.scorecard: present_by before the clock, no outcome recorded).
            late = record.present_by < now
            sampled = []
            for d in derived.sample:
                kept, recorded = presented.get(_hex(d)), outcomes.get(d)
                slot = slot_of(d)
                sampled.append(
                    m.SampledDelivery(
                        delivery_id=_hex(d), provider=sampled_provider(derived, d),
                        presented=None if kept is None else kept.status,
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
            seed=_hex(record.seed) if derived is not None else None,
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

    def _send(self, fn: str, *args: Any, finish: Finish) -> m.Written[m.InspectionPublic]:
        written = self.practice._send(self.ledger, self.ledger.auditor_account(), fn, *args, finish=finish)
        return cast(m.Written[m.InspectionPublic], written)

    def _resumed(self, principal: Principal) -> m.Written[m.InspectionPublic] | None:
        return cast(m.Written[m.InspectionPublic] | None, self.ledger._resume(principal))

    def open(self, *, principal: Principal, body: m.InspectionCreate) -> m.Written[m.InspectionPublic]:
        if (resumed := self._resumed(principal)) is not None:
            return resumed
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

    def _sampled(self, inspection_id: int, delivery_id: str) -> tuple[InspectionRecord, bytes, DerivedSample]:
        record = self._record(inspection_id)
        derived = self.sample(record)
        if derived is None:
            raise ApiError("INSPECTION_STATUS_MISMATCH", f"inspection {inspection_id} is not drawn yet")
        raw = bytes.fromhex(delivery_id.removeprefix("0x"))
        if raw not in derived.sample:
            raise ApiError(
                "NOT_SAMPLED", f"delivery {delivery_id} is not in inspection {inspection_id}'s sample"
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
                the verdict kept was judged at, in time (nothing is kept); PRESENTATION_CLOSED, NOT_SAMPLED,
                NOT_A_PARTY, INSPECTION_STATUS_MISMATCH.
        """
        me = self.ledger.department_id_of(principal)
        record, raw, derived = self._sampled(inspection_id, body.delivery_id)
        if sampled_provider(derived, raw) != me:
            raise ApiError("NOT_A_PARTY", f"delivery {body.delivery_id} is not department {me}'s")
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
            verdict = at.verdict(body.manifest, body.payload_base64, raw)
            key = _hex(raw)
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
            row = session.get(InspectionPresentationRow, (inspection_id, _hex(drawn)))
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
            if kept is None and self.ledger._chain_time() <= record.present_by:
                raise ApiError(
                    "INVALID_OUTCOME",
                    f"delivery {body.delivery_id} may still be presented until {record.present_by}",
                )
            called = outcome_called_for(kept)
            finish = Finish("practice.inspection", inspection_id)
            return self._send(
                "recordOutcome", inspection_id, raw, int(called.outcome), called.evidence_hash, finish=finish
            )


class InspectionDrawer:
    """A thread that draws every open inspection once its seed block is mined, so that none expires for want
    of a draw: the EVM knows a block's hash for 256 blocks only (about a minute at the embedded node's
    busiest), and anyone may draw, the sample being fixed by the seed block alone, not by who sends the draw.
    Signed by the service's auditor key, or, on a service that holds none, by the first custodied key by
    address (drawing needs no role). A draw that fails (refused because another member drew first, the node
    away, the database unavailable) is tried again at the next look while the seed block's hash is known."""

    def __init__(self, ledger: LedgerService, interval: float) -> None:
        self.ledger = ledger
        self.interval = interval
        #: Inspections below this id are drawn or expired: never looked at again.
        self._next = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dxl-inspection-drawer", daemon=True)

    def start(self) -> InspectionDrawer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                # The thread lives on whatever failed (a node away, a database unavailable): the next look
                # draws what is still due.
                log.exception("inspection drawer: the look failed; trying again at the next")

    def tick(self) -> list[int]:
        """One look: draws the open inspections whose seed block is mined; returns their ids."""
        practice = self.ledger.practice
        if practice is None:
            return []
        head = self.ledger.client.block_number()
        count = int(practice.client.call("inspectionCount"))
        drawn: list[int] = []
        waiting: int | None = None
        for inspection_id in range(self._next, count + 1):
            record = practice.reader.inspection(inspection_id)
            if record.status is not InspectionStatus.OPEN:
                continue
            # BLOCKHASH(seed) is known from the block after the seed block on, and the draw's gas is estimated
            # on the head: a block must be mined on top of the seed block.
            if record.seed_block < head and self._draw(practice, inspection_id):
                drawn.append(inspection_id)
            elif waiting is None:
                waiting = inspection_id
        self._next = count + 1 if waiting is None else waiting
        return drawn

    def _draw(self, practice: PracticeService, inspection_id: int) -> bool:
        ledger = self.ledger.bound(None, write=True)
        try:
            account = self._account()
            finish = Finish("practice.inspection", inspection_id)
            practice._send(ledger, account, "drawSample", inspection_id, finish=finish)
        except LedgerRevertError as exc:
            # Drawn by someone else meanwhile, or expired: either way nothing is left to draw.
            log.info("inspection drawer: inspection %s not drawn here (%s)", inspection_id, exc.error_name)
            return False
        except ApiError as exc:
            log.warning("inspection drawer: inspection %s not drawn yet: %s", inspection_id, exc)
            return False
        log.info("inspection drawer: inspection %s drawn", inspection_id)
        return True

    def _account(self) -> Any:
        """Raises: ApiError NO_CUSTODIED_KEY when the service holds no key at all."""
        try:
            return self.ledger.auditor_account()
        except ApiError:
            names = self.ledger.custody.names_by_address()
            if not names:
                raise
            return self.ledger.custody.keystore.unlock(names[min(names)])
