"""The practice service: the areas composed (:mod:`api.practice`). It is the one class that knows every area's
records, so the one place that turns a mined practice transaction into the response its route answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api import models as m
from api.ledger import Finish
from api.practice.demands import DemandService
from api.practice.evaluations import EvaluationService
from api.practice.inspections import InspectionService
from node.chain import TxResult
from node.practice import EvaluationRecord, scores_of
from node.types import ScoredSide

if TYPE_CHECKING:
    from api.ledger import LedgerService


class PracticeService(DemandService, EvaluationService):
    """Demands, evaluations and inspections for one ledger service."""

    def inspections(self, ledger: LedgerService) -> InspectionService:
        """Inspections on behalf of ``ledger`` (the request's bound view: its writes are journaled)."""
        return InspectionService(self, ledger)

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


def _tx(result: TxResult) -> m.TransactionPublic:
    return m.TransactionPublic(hash=result.tx_hash, block_number=result.block_number)
