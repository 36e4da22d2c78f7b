"""The :class:`Anchorer` (a thread of the service) collects each grant's journaled receipts and closes a batch
when it holds ``batch_size`` receipts or its oldest receipt is ``batch_age`` seconds old; a batch is one
``ReceiptAnchors.anchorBatch(grant, firstSequence, leafCount, root)`` transaction.

Batches are per grant, not per provider: the contract checks one grant per anchor (what ``recordDelivery``
checks), a batch has one consumer, who can acknowledge it whole without acknowledging another department's
receipts, and a grant that becomes unusable refuses only its own batches.

Exactly once: a batch's membership, root and first sequence number are journaled (``closed``) before its
transaction is sent, and the contract accepts a grant's batches only contiguously, so the slot
``(grant, firstSequence)`` is filled at most once. At start the anchorer compares every journaled batch with
the chain (``nextSequence``/``batch``): batches on chain are final, the others are sent again with the same
content — also after the node lost blocks it had mined (kill -9 of the embedded node loses the last seconds).
While it runs, the transaction journal re-sends what a node that lost blocks lacks, anchors included, and the
anchorer follows those again (:meth:`Anchorer.rewound`): mined again, a batch may now be refused. An anchor
it gave up (refused, or failed behind a refused one and its receipts batched again) is voided in the journal
(:func:`journaled_void`): should the node lose its block, a transfer of nothing takes its nonce, never its
bytes, which on the rewound chain could now succeed (its cause gone) and anchor receipts called refused, or
anchor a second time receipts batched again.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Engine, Select, select

from api.errors import ApiError
from api.journal import Entry, JournaledSender
from api.receipts.journal import BatchSlot, Journaled, WriteTurn, _bind, batches_table, receipts_table
from api.receipts.rows import _receipt_columns, _row_receipt
from node.chain import LedgerClient, LedgerRevertError, PendingTx
from node.errors import DxlError
from verifier.receipts import BatchTree

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


log = logging.getLogger("dxl.receipts")

#: Gas limit of one anchor (about 115,000 used; the first anchor of a grant about 17,000 more). Fixed, not
#: estimated: a grant's next batch is sent before the previous one is mined, and an estimate would see the
#: sequence number still taken.
ANCHOR_GAS = 300_000
#: A closing batch takes every pending receipt of its grant up to this many, not only ``batch_size``: an
#: anchorer that fell behind (a slow node, a busy disk) catches up with bigger batches instead of a growing
#: queue of small ones, each costing a transaction and its bookkeeping. 65,536 leaves: a 16-hash proof.
MAX_BATCH_LEAVES = 1 << 16
#: How often the follower asks the node's height while anchors wait. Each look is one ``eth_blockNumber``
#: through web3 (about 1.4 ms of the service's CPU): every 20 ms, fifty a second cost 3.5 ms of CPU per 1,000
#: receipts at 20,000 receipts/s; every 50 ms a mined anchor is seen 15 ms later on average, against blocks
#: of 250 ms and a time to final near a second.
FOLLOW_TICK_S = 0.05


@dataclass
class _Open:
    """A grant's journaled receipts not in a batch yet, in journal order."""

    provider: int
    seqs: list[int] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    oldest: float = 0.0


@dataclass(frozen=True, slots=True)
class _Closed:
    """A journaled, closed batch: what its anchor transaction carries, and where it stands."""

    batch_id: int
    grant_id: int
    provider: int
    first_sequence: int
    leaf_count: int
    root: bytes
    #: The grant's refusals settled when the batch closed (see :meth:`Anchorer._refused`).
    breaks: int


@dataclass
class _Sent:
    """A batch whose anchor transaction is sent: followed until mined (or refused)."""

    batch: _Closed
    pending: PendingTx
    #: Whether the batch's row names the transaction yet (written with the next block's bookkeeping).
    hash_recorded: bool = False


_T = TypeVar("_T")


def run_rounds(stop: threading.Event, round_: Callable[[], object], *, tick: float, what: str) -> None:
    """Run ``round_`` every ``tick`` seconds until ``stop`` is set. A round that fails is logged (a
    :class:`~node.errors.DxlError`, the node away or refusing, as ``what`` paused; anything else with its
    traceback) and the next comes a second later: nothing a round handles is lost with it, the journal keeps
    what was not anchored and the anchors sent are still followed when the node answers."""
    while not stop.is_set():
        try:
            round_()
        except DxlError as exc:
            log.warning("%s paused: %s", what, exc)
            stop.wait(1.0)
            continue
        except Exception:
            log.exception("%s failed; retrying", what)
            stop.wait(1.0)
            continue
        stop.wait(tick)


