"""The inspection drawer: a thread of the service that draws every open inspection in time."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from api.errors import ApiError
from api.ledger import Finish
from node.chain import LedgerRevertError
from node.types import InspectionStatus

if TYPE_CHECKING:
    from api.ledger import LedgerService
    from api.practice.core import PracticeCore

log = logging.getLogger(__name__)


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

    def _draw(self, practice: PracticeCore, inspection_id: int) -> bool:
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
