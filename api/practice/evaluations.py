"""Mutual evaluation: under an agreement, each side scores the other once per evaluation period, with a
delivery or an anchored receipt of the agreement as evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

from api import models as m
from api.errors import ApiError
from api.ledger import Finish, Listed, ListPage
from api.practice.core import PracticeCore
from api.practice.texts import ZERO32
from node.audit import practice_index
from node.audit.errors import InvalidQueryError
from node.practice import EvaluationRecord
from node.types import ScoredSide
from verifier.catalog import document_hash

if TYPE_CHECKING:
    from api.auth import Principal
    from api.ledger import LedgerService
    from api.receipts import ReceiptService
    from node.audit.service import AuditContext


class EvaluationService(PracticeCore):
    """Evaluations for one ledger service."""

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
                NO_DELIVERY_UNDER_AGREEMENT (under another agreement, or a receipt not anchored yet),
                PRACTICE_PREDATES_OPERATION (a receipt, to a contract older than evaluation by batch), the
                contract's refusals (SCORE_OUT_OF_RANGE, ALREADY_SCORED, EVIDENCE_TOO_OLD, ...).
        """
        resumed = ledger._resume(principal)
        if resumed is not None:
            return cast(m.Written[m.EvaluationPublic], resumed)
        agreement = ledger.agreement(agreement_id, principal=principal)
        me = ledger.department_id_of(principal)
        finish = Finish("practice.evaluation", agreement_id)
        delivery_id = bytes.fromhex(body.delivery_id.removeprefix("0x"))
        suffix, evidence = self._evidence(ledger, receipts, agreement_id, delivery_id, principal)
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

    def _evidence(
        self,
        ledger: LedgerService,
        receipts: ReceiptService | None,
        agreement_id: int,
        delivery_id: bytes,
        principal: Principal,
    ) -> tuple[str, tuple[Any, ...]]:
        """The contract's evidence that ``agreement_id`` was delivered under: the suffix of the scoring
        function and its evidence arguments. A ledger delivery is its receipt as recorded
        (``scoreProvider``); a receipt delivered at volume is the batch it was anchored in
        (``scoreProviderForBatch``): one id names one delivery, so at most one of the two exists. Either is
        found only among the caller's own exchanges: another department's delivery is answered as an id that
        does not exist (a delivery under another agreement of its own is NO_DELIVERY_UNDER_AGREEMENT)."""
        shown = "0x" + delivery_id.hex()
        me = ledger.department_id_of(principal)
        try:
            recorded, _block = ledger._delivery(delivery_id)
            ledger._party_check(principal, "delivery", shown, recorded.provider, recorded.consumer)
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
            self._refuse_unoffered(
                "scoreProviderForBatch",
                f"evaluation on the evidence of receipt {shown} (it takes a ledger delivery only)",
                field="delivery_id",
            )
            grant_id = view.receipt.grant_id
            evidence = ("ForBatch", (grant_id, view.proof.first_sequence))
        if ledger.agreement_of_grant(grant_id) != agreement_id:
            raise ApiError(
                "NO_DELIVERY_UNDER_AGREEMENT",
                f"delivery {shown} was not made under agreement {agreement_id}",
                field="delivery_id",
            )
        return evidence