def _taken(waiting: queue.SimpleQueue[_T]) -> Iterator[_T]:
    """What ``waiting`` holds, taken one at a time until it is empty: what a caller that stops early (it
    failed) has not taken stays queued for the next round."""
    while True:
        try:
            yield waiting.get_nowait()
        except queue.Empty:
            return


def _each_until_done(items: list[_T], do: Callable[[_T], object]) -> None:
    """``do`` each of ``items`` in order, taking one off only once done: one that fails (the node or the
    database away half-way) stays first, done again at the next round before those behind it."""
    while items:
        do(items[0])
        items.pop(0)


#: Signs and sends an anchor transaction; returns it pending.
Submit = Callable[["LocalAccount", dict[str, Any]], PendingTx]


def journaled_submit(sender: JournaledSender) -> Submit:
    """Anchors sent through the API's transaction journal: a provider's key signs anchors and journaled writes
    alike, so an anchor the node loses must be re-sent with them, in nonce order, or every later transaction
    of that key waits behind its nonce forever."""

    def submit(account: LocalAccount, request: dict[str, Any]) -> PendingTx:
        try:
            signed = sender.send(account, request, claim=None, finish=None)
        except ApiError as exc:
            tx_hash = exc.details.get("tx_hash") if exc.code == "TRANSACTION_PENDING" else None
            if not tx_hash:
                raise
            # Journaled but not confirmed sent: reconciliation sends it; follow its hash like any other.
            entry = sender.journal.entry(str(tx_hash))
            if entry is None:
                raise
            return PendingTx(entry.tx_hash, entry.sender, entry.nonce, dict(request))
        return PendingTx(signed.tx_hash, signed.sender, signed.nonce, dict(request))

    return submit


#: Makes a refused anchor's transaction never minable again (see :func:`journaled_void`); False when its
#: outcome is not settled any more (the node lost its block: it is being sent again).
Void = Callable[["LocalAccount", PendingTx], bool]
#: The journaled transactions that reverted and are not voided yet, anchors among them: their hashes, senders
#: and nonces (pending, no request).
Reverted = Callable[[], list[PendingTx]]


def journaled_void(sender: JournaledSender) -> Void:
    """Voids anchors in the API's transaction journal. An anchor the anchorer gave up (refused, its receipts
    refused; or failed behind a refused one, its receipts batched again) must never be mined later: were the
    node to lose its block, the journal would otherwise send its bytes again, in their first order, and on the
    rewound chain its cause may be gone (a suspension sent past this service, never journaled here) — the
    refused receipts anchored while called refused, or receipts batched again anchored twice. Its nonce is
    still needed (the key's later transactions wait behind it): a transfer of nothing, signed now with the
    same nonce, takes its place then."""

    def void(account: LocalAccount, pending: PendingTx) -> bool:
        return sender.void(account, pending.tx_hash, pending.nonce)

    return void


def journaled_reverted(sender: JournaledSender) -> Reverted:
    """The transactions the API's transaction journal holds as reverted and not voided: at start, the anchors
    among them are voided (see :meth:`Anchorer._void_reverted`)."""

    def reverted() -> list[PendingTx]:
        return [PendingTx(e.tx_hash, e.sender, e.nonce, {}) for e in sender.journal.reverted()]

    return reverted


#: Told of each batch closed: its id, root, tree, its members' journal sequence numbers in leaf order and its
#: slot.
OnClosed = Callable[[int, bytes, BatchTree, list[int], BatchSlot], None]


