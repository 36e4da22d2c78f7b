"""The chain-access core of the practice service (:mod:`api.practice`): the ``SharingPractice`` client and
reader, writes signed with a custodied key and sent through the ledger service's journal, and the state the
inspections of every request share. Every area builds on :class:`PracticeCore`; it knows none of them."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from api.errors import ApiError
from api.ledger import Finish
from api.ledger.core import store_then_send
from api.practice.texts import TextStore
from node.chain import LedgerClient, TxResult
from node.practice import PracticeReader
from verifier.sampling import DerivedSample

if TYPE_CHECKING:
    from api.ledger import LedgerService


class PracticeCore:
    """The practice contract for one ledger service, and its writes."""

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

    def _refuse_unoffered(self, name: str, operation: str, *, field: str | None = None) -> None:
        """Refuse ``operation``, which calls ``name``, when the deployed practice contract lacks it: sent, it
        reverted without a reason, answered as a bare LEDGER_REJECTED.

        Raises:
            ApiError: PRACTICE_PREDATES_OPERATION (``field``: the input that asked for it, if one did).
        """
        if not self._offers(name):
            raise ApiError(
                "PRACTICE_PREDATES_OPERATION",
                f"the SharingPractice at {self.client.address}, deployed by an older dxl and kept on "
                f"upgrade, predates {operation}: it has no {name}",
                field=field,
            ) from None

    def presentation_lock(self, inspection_id: int, delivery_id: bytes) -> threading.Lock:
        """Held by a presentation of the delivery while it checks and writes, and by the recording of its
        outcome from reading the verdict until its transaction is mined: a presentation written in between
        would replace the verdict the outcome's evidence hash commits to."""
        with self._presentation_locks_guard:
            return self._presentation_locks.setdefault((inspection_id, delivery_id), threading.Lock())

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
        """The response of a mined practice write, as ``finish`` names it: built by the composed service
        (:meth:`api.practice.service.PracticeService.finish`), which knows every area's records."""
        raise NotImplementedError
