"""The receipts component of one API process (:class:`ReceiptService`): the checks at the door, the journal,
the anchorer and the look-ups composed, and the consumer's side (a batch acknowledged, a receipt disputed)."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from api.db import init_db
from api.errors import ApiError
from api.journal import Claim, JournaledSender, TxStatus
from api.receipts.anchorer import Anchorer, Reverted, Submit, Void
from api.receipts.grants import CacheClock, GrantCache, GrantState, _no_batch
from api.receipts.journal import AnchorLog, BatchSlot, ReceiptJournal, WriteTurn
from api.receipts.lookups import ReceiptReader, ReceiptView
from node.chain import LedgerClient, TxResult
from verifier.receipts import BatchTree, Receipt

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


#: The interpreter's thread switch interval while receipts are served (Python's default: 5 ms). The journal's
#: writer and the anchorer's threads wait on the disk and the node, then for the GIL, which the event loop,
#: parsing and checking receipts, holds for up to a whole interval each time: a closing round asks for it
#: again dozens of times. Measured in three alternating pairs of 15 s batched runs on 0.25 s blocks (load
#: average 5-7): 13,386-14,030 receipts/s and 1.22-1.46 s p95 to final at 5 ms, 15,230-17,898 receipts/s and
#: 1.02-1.20 s at 1 ms.
GIL_SWITCH_INTERVAL_S = 0.001
#: The collector's youngest-generation threshold while receipts are served (Python's default: 700). A request
#: of 1,000 receipts allocates some 5,000 containers that live until the journal has committed them: at 700,
#: every request ran several collections, each walking the receipts in flight and moving them to the older
#: generations, whose full collections then walk them again.
GC_GEN0_THRESHOLD = 50_000


def _tx_block(client: LedgerClient) -> Callable[[str], tuple[int, str] | None]:
    """A transaction's block (number, hash) as the node's receipt of it says; None when it is not mined there
    (or reverted: such an anchor anchored nothing)."""

    def locate(tx_hash: str) -> tuple[int, str] | None:
        receipt = client.receipt(tx_hash)
        if receipt is None or int(receipt["status"]) != 1:
            return None
        return int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex()

    return locate


def anchored_batch(anchors: LedgerClient) -> Callable[[str], AnchorLog | None]:
    """The batch an anchor transaction anchored (its slot, root and consumer, from its
    ``ReceiptBatchAnchored`` log); None while it is not mined on the node's chain, or reverted (it anchored
    nothing)."""

    def anchored(tx_hash: str) -> AnchorLog | None:
        receipt = anchors.receipt(tx_hash)
        if receipt is None or int(receipt["status"]) != 1:
            return None
        for event in anchors.decode_logs(receipt["logs"]):
            if event.name == "ReceiptBatchAnchored":
                a = event.args
                slot = BatchSlot(int(a["grantId"]), int(a["provider"]), int(a["firstSequence"]),
                                 int(a["leafCount"]))  # fmt: skip
                return AnchorLog(slot, bytes(a["root"]), int(a["consumer"]))
        return None

    return anchored


class ReceiptService:
    """The receipts component of one API process: checks, journal, anchorer and look-ups."""

    def __init__(
        self,
        *,
        engine: Engine,
        ledger: LedgerClient,
        anchors: LedgerClient,
        account_of: Callable[[int], LocalAccount],
        cache_clock: CacheClock,
        batch_size: int,
        batch_age: float,
        from_block: int = 0,
        submit: Submit | None = None,
        on_receipt: Callable[[str, Any], object] | None = None,
        gate: Callable[[], object] | None = None,
        confirmations: int = 0,
        void: Void | None = None,
        reverted: Reverted | None = None,
    ) -> None:
        init_db(engine)
        # The receipt journal's writer and the anchorer take turns writing (see Anchorer).
        turn = WriteTurn()
        self.anchors = anchors
        self.anchors_address = str(anchors.address)
        self.grants = GrantCache(ledger, clock=cache_clock, gate=gate)
        self._account_of = account_of
        self.anchorer = Anchorer(
            engine=engine,
            anchors=anchors,
            account_of=account_of,
            batch_size=batch_size,
            batch_age=batch_age,
            from_block=from_block,
            submit=submit,
            on_receipt=on_receipt,
            on_closed=self._remember,
            turn=turn,
            gate=gate,
            void=void,
            reverted=reverted,
        )
        self.journal = ReceiptJournal(engine, self.anchorer.submit, turn=turn)
        self.reader = ReceiptReader(
            engine,
            confirmations=confirmations,
            head=anchors.block_number if confirmations else None,
            block_hash=anchors.block_hash if confirmations else None,
            tx_block=_tx_block(anchors) if confirmations else None,
            anchored=anchored_batch(anchors),
        )
        self._keys_checked: set[int] = set()
        self._grant_locks: dict[int, asyncio.Lock] = {}
        self._key_locks: dict[int, asyncio.Lock] = {}
        #: Department ids of the principals that posted, by principal key.
        self.departments: dict[str, int] = {}

    def start(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        threshold = gc.get_threshold()
        if threshold[0] < GC_GEN0_THRESHOLD:  # the first service of the process
            # What exists by now (the application, its libraries, the contracts' ABIs) lives as long as the
            # process: frozen, full collections no longer walk it.
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *threshold[1:])
        self.journal.start()
        self.anchorer.start()

    def _remember(
        self, batch_id: int, root: bytes, tree: BatchTree, seqs: list[int], slot: BatchSlot
    ) -> None:
        self.reader.remember(batch_id, root, tree, seqs, slot)

    def stop(self) -> None:
        self.journal.stop()
        self.anchorer.stop()

    async def _load_grant(self, grant_id: int) -> GrantState:
        from anyio import to_thread

        # One read per grant at a time: the requests arriving while it runs wait for its answer.
        lock = self._grant_locks.setdefault(grant_id, asyncio.Lock())
        async with lock:
            state = self.grants.fresh(grant_id)
            if state is None:
                state = await to_thread.run_sync(self.grants.load, grant_id)
            return state

    async def _check_key(self, provider: int) -> None:
        """The anchorer signs with the provider's custodied key: refuse now, not later. One look at a time:
        the first requests of a provider, arriving together, would otherwise each ask the node."""
        from anyio import to_thread

        async with self._key_locks.setdefault(provider, asyncio.Lock()):
            if provider not in self._keys_checked:
                await to_thread.run_sync(self._account_of, provider)
                self._keys_checked.add(provider)

    async def accept(self, department: int, rows: list[Receipt]) -> None:
        """Check and journal ``rows`` posted by ``department``; returns once they are durable.

        Raises:
            ApiError: as ``POST /deliveries`` for the first receipt that fails (``index`` names it:
                DELIVERY_ID_NOT_PROVIDERS for an id outside the poster's namespace among them,
                DELIVERY_ID_IN_USE for the id of a delivery recorded on the ledger), or DUPLICATE_DELIVERY.
            NodeError: the node is unreachable while grant state must be read.
        """

        now = time.time()
        consumers: dict[int, int] = {}
        # Every grant checked below is the poster's as provider, so every id starts with its department id,
        # as the ledger requires of a delivery: an id of another's namespace would be read as that one's
        # delivery wherever a receipt is looked up by id (GET /receipts/{id}, the audit's provenance).
        namespace = department.to_bytes(4, "big")
        for i, row in enumerate(rows):
            if row.grant_id not in consumers:
                try:
                    state = self.grants.fresh(row.grant_id) or await self._load_grant(row.grant_id)
                    state.check(department, now)
                except ApiError as exc:
                    exc.details.update(index=i, delivery_id="0x" + row.delivery_id.hex())
                    raise
                if state.provider not in self._keys_checked:
                    await self._check_key(state.provider)
                consumers[row.grant_id] = state.consumer
            if row.delivery_id[:4] != namespace:
                raise ApiError(
                    "DELIVERY_ID_NOT_PROVIDERS",
                    f"receipts[{i}]: a delivery id of department {department} starts with its id as 4 "
                    f"big-endian bytes (0x{department:08x}…)",
                    field=f"receipts.{i}.delivery_id",
                    index=i,
                    delivery_id="0x" + row.delivery_id.hex(),
                )
        await self.journal.append(department, consumers, rows)

    # --- the consumer's side ------------------------------------------------------------------------------

    def _transact(
        self, sender: JournaledSender, claim: Claim | None, account: LocalAccount, fn: str, *args: Any
    ) -> TxResult:
        """Send ``fn(*args)`` to the anchors through the API's transaction journal, as every write of the
        service is (signed, journaled under the request's ``claim``, then sent; re-sent in order if the node
        loses it), and await it.

        Raises:
            As :meth:`JournaledSender.send` and :meth:`JournaledSender.wait`.
        """
        request = self.anchors.build(str(account.address), fn, *args)
        signed = sender.send(account, request, claim=claim, finish=None)
        return sender.wait(signed.tx_hash)

    @staticmethod
    def _resumed(sender: JournaledSender, claim: Claim | None) -> TxResult | None:
        """The transaction an earlier attempt of this request (same idempotency claim) journaled, finished
        now; None if there is none that can still be mined (the request runs)."""
        if claim is None or claim.tx_hash is None:
            return None
        entry = sender.journal.entry(claim.tx_hash)
        if entry is None or entry.status is TxStatus.SUPERSEDED:
            return None
        return sender.resume(entry)

    def acknowledge_batch(
        self,
        *,
        consumer: int,
        account: LocalAccount,
        grant_id: int,
        first_sequence: int,
        sender: JournaledSender,
        claim: Claim | None,
    ) -> tuple[TxResult, dict[str, Any]]:
        """Acknowledge every undisputed receipt of an anchored batch in one ``acknowledgeBatch``, journaled
        under the request's ``claim``.

        Raises:
            ApiError: RECEIPT_BATCH_NOT_FOUND, NOT_A_PARTY (not the batch's consumer), RECEIPT_BATCH_SETTLED.
            LedgerRevertError: the contract refused it anyway (state changed meanwhile).
        """
        resumed = self._resumed(sender, claim)
        root, leaf_count, _at, _provider, batch_consumer, status = self.anchors.call(
            "batch", grant_id, first_sequence
        )
        if int(status) == 0:
            raise _no_batch(grant_id, first_sequence)
        if consumer not in (int(_provider), int(batch_consumer)):
            # Not its exchange: the answer of a batch that does not exist, so batches cannot be probed.
            raise _no_batch(grant_id, first_sequence)
        if consumer != int(batch_consumer):
            raise ApiError(
                "NOT_A_PARTY", f"only department {batch_consumer} (the consumer) may settle this batch"
            )
        if resumed is not None:
            result = resumed
        elif int(status) == 2:
            raise ApiError(
                "RECEIPT_BATCH_SETTLED", f"batch {grant_id}/{first_sequence} was already acknowledged"
            )
        else:
            result = self._transact(sender, claim, account, "acknowledgeBatch", grant_id, first_sequence)
        batch = {"grant_id": grant_id, "first_sequence": first_sequence, "leaf_count": int(leaf_count),
                 "root": "0x" + bytes(root).hex(), "status": "acknowledged"}  # fmt: skip
        return result, batch

    def dispute(
        self,
        *,
        view: ReceiptView,
        consumer: int,
        account: LocalAccount,
        consumer_commitment: bytes,
        sender: JournaledSender,
        claim: Claim | None,
    ) -> TxResult:
        """Dispute one final receipt by its inclusion proof (``disputeReceipt``), journaled under the
        request's ``claim``.

        Raises:
            ApiError: NOT_A_PARTY (not its consumer), RECEIPT_NOT_FINAL, VALIDATION_ERROR (the commitment
                equals the anchored one).
            LedgerRevertError: the contract's refusals (batch settled, receipt already disputed).
        """
        if consumer != view.consumer:
            raise ApiError("NOT_A_PARTY", f"only department {view.consumer} (the consumer) may dispute it")
        if view.status != "final" or view.proof is None:
            raise ApiError("RECEIPT_NOT_FINAL", f"the receipt is {view.status}; dispute it once it is final")
        if consumer_commitment == view.receipt.commitment:
            raise ApiError(
                "VALIDATION_ERROR",
                "a dispute needs a consumer commitment that differs from the anchored one",
                field="consumer_commitment",
            )
        resumed = self._resumed(sender, claim)
        if resumed is not None:
            return resumed
        proof = view.proof
        return self._transact(
            sender, claim, account, "disputeReceipt", view.receipt.grant_id, proof.first_sequence,
            view.receipt.as_tuple(), proof.index, list(proof.proof), consumer_commitment,
        )  # fmt: skip