class Anchorer:
    """Closes batches by size or age, anchors them, and follows their transactions to the chain.

    Two threads of its own, never the event loop's: the hot path only hands it journaled receipts
    (:meth:`submit`). One closes and sends batches; the other follows the anchors sent, block by block (one
    ``eth_blockNumber`` a tick while anchors wait), so a mined anchor reads ``final`` as soon as its block is
    seen, not after the closing round under way (which waits its turn at the database, builds a tree and
    claims thousands of receipts). A refused anchor is handed back to the closing thread, which owns the
    grants' pending receipts and next sequence numbers.
    Anchors are pipelined: a grant's next batch is sent as soon as it closes, with the key's next nonce, while
    earlier ones wait to be mined, so a grant gets as many anchors per block as batches closed meanwhile; and
    a closing batch takes everything its grant has pending (up to :data:`MAX_BATCH_LEAVES`), so a slower
    round makes bigger batches, not a queue. Bookkeeping is per round and per block, not per receipt: one
    database transaction closes a batch, one per block records the transactions sent and the batches mined.

    ``turn`` is shared with the :class:`ReceiptJournal`'s writer, which holds it for each group commit: with
    SQLite's single writer, a busy-waiting anchorer would otherwise find the journal writing nearly every
    time it polls, and fall ever further behind under load. The anchorer passes ``gate`` before taking it to
    send: while the transaction journal is reconciled with a node that lost blocks, sends wait, and the
    receipt journal must not wait with them.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        anchors: LedgerClient,
        account_of: Callable[[int], LocalAccount],
        batch_size: int,
        batch_age: float,
        from_block: int = 0,
        tick: float = 0.02,
        follow_tick: float = FOLLOW_TICK_S,
        submit: Submit | None = None,
        on_receipt: Callable[[str, Any], object] | None = None,
        on_closed: OnClosed | None = None,
        turn: WriteTurn | None = None,
        gate: Callable[[], object] | None = None,
        void: Void | None = None,
        reverted: Reverted | None = None,
    ) -> None:
        self._engine = engine
        self._void = void
        self._reverted = reverted
        #: Waits while the transaction journal is reconciled with a node that lost blocks; passed before
        #: taking the turn to send, so the receipt journal's writer does not wait with the anchorer.
        self._gate = gate
        self._on_closed = on_closed
        #: What single deliveries took lately (:meth:`api.delivery_ids.DeliveryIds.taken_lately`, set by the
        #: app): checked again as a batch closes. None: not checked.
        self.taken_lately: Callable[[], Callable[[list[bytes]], set[bytes]] | None] | None = None
        self._turn = turn or WriteTurn()
        self._anchors = anchors
        self._submit = submit or anchors.submit
        #: Told of each anchor's receipt (the transaction journal marks the anchor mined).
        self._on_receipt = on_receipt
        self._from_block = from_block
        self._account_of = account_of
        self.batch_size = batch_size
        self.batch_age = batch_age
        self._tick = tick
        self._follow_tick = follow_tick
        #: Receipts handed over, with the time they were: a batch's age counts from then, not from when a
        #: round of this thread (slower on a busy machine) found them.
        self._inbox: queue.SimpleQueue[tuple[float, list[Journaled]]] = queue.SimpleQueue()
        self._open: dict[int, _Open] = {}
        #: Anchors sent and not yet seen mined: appended by the closing thread, taken by the follower.
        self._sent: list[_Sent] = []
        self._sent_lock = threading.Lock()
        #: Anchors the contract refused, with its reason: the follower's findings for the closing thread.
        self._refusals: queue.SimpleQueue[tuple[_Sent, LedgerRevertError]] = queue.SimpleQueue()
        #: The refusals taken to be settled, in the order the follower found them (the closing thread's; each
        #: kept until it is settled).
        self._settling: list[tuple[_Sent, LedgerRevertError]] = []
        #: Journaled transactions sent again after the node lost their blocks (:meth:`rewound`).
        self._rewound: queue.SimpleQueue[list[Entry]] = queue.SimpleQueue()
        self._next: dict[int, int] = {}
        self._seen_block = -1
        self._unsent: list[_Closed] = []
        #: Per grant, the refusals settled that left a slot open (the chain's sequence stopped there).
        self._breaks: dict[int, int] = {}
        #: The last journal sequence number recovery read; the inbox repeats receipts up to it.
        self._recovered_upto = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dxl-receipt-anchorer", daemon=True)
        self._follower = threading.Thread(target=self._follow_run, name="dxl-receipt-follower", daemon=True)
        #: Set once start-up recovery is over (tests and the benchmark wait on it).
        self.ready = threading.Event()

    def submit(self, journaled: list[Journaled]) -> None:
        self._inbox.put((time.monotonic(), journaled))

    def rewound(self, entries: list[Entry]) -> None:
        """The node lost the blocks of these journaled transactions and they were sent again (the transaction
        journal's reconciliation): the anchors among them are followed again, as when first sent. Their
        batches were compared with the chain only at start; mined again, an anchor may now fail (and its
        receipts are then refused or batched again, as for any refusal), and where it succeeds its block
        changed."""
        if entries:
            self._rewound.put(entries)

    def start(self) -> None:
        self._thread.start()
        self._follower.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._follower):
            if thread.is_alive():
                thread.join(timeout=30)

    # --- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        run_rounds(self._stop, self._anchor_round, tick=self._tick, what="receipt anchoring")

    def _anchor_round(self) -> None:
        if not self.ready.is_set():
            self._recover()
            self.ready.set()
        self._follow_rewound()
        self._settle_refusals()
        self._drain()
        self._flush()
        self._close_due(time.monotonic())

    def _follow_run(self) -> None:
        run_rounds(self._stop, self._follow_round, tick=self._follow_tick, what="following receipt anchors")

    def _follow_round(self) -> None:
        if self.ready.is_set():  # recovery first: it decides what is sent again
            self._follow()

    def _follow_rewound(self) -> None:
        entries: dict[str, Entry] = {}
        for rewound in _taken(self._rewound):
            entries.update((e.tx_hash, e) for e in rewound)
        if not entries:
            return
        b = batches_table.c
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(batches_table).where(b.tx_hash.in_(list(entries)), b.state == "final")
            ).all()
            if rows:
                # Anchored, not final, until the chain holds them again.
                conn.execute(
                    batches_table.update()
                    .where(b.id.in_([r.id for r in rows]))
                    .values(state="closed", block_number=None, block_hash=None, final_at=None)
                )
        for r in rows:
            entry = entries[str(r.tx_hash)]
            self._follow_again(
                _Sent(_Closed(int(r.id), int(r.grant_id), int(r.provider), int(r.first_sequence),
                              int(r.leaf_count), bytes(r.root), self._breaks.get(int(r.grant_id), 0)),
                      PendingTx(entry.tx_hash, entry.sender, entry.nonce, {}), hash_recorded=True)
            )  # fmt: skip

    def _follow_again(self, sent: _Sent) -> None:
        with self._sent_lock:
            if all(s.pending.tx_hash != sent.pending.tx_hash for s in self._sent):
                self._sent.append(sent)
        self._seen_block = -1  # look at once, also if no block was added since the last look

    def _settle_refusals(self) -> None:
        # Taken off only once settled: a refusal that fails half-way (the node or the database away while its
        # anchor is voided or its receipts batched again) is settled again at the next round, before the
        # refusals behind it, instead of being dropped with its batch left closed for good.
        self._settling.extend(_taken(self._refusals))
        _each_until_done(self._settling, lambda refusal: self._refused(*refusal))

    def _drain(self) -> None:
        for handed_over, journaled in _taken(self._inbox):
            for chunk in journaled:
                seqs, leaves = chunk.seqs, chunk.leaves
                if seqs and seqs[0] <= self._recovered_upto:  # recovery read these from the journal already
                    fresh = bisect.bisect_right(seqs, self._recovered_upto)
                    seqs, leaves = seqs[fresh:], leaves[fresh:]
                self._add(chunk.grant_id, chunk.provider, seqs, leaves, handed_over)

    def _add(self, grant_id: int, provider: int, seqs: list[int], leaves: list[bytes], now: float) -> None:
        if not seqs:
            return
        group = self._open.get(grant_id)
        if group is None:
            group = self._open[grant_id] = _Open(provider)
        if not group.seqs:
            group.oldest = now
        group.seqs += seqs
        group.leaves += leaves

    def _due(self, group: _Open, now: float) -> bool:
        return len(group.seqs) >= self.batch_size or bool(group.seqs and now - group.oldest >= self.batch_age)

    def _close_due(self, now: float) -> None:
        due = [(grant_id, group) for grant_id, group in self._open.items() if self._due(group, now)]
        # One look at what single deliveries took lately a round (it may read the chain), not one a grant.
        lately = self.taken_lately() if due and self.taken_lately is not None else None
        if lately is not None:
            for grant_id, group in due:
                self._refuse_taken(grant_id, group, lately)
            due = [(grant_id, group) for grant_id, group in due if self._due(group, now)]
        if due:
            if self._gate is not None:
                self._gate()
            # One turn for the round: every due batch is journaled closed, then sent.
            with self._turn:
                for grant_id, group in due:
                    while self._due(group, now):
                        self._close(grant_id, group)
                self._send_unsent()
        for grant_id, group in list(self._open.items()):
            if not group.seqs:
                del self._open[grant_id]

    def _refuse_taken(self, grant_id: int, group: _Open, lately: Callable[[list[bytes]], set[bytes]]) -> None:
        """Take out of ``group``, before its batch closes, the receipts whose id a single delivery took since
        they were journaled (one sent past this service and mined meanwhile): anchored, the id would name two
        deliveries. They read ``refused`` with the reason (a batch of their own, never sent), as receipts
        of a batch the contract refused do. ``lately``: :meth:`api.delivery_ids.DeliveryIds.taken_lately`'s
        look-up."""
        if not group.seqs:
            return
        r = receipts_table.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(r.seq, r.delivery_id).where(
                    r.grant_id == grant_id, r.batch_id.is_(None), r.seq.between(group.seqs[0], group.seqs[-1])
                )
            ).all()
        taken = lately([bytes(row.delivery_id) for row in rows])
        drop = {int(row.seq) for row in rows if bytes(row.delivery_id) in taken}
        if not drop:
            return
        members = list(zip(group.seqs, group.leaves, strict=True))
        refused = [(q, leaf) for q, leaf in members if q in drop]
        error = (
            "DELIVERY_ID_IN_USE: a single delivery recorded on the ledger took this id after the receipt was "
            "accepted, before its batch closed; one id names one delivery"
        )
        with self._turn, self._engine.begin() as conn:
            batch_id = conn.execute(
                batches_table.insert().values(
                    grant_id=grant_id,
                    provider=group.provider,
                    first_sequence=self._next_sequence(grant_id),
                    leaf_count=len(refused),
                    root=BatchTree([leaf for _q, leaf in refused]).root,
                    state="refused",
                    error=error,
                    closed_at=time.time(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                receipts_table.update().where(r.seq == _bind("b_seq")).values(batch_id=batch_id),
                [{"b_seq": q} for q, _leaf in refused],
            )
        kept = [(q, leaf) for q, leaf in members if q not in drop]
        group.seqs[:] = [q for q, _leaf in kept]
        group.leaves[:] = [leaf for _q, leaf in kept]
        log.warning("%d receipt(s) of grant %s refused before anchoring: %s", len(refused), grant_id, error)

    def _next_sequence(self, grant_id: int) -> int:
        if grant_id not in self._next:
            self._next[grant_id] = int(self._anchors.call("nextSequence", grant_id))
        return self._next[grant_id]

    def _close(self, grant_id: int, group: _Open) -> None:
        n = min(len(group.seqs), max(self.batch_size, MAX_BATCH_LEAVES))
        seqs, leaves = group.seqs[:n], group.leaves[:n]
        first = self._next_sequence(grant_id)
        tree = BatchTree(leaves)
        root = tree.root
        with self._engine.begin() as conn:
            batch_id = conn.execute(
                batches_table.insert().values(
                    grant_id=grant_id,
                    provider=group.provider,
                    first_sequence=first,
                    leaf_count=n,
                    root=root,
                    state="closed",
                    closed_at=time.time(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            r = receipts_table.c
            # One statement: the single writer numbers receipts in journal order and hands them over in
            # that order, so a grant's unbatched receipts from the first to the last member are the members.
            claimed = conn.execute(
                receipts_table.update()
                .where(r.grant_id == grant_id, r.batch_id.is_(None), r.seq.between(seqs[0], seqs[-1]))
                .values(batch_id=batch_id)
            ).rowcount
            if claimed != n:
                log.error(
                    "batch %s claimed %s receipts for %s members; assigning one by one", batch_id, claimed, n
                )
                conn.execute(receipts_table.update().where(r.batch_id == batch_id).values(batch_id=None))
                conn.execute(
                    receipts_table.update().where(r.seq == _bind("b_seq")).values(batch_id=batch_id),
                    [{"b_seq": q} for q in seqs],
                )
        del group.seqs[:n], group.leaves[:n]
        group.oldest = time.monotonic()
        self._next[grant_id] = first + n
        if self._on_closed is not None:
            self._on_closed(int(batch_id), root, tree, seqs, BatchSlot(grant_id, group.provider, first, n))
        self._unsent.append(
            _Closed(int(batch_id), grant_id, group.provider, first, n, root, self._breaks.get(grant_id, 0))
        )

    def _flush(self) -> None:
        """Send the journaled batches not sent yet, in order; a failure (node away) leaves the rest for the
        next tick, so a closed batch is never left behind while the service runs."""
        if self._unsent:
            if self._gate is not None:
                self._gate()
            with self._turn:
                self._send_unsent()

    def _send_unsent(self) -> None:
        _each_until_done(self._unsent, self._send)

    def _send(self, batch: _Closed) -> None:
        account = self._account_of(batch.provider)
        request = self._anchors.build(
            str(account.address), "anchorBatch", batch.grant_id, batch.first_sequence, batch.leaf_count,
            batch.root, gas=ANCHOR_GAS,
        )  # fmt: skip
        pending = self._submit(account, request)
        with self._sent_lock:
            self._sent.append(_Sent(batch, pending))

    def _follow(self) -> None:
        with self._sent_lock:
            waiting = list(self._sent)
        if not waiting:
            return
        # One eth_blockNumber per tick; the transactions' receipts only when a block was added, in one
        # JSON-RPC batch, read raw by the ledger client (web3 formatted every field of each receipt and of its
        # logs).
        block = self._anchors.block_number()
        if block == self._seen_block:
            return
        still: list[_Sent] = []
        seen: list[tuple[_Sent, Any]] = []
        receipts = self._anchors.receipts([sent.pending.tx_hash for sent in waiting])
        for sent, receipt in zip(waiting, receipts, strict=True):
            if receipt is None:
                still.append(sent)
                continue
            seen.append((sent, receipt))
        mined = [(s, int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex())
                 for s, receipt in seen if int(receipt["status"]) == 1]  # fmt: skip
        # One turn per block: the transaction journal learns where each anchor was mined, and the batches
        # mined become final in one transaction.
        with self._turn:
            if self._on_receipt is not None:
                for sent, receipt in seen:
                    self._on_receipt(sent.pending.tx_hash, receipt)
            self._record(mined, [s for s in still if not s.hash_recorded])
        # Only once recorded: a round that failed (the journal could not place a block) looks again at the
        # same block, not at the next one only.
        self._seen_block = block
        done = {id(sent) for sent, _ in seen}
        with self._sent_lock:
            self._sent = [s for s in self._sent if id(s) not in done]
        for sent, receipt in seen:
            if int(receipt["status"]) != 1:
                try:
                    # The contract's reason (a transaction followed again after lost blocks: by its hash).
                    self._anchors.wait(sent.pending if sent.pending.request else sent.pending.tx_hash)
                except LedgerRevertError as exc:
                    self._refusals.put((sent, exc))

    def _record(self, mined: list[tuple[_Sent, int, str]], unrecorded: list[_Sent]) -> None:
        """One transaction: the batches mined (final, with transaction and block), and the transactions of
        those still waiting (so that a look-up names it while the batch is anchored)."""
        if not mined and not unrecorded:
            return
        b = batches_table.c
        with self._engine.begin() as conn:
            if mined:
                conn.execute(
                    batches_table.update()
                    .where(b.id == _bind("b_id"))
                    .values(state="final", tx_hash=_bind("b_tx"), block_number=_bind("b_block"),
                            block_hash=_bind("b_hash"), final_at=time.time()),
                    [{"b_id": s.batch.batch_id, "b_tx": s.pending.tx_hash, "b_block": block,
                      "b_hash": block_hash} for s, block, block_hash in mined],
                )  # fmt: skip
            if unrecorded:
                conn.execute(
                    batches_table.update().where(b.id == _bind("b_id")).values(tx_hash=_bind("b_tx")),
                    [{"b_id": s.batch.batch_id, "b_tx": s.pending.tx_hash} for s in unrecorded],
                )
        for s in unrecorded:
            s.hash_recorded = True

    def _refused(self, sent: _Sent, exc: LedgerRevertError) -> None:
        # Whatever is decided below (refused, batched again, found anchored by another transaction), this
        # transaction must never be mined later: voided first, or, if its block was lost meanwhile (it is
        # being sent again and may now succeed), followed again and decided by what the chain makes of it.
        if self._void is not None and not self._void(self._account_of(sent.batch.provider), sent.pending):
            log.warning("anchor %s of batch %s: its block was lost; following it again", sent.pending.tx_hash,
                        sent.batch.batch_id)  # fmt: skip
            self._follow_again(sent)
            return
        # A key's anchors run in nonce order and refusals are settled in that order: a batch closed before an
        # earlier refusal of its grant was settled ran behind the refused batch, its first sequence past the
        # slot left open, so it failed out of sequence whatever the replay names (the replay runs on the
        # previous block's state: a consumer suspended there and reinstated in the batch's own block ahead of
        # it reads as the reason). Its receipts are fine.
        behind = sent.batch.breaks < self._breaks.get(sent.batch.grant_id, 0)
        if behind or exc.error_name == "ReceiptBatchOutOfSequence":
            anchored = self._anchored(sent.batch.grant_id, sent.batch.first_sequence)
            if anchored == (sent.batch.root, sent.batch.leaf_count):
                # An earlier transaction of this very batch (sent before a restart) anchored it.
                self._mark_final_from_chain(
                    sent.batch.batch_id, sent.batch.grant_id, sent.batch.first_sequence, sent.pending.tx_hash
                )
                return
            if not behind:
                self._break(sent.batch.grant_id)
            # An earlier batch of the grant was refused: these receipts are fine, batch them again.
            self._reopen(sent.batch.batch_id)
            return
        self._break(sent.batch.grant_id)
        log.warning("batch %s of grant %s refused: %s", sent.batch.batch_id, sent.batch.grant_id, exc)
        with self._engine.begin() as conn:
            conn.execute(
                batches_table.update()
                .where(batches_table.c.id == sent.batch.batch_id)
                # The code the door answers for the same cause (DEPARTMENT_NOT_ACTIVE, GRANT_REVOKED, ...),
                # one table for both (node.contract_errors); LEDGER_REJECTED for an error it does not list.
                .values(state="refused", error=exc.code)
            )

    def _anchored(self, grant_id: int, first_sequence: int) -> tuple[bytes, int] | None:
        """The root and leaf count of the batch the chain holds at ``(grant_id, first_sequence)``; None when
        it holds none there (the contract's ``batch`` view, status 0)."""
        root, leaf_count, _at, _provider, _consumer, status = self._anchors.call(
            "batch", grant_id, first_sequence
        )
        return None if int(status) == 0 else (bytes(root), int(leaf_count))

    def _break(self, grant_id: int) -> None:
        """The chain's sequence of ``grant_id`` stopped at a refused batch: the next batch starts where the
        chain says, and the batches closed so far are behind the refusal. Only here, not for a batch behind
        one: re-read while the batches closed since are on their way, the chain would hand out their slot
        a second time."""
        self._next.pop(grant_id, None)
        self._breaks[grant_id] = self._breaks.get(grant_id, 0) + 1

    def _reopen(self, batch_id: int) -> None:
        with self._engine.begin() as conn:
            rows = conn.execute(_to_requeue(receipts_table.c.batch_id == batch_id)).all()
            conn.execute(
                receipts_table.update().where(receipts_table.c.batch_id == batch_id).values(batch_id=None)
            )
            conn.execute(batches_table.delete().where(batches_table.c.id == batch_id))
        self._requeue(rows)

    def _requeue(self, rows: Sequence[Any]) -> None:
        """Put ``rows`` (:func:`_to_requeue`'s) back in their grants' open groups, to be batched again."""
        now = time.monotonic() - self.batch_age  # already waited: close at once
        by_grant: dict[int, list[Any]] = {}
        for row in rows:
            by_grant.setdefault(int(row.grant_id), []).append(row)
        for grant_id, items in by_grant.items():
            group = self._open.get(grant_id) or _Open(int(items[0].provider))
            self._open[grant_id] = group
            seqs = [int(r.seq) for r in items]
            leaves = [_row_receipt(r).leaf_hash() for r in items]
            # A grant's group stays in journal order, its batches' leaf order (the journal rebuilds their
            # trees by ``seq``, a batch claims its members by range). Reopened receipts are older than those
            # pending, not always than those reopened before them: the batches behind a refused one come back
            # in the order they were sent, the oldest first.
            if group.seqs and seqs[-1] > group.seqs[0]:
                merged = sorted(zip(group.seqs + seqs, group.leaves + leaves, strict=True))
                group.seqs, group.leaves = [q for q, _ in merged], [leaf for _, leaf in merged]
            else:
                group.seqs[:0], group.leaves[:0] = seqs, leaves
            group.oldest = min(group.oldest or now, now)

    # --- start-up -------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Bring the journal and the chain into agreement before anchoring anything new."""
        # A recovery interrupted by the node starts over: the lists and groups are rebuilt from the journal
        # (kept, a second pass would put every unbatched receipt in its grant's group twice).
        self._unsent.clear()
        self._open.clear()
        self._next.clear()
        self._breaks.clear()  # nothing is sent yet: the batches re-sent below are behind no refusal
        self._void_reverted()
        with self._engine.connect() as conn:
            open_batches = conn.execute(
                select(batches_table)
                .where(batches_table.c.state.in_(("closed", "final")))
                .order_by(batches_table.c.grant_id, batches_table.c.first_sequence)
            ).all()
        resend: list[Any] = []
        for b in open_batches:
            anchored = self._anchored(int(b.grant_id), int(b.first_sequence))
            if anchored is not None:
                if anchored != (bytes(b.root), int(b.leaf_count)):
                    log.error("batch %s of grant %s differs from the chain's; left alone", b.id, b.grant_id)
                    continue
                if b.state != "final":
                    self._mark_final_from_chain(int(b.id), int(b.grant_id), int(b.first_sequence), b.tx_hash)
                continue
            resend.append(b)
        for b in resend:  # in (grant, first sequence) order: the contract takes them contiguously
            if b.state == "final":
                # The node lost blocks it had mined (kill -9 of the embedded node): anchor the batch again.
                log.warning("batch %s of grant %s is no longer on chain", b.id, b.grant_id)
                with self._engine.begin() as conn:
                    conn.execute(
                        batches_table.update()
                        .where(batches_table.c.id == b.id)
                        .values(state="closed", block_number=None, block_hash=None)
                    )
            self._next[int(b.grant_id)] = int(b.first_sequence) + int(b.leaf_count)
            self._unsent.append(_Closed(int(b.id), int(b.grant_id), int(b.provider), int(b.first_sequence),
                                        int(b.leaf_count), bytes(b.root), 0))  # fmt: skip
        with self._engine.connect() as conn:
            rows = conn.execute(_to_requeue(receipts_table.c.batch_id.is_(None))).all()
        self._requeue(rows)
        # Receipts committed before this read may also be waiting in the inbox: those are skipped there.
        self._recovered_upto = max([self._recovered_upto, *(int(r.seq) for r in rows)])

    def _void_reverted(self) -> None:
        """Void every anchor that reverted and is not voided yet. A refusal is settled by the closing thread
        after the follower saw it; a process killed in between left the anchor reverted in the transaction
        journal, its batch closed, to be sent again below as a new transaction. Kept sendable, the old one
        would be sent again should the node lose its block, and could succeed where its cause is gone, after
        the batch sent again was refused or its receipts batched again elsewhere: anchored twice, or called
        refused. Whatever its batch became, its content goes with the new transaction."""
        if self._void is None or self._reverted is None:
            return
        reverted = self._reverted()
        if not reverted:
            return
        with self._engine.connect() as conn:
            providers = conn.execute(select(batches_table.c.provider).distinct()).scalars().all()
        accounts = {str(a.address).lower(): a for a in (self._account_of(int(p)) for p in providers)}
        ours = str(self._anchors.address).lower()
        for pending in reverted:
            account = accounts.get(pending.sender.lower())
            if account is None:  # not signed by a key that anchors here
                continue
            # What it called, from the node (which still holds it: the journal was reconciled before).
            called = self._anchors.transaction(pending.tx_hash)
            if called is None:
                continue
            if str(called.get("to") or "").lower() == ours:
                self._void(account, pending)

    def _mark_final_from_chain(self, batch_id: int, grant_id: int, first: int, tx_hash: str | None) -> None:
        """A batch the chain has but the journal does not know as final (the process died after sending)."""
        # The newest log of its slot, read in bounded ranges from the newest back (a node may cap a range).
        found = self._anchors.get_logs(
            "ReceiptBatchAnchored",
            grant_id.to_bytes(32, "big"),
            first.to_bytes(32, "big"),
            from_block=self._from_block,
            newest_first=True,
        )
        block = block_hash = None
        if (newest := next(found, None)) is not None:
            event, block = newest
            tx_hash, block_hash = event.tx_hash, event.block_hash
        with self._engine.begin() as conn:
            conn.execute(
                batches_table.update()
                .where(batches_table.c.id == batch_id)
                .values(
                    state="final",
                    tx_hash=tx_hash,
                    block_number=block,
                    block_hash=block_hash,
                    final_at=time.time(),
                )
            )


def _to_requeue(where: ColumnElement[bool]) -> Select[Any]:
    """The journal's receipts ``where`` says, in journal order, with what :meth:`Anchorer._requeue` needs."""
    r = receipts_table.c
    return select(r.seq, r.grant_id, r.provider, *_receipt_columns()).where(where).order_by(r.seq)
