"""The ledger service: the areas composed (:mod:`api.ledger`). It is the one class that knows every area's
records, so the one place that turns a mined transaction into the response its route answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from api import models as m
from api.auth import Principal
from api.errors import ApiError
from api.ledger.core import Finish, b32, tx_public
from api.ledger.deliveries import DeliveryService
from api.ledger.governance import GovernanceService
from node.chain import LedgerClient, TxResult
from node.types import (
    DeliveryReceipt,
)

if TYPE_CHECKING:
    from api.practice import PracticeService


class LedgerService(DeliveryService, GovernanceService):
    """Everything the routes do on the ledger, for one deployment and one key custody."""

    #: Demands and evaluations (:mod:`api.practice`), when ``SharingPractice`` is deployed beside it.
    practice: PracticeService | None = None

    def attach_practice(self, practice: LedgerClient, *, from_block: int) -> None:
        """Serve demand lists and evaluations from ``practice``. Its errors join the ledger client's decoder:
        a practice transaction that reverts once mined is replayed through the journal's client."""
        from api.practice import PracticeService
        from node.chain import ErrorDecoder

        self.client.errors = ErrorDecoder(
            [*self.client.abi, *(e for e in practice.abi if e.get("type") == "error")]
        )
        self.practice = PracticeService(client=practice, ledger=self, from_block=from_block)

    def practice_service(self) -> PracticeService:
        """Raises: ApiError PRACTICE_NOT_DEPLOYED when no ``SharingPractice`` is deployed beside it."""
        if self.practice is None:
            raise ApiError("PRACTICE_NOT_DEPLOYED", "no sharing practice contract beside this ledger")
        return self.practice

    def _finish(self, result: TxResult, finish: Finish, principal: Principal) -> Any:
        if finish.view.startswith("practice."):
            # Demands, evaluations, inspections: built from the practice contract's events.
            return self.practice_service().finish(self, result, finish)
        ident: Any = finish.record_id
        if finish.event is not None and finish.arg is not None:
            ident = result.event(finish.event).args[finish.arg]
        tx = tx_public(result)
        if finish.view == "signature":
            request_id = int(str(finish.record_id))
            return m.SignatureOutcome(
                status="concluded",
                signing=self.signing(principal=principal, request_id=request_id),
                transaction=tx,
                agreement=self.agreement(int(ident)),
            )
        if finish.view == "deliveries":
            return m.DeliveryBatchPublic(
                transaction=tx,
                records=[
                    self._delivery_public(
                        bytes(ev.args["deliveryId"]),
                        DeliveryReceipt.from_event_args(int(ev.args["grantId"]), ev.args),
                        result.block_number,
                    )
                    for ev in result.events_named("DeliveryRecorded")
                ],
            )
        if finish.view == "delivery":
            raw_id = b32(str(ident))
            receipt, block = self._delivery(raw_id)
            return m.Written(transaction=tx, record=self._delivery_public(raw_id, receipt, block))
        readers: dict[str, Callable[[int], Any]] = {
            "resource": self.resource, "request": self.request, "agreement": self.agreement,
            "grant": self.grant, "proposal": lambda ident: self.proposal(ident, viewer=principal),
        }  # fmt: skip
        return m.Written(transaction=tx, record=readers[finish.view](int(ident)))
