"""Demand lists: a department publishes what it needs (to one department or to all), the addressee answers
with a resource, new or existing, or declines; a demand to all is answered with a resource by a department
holding the data, and declined by none (the contract refuses it: ``DECLINE_NEEDS_ADDRESSEE``). The publisher
rejects a resource answer that does not meet its demand (which then waits for another) and withdraws a
demand still unanswered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from api import models as m
from api.errors import ApiError, revert_to_api_error
from api.ledger import AtBlock, Finish, Listed, ListPage
from api.practice.core import PracticeCore
from api.practice.texts import ZERO32, as_hex
from node.audit import practice_index
from node.audit.errors import InvalidQueryError
from node.chain import LedgerRevertError
from node.contract_errors import describe_revert
from node.endpoint import NodeHead
from node.practice import DemandHistory, DemandRecord
from node.types import DEMAND_NOTICE_S, DeclineReason, DemandAnswer, DepartmentStatus, RejectionReason
from verifier.catalog import document_hash
from verifier.text import iso_time

if TYPE_CHECKING:
    from api.auth import Principal
    from api.ledger import LedgerService
    from node.audit.service import AuditContext

#: The field of ``POST /demands`` each ``PracticeInvalidField`` of ``publishDemand`` names.
DEMAND_FIELDS: Mapping[str, str] = {"dueBy": "due_by", "addressee": "addressee", "textHash": "document"}

_ANSWERS = {
    m.DemandAnswerName.NEW_RESOURCE: DemandAnswer.NEW_RESOURCE,
    m.DemandAnswerName.EXISTING_RESOURCE: DemandAnswer.EXISTING_RESOURCE,
    m.DemandAnswerName.DECLINED: DemandAnswer.DECLINED,
}
_ANSWER_NAMES = {v: k for k, v in _ANSWERS.items()}
_REJECTION_NAMES = {int(r): m.RejectionReasonName(r.name.lower()) for r in RejectionReason}


class DemandService(PracticeCore):
    """Demands for one ledger service."""

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
        record, head = self._read_record(demand_id)
        return AtBlock(self._public(record, head.timestamp), head.number)

    def _read_record(self, demand_id: int) -> tuple[DemandRecord, NodeHead]:
        """The demand at the node's head, with its answers, rejections and withdrawal from its logs up to
        that block, and that head (see :meth:`read_demand`)."""
        head = self.client.node_head()
        try:
            record = self.reader.demand(demand_id, block=head.number)
        except LedgerRevertError as exc:
            if exc.error_name == "PracticeUnknownDemand":
                raise ApiError("DEMAND_NOT_FOUND", f"no demand {demand_id}") from None
            raise
        history = self.reader.demand_histories(demand_id, to_block=head.number).get(
            demand_id, DemandHistory()
        )
        return record.with_history(history), head

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
        texts = self.texts.get_many(
            h
            for d in found.items
            for h in (d.text_hash, d.answer_hash, *(r.reason_hash for r in d.rejections))
        )
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
        rejections = [
            m.DemandRejectionPublic(
                answer=_ANSWER_NAMES[r.rejected_answer.answer], answered_by=r.rejected_answer.answered_by,
                answered_at=r.rejected_answer.answered_at, resource_id=r.rejected_answer.resource_id,
                rejected_at=r.rejected_at, reason=_REJECTION_NAMES[r.reason_code],
                reason_code=r.reason_code, note=texts(r.reason_hash),
            )
            for r in d.rejections
        ]  # fmt: skip
        status = "withdrawn" if d.withdrawn_at else "open" if answer is None else answer.answer.value
        return m.DemandPublic(
            id=d.demand_id, publisher=d.publisher, addressee=d.addressee or None,
            published_at=d.published_at, due_by=d.due_by, catalog_size=d.catalog_size,
            # A withdrawn demand is owed by no one: not overdue, as the scorecard counts it.
            overdue=not d.withdrawn_at and d.overdue(now),
            text_hash=as_hex(d.text_hash),
            document=None if text is None else text.document, verified=bool(text and text.verified),
            status=status, answer=answer, rejections=rejections, withdrawn_at=d.withdrawn_at or None,
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
            # The contract's rule (publishDemand: DepartmentNotActive(addressee)), checked before signing so
            # the refusal names the field and the department, and so a SharingPractice deployed by an older
            # dxl (which took a suspended addressee) and kept on upgrade takes none either.
            if ledger._department_record(addressee).status is not DepartmentStatus.ACTIVE:
                raise ApiError(
                    "DEPARTMENT_NOT_ACTIVE",
                    f"department {body.addressee} is suspended: it cannot answer a demand until governance "
                    "reinstates it, so one addressed to it now would read overdue and unmet on its card",
                    field="addressee",
                )
        # The contract's rule (publishDemand: dueBy >= block.timestamp + DEMAND_NOTICE), checked against the
        # earliest time the next block can carry: its refusal names no field, and a client must tell a due day
        # too soon from another field it may not use (the chain's clock is not the client's). Checked here as
        # well, so a SharingPractice deployed by an older dxl (which took any future due date) and kept on
        # upgrade gives no publisher the power to make an addressee overdue before it could answer.
        earliest = ledger.client.next_block_time()
        if body.due_by < earliest + DEMAND_NOTICE_S:
            soonest = earliest + DEMAND_NOTICE_S
            raise ApiError(
                "INVALID_FIELD",
                f"due_by {body.due_by} ({iso_time(body.due_by)}) leaves the addressee less than "
                f"{DEMAND_NOTICE_S // 86400} days to answer by the chain's clock: the next block's time is "
                f"{earliest} ({iso_time(earliest)}) at the earliest, so the due date is {soonest} "
                f"({iso_time(soonest)}) or later",
                field="due_by",
                next_block_time=earliest,
                earliest_due_by=soonest,
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
        # The contract's checks, in its order, before signing: nothing is sent for a refusal.
        current, _head = self._read_record(demand_id)
        _refuse_withdrawn(current)
        if current.answer is not DemandAnswer.NONE:
            raise ApiError("DEMAND_ALREADY_ANSWERED", f"demand {demand_id} was answered already")
        if current.addressee != me if current.addressee else current.publisher == me:
            raise ApiError("NOT_A_PARTY", f"demand {demand_id} is not addressed to department {me}")
        if not current.addressee and any(r.rejected_answer.answered_by == me for r in current.rejections):
            refused = {"demandId": demand_id, "departmentId": me}
            raise ApiError("ANSWERER_REJECTED", describe_revert("PracticeAnswererRejected", refused) or "")
        if not current.addressee and body.answer is m.DemandAnswerName.DECLINED:
            # The contract refuses it as well (PracticeOpenDemandDeclined), but a SharingPractice deployed by
            # an older dxl and kept on upgrade takes it: refused here, its demands to no one are safe too.
            refusal = {"demandId": demand_id, "departmentId": me}
            message = describe_revert("PracticeOpenDemandDeclined", refusal)
            raise ApiError("DECLINE_NEEDS_ADDRESSEE", message, field="answer")
        texts = [] if body.note is None else [{"note": body.note}]
        note = document_hash(texts[0]) if texts else ZERO32
        code = 0 if body.decline_reason is None else int(DeclineReason[body.decline_reason.upper()])
        args = (demand_id, int(_ANSWERS[body.answer]), body.resource_id or 0, code, note)
        finish = Finish("practice.demand", demand_id)
        written = self.send(ledger, me, "answerDemand", *args, finish=finish, texts=texts)
        return cast(m.Written[m.DemandPublic], written)

    def reject(
        self, ledger: LedgerService, *, principal: Principal, demand_id: int, body: m.DemandRejectionCreate
    ) -> m.Written[m.DemandPublic]:
        """The publisher rejects the resource its demand was answered with.

        Raises:
            ApiError: PRACTICE_PREDATES_OPERATION (the deployed contract has no ``rejectAnswer``),
                DEMAND_NOT_FOUND, DEMAND_WITHDRAWN, NOT_A_PARTY (not the publisher), ANSWER_NOT_REJECTABLE
                (unanswered or declined), each before signing; the contract's refusal of one mined later.
        """
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.DemandPublic], resumed)
        self._refuse_unoffered("rejectAnswer", "the rejection of an answer")
        me = ledger.department_id_of(principal)
        record = self._publishers(demand_id, me)
        if record.answer not in (DemandAnswer.NEW_RESOURCE, DemandAnswer.EXISTING_RESOURCE):
            refused = {"demandId": demand_id, "answer": int(record.answer)}
            raise ApiError("ANSWER_NOT_REJECTABLE", describe_revert("PracticeNotRejectable", refused) or "")
        texts = [] if body.note is None else [{"note": body.note}]
        note = document_hash(texts[0]) if texts else ZERO32
        code = int(RejectionReason[body.reason.upper()])
        finish = Finish("practice.demand", demand_id)
        written = self.send(ledger, me, "rejectAnswer", demand_id, code, note, finish=finish, texts=texts)
        return cast(m.Written[m.DemandPublic], written)

    def withdraw(
        self, ledger: LedgerService, *, principal: Principal, demand_id: int
    ) -> m.Written[m.DemandPublic]:
        """The publisher withdraws its demand, still unanswered.

        Raises:
            ApiError: PRACTICE_PREDATES_OPERATION (the deployed contract has no ``withdrawDemand``),
                DEMAND_NOT_FOUND, DEMAND_WITHDRAWN, NOT_A_PARTY (not the publisher), DEMAND_ALREADY_ANSWERED,
                each before signing; the contract's refusal of one mined later.
        """
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.DemandPublic], resumed)
        self._refuse_unoffered("withdrawDemand", "the withdrawal of a demand")
        me = ledger.department_id_of(principal)
        record = self._publishers(demand_id, me)
        if record.answer is not DemandAnswer.NONE:
            refused = {"demandId": demand_id, "answer": int(record.answer)}
            message = describe_revert("PracticeDemandAnswered", refused) or ""
            raise ApiError(
                "DEMAND_ALREADY_ANSWERED", message + ": a resource that does not meet it is rejected first"
            )
        finish = Finish("practice.demand", demand_id)
        written = self.send(ledger, me, "withdrawDemand", demand_id, finish=finish)
        return cast(m.Written[m.DemandPublic], written)

    def _publishers(self, demand_id: int, me: int) -> DemandRecord:
        """The demand, not withdrawn and published by department ``me``: the contract's checks of a rejection
        and a withdrawal, made before signing so that nothing is sent.

        Raises:
            ApiError: DEMAND_NOT_FOUND, DEMAND_WITHDRAWN, NOT_A_PARTY.
        """
        record, _head = self._read_record(demand_id)
        _refuse_withdrawn(record)
        if record.publisher != me:
            refused = {"demandId": demand_id, "departmentId": me}
            raise ApiError("NOT_A_PARTY", describe_revert("PracticeNotPublisher", refused) or "")
        return record


def _refuse_withdrawn(record: DemandRecord) -> None:
    """Raises: ApiError DEMAND_WITHDRAWN when its publisher withdrew ``record``."""
    if record.withdrawn_at:
        message = describe_revert("PracticeDemandWithdrawn", {"demandId": record.demand_id}) or ""
        raise ApiError("DEMAND_WITHDRAWN", message)
