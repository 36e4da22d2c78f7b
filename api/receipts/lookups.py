"""Receipts by id with their status, batch and inclusion proof (:class:`ReceiptReader`), and a batch's
receipts for the verifier (:func:`batch_receipts`).

Receipt status: ``pending`` (journaled, in no batch yet), ``anchored`` (in a closed batch whose root and
inclusion proof are known, transaction sent), ``final`` (the anchoring transaction is mined, with
``DXL_CONFIRMATIONS`` blocks on top of it: the batch is on chain for good), ``refused`` (the contract refused
the batch, e.g. the grant was revoked in between; ``error`` says why; posted again, a refused receipt passes
the door's checks as a new one and is journaled anew). The batches of the grant sent behind
a refused one fail out of sequence: their receipts are batched again, in journal order, from the slot it left.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from api.receipts.input import _HASH_NAMES
from api.receipts.journal import AnchorLog, BatchSlot, _bind, batches_table, receipts_table
from api.receipts.rows import (
    _STATUS,
    _UINT64,
    JournalCorruptError,
    _checked_batch,
    _checked_receipt,
    _receipt_columns,
    _row_slot,
)
from node.errors import NodeError
from verifier.receipts import BatchTree, Receipt, ReceiptProof
from verifier.text import counted

log = logging.getLogger("dxl.receipts")

#: Ids one bulk look-up may name.
MAX_LOOKUP = 1000
#: Leaves of recent batch trees the reader keeps (about 100 bytes each): proofs of receipts being followed
#: are read off them instead of rebuilding the tree from the journal on every look-up.
TREE_CACHE_LEAVES = 1 << 19
#: Blocks the reader remembers as final on a chain with a confirmation depth (a number and a hash each): a
#: look-up of receipts anchored in them asks the node for their hash no more.
SETTLED_BLOCKS = 4096
#: Anchor transactions whose log's consumer the reader remembers (a hash and an id each): a look-up of
#: receipts in their batches asks the node for the log no more.
CONSUMERS_KEPT = 4096


class _Built(NamedTuple):
    """A batch's tree, each member's leaf index by journal ``seq``, and the slot it was anchored in."""

    tree: BatchTree
    indexes: dict[int, int]
    slot: BatchSlot


def batch_receipts(engine: Engine, grant_id: int, first_sequence: int) -> list[Receipt] | None:
    """The receipts of the journaled batch of ``grant_id`` starting at ``first_sequence``, in leaf order, or
    None if this service anchored no such batch (a refused batch does not count: its slot may be taken by
    the next). What ``dxl audit report --receipts`` carries for the verifier to recompute the root.

    Raises:
        JournalCorruptError: a row of the batch holds what the service never writes (changed outside it).
    """
    b, r = batches_table.c, receipts_table.c
    with engine.connect() as conn:
        batch_id = conn.execute(
            select(b.id)
            .where(b.grant_id == grant_id, b.first_sequence == first_sequence, b.state != "refused")
            .order_by(b.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if batch_id is None:
            return None
        rows = conn.execute(
            select(r.seq, r.grant_id, *_receipt_columns()).where(r.batch_id == batch_id).order_by(r.seq)
        ).all()
    return [_checked_receipt(row) for row in rows]


@dataclass(frozen=True)
class ReceiptView:
    """A receipt with its status, batch and inclusion proof (the body of ``GET /receipts/{id}``)."""

    receipt: Receipt
    provider: int
    consumer: int
    status: str
    accepted_at: float
    batch: dict[str, Any] | None
    proof: ReceiptProof | None
    error: str | None

    def to_json(self, anchors: str) -> dict[str, Any]:
        r = self.receipt
        return {
            "delivery_id": "0x" + r.delivery_id.hex(),
            "grant_id": r.grant_id,
            "provider": self.provider,
            "consumer": self.consumer,
            "commitment": "0x" + r.commitment.hex(),
            "hash_algorithm": _HASH_NAMES.get(r.hash_algorithm, str(r.hash_algorithm)),
            "byte_size": r.byte_size,
            "record_count": r.record_count,
            "status": self.status,
            "accepted_at": self.accepted_at,
            "sequence": self.proof.sequence if self.proof else None,
            "batch": self.batch,
            "proof": self.proof.to_json() if self.proof else None,
            "anchors": anchors,
            "error": self.error,
        }


class ReceiptReader:
    """Receipts by id with their proofs. Batch trees come from the anchorer as it closes batches
    (:meth:`remember`), or are rebuilt from the journal; the newest are kept, up to ``max_leaves`` leaves.

    ``confirmations`` (the confirmation depth): a mined batch reads ``final`` only once ``confirmations``
    blocks are on top of its block (``head`` gives the chain's height; read once per look-up), and only while
    that block is the chain's (``block_hash`` gives the chain's hash at a height): a reorganisation that
    orphaned it buries its height at once under the heavier branch's blocks, seconds before the anchorer has
    followed the anchor to the block that holds it now. Until then it reads ``anchored``, naming no block.
    A block found under the depth with its hash is remembered (:data:`SETTLED_BLOCKS`): it is final, not
    asked again. 0 (anvil, QBFT: a mined block is final) reads no height at all.

    A batch whose recorded block is orphaned is looked up by its transaction (``tx_block``: the block, number
    and hash, holding a transaction's receipt on the chain now): re-mined in another block of the chain, the
    batch's row is moved there and read by that block. The anchorer follows an anchor again only when the
    transaction journal saw blocks lost; a short reorganisation can re-mine it elsewhere without that (the
    reliability suite's network profile found receipts reading ``anchored`` for good after recovery).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_leaves: int = TREE_CACHE_LEAVES,
        confirmations: int = 0,
        head: Callable[[], int] | None = None,
        block_hash: Callable[[int], str | None] | None = None,
        tx_block: Callable[[str], tuple[int, str] | None] | None = None,
        anchored: Callable[[str], AnchorLog | None] | None = None,
    ) -> None:
        if confirmations and (head is None or block_hash is None):
            raise ValueError("a confirmation depth needs the chain's height and blocks (head, block_hash)")
        self._engine = engine
        self._confirmations = confirmations
        self._head = head
        self._block_hash = block_hash
        self._tx_block = tx_block
        self._anchored = anchored
        #: Blocks found on the chain under the confirmation depth, by number: their hash.
        self._settled: OrderedDict[int, str] = OrderedDict()
        # Keyed by batch id and root: a batch deleted when reopened may see its id reused by the next one.
        self._trees: OrderedDict[tuple[int, bytes], _Built] = OrderedDict()
        self._leaves = 0
        self._max_leaves = max_leaves
        #: The consumer each anchor transaction's log names, by transaction hash (the newest kept).
        self._consumers: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, batch_id: int, root: bytes, tree: BatchTree, seqs: list[int], slot: BatchSlot) -> None:
        """Keep a batch's tree, its members' journal sequence numbers in leaf order and its slot (the
        anchorer's, as it closed the batch). It replaces one kept under the same id and root: a batch reopened
        and closed again with the same members has their root, may get the id back, and fills another slot."""
        self._keep((batch_id, root), _Built(tree, {seq: i for i, seq in enumerate(seqs)}, slot), replace=True)

    def _keep(self, key: tuple[int, bytes], built: _Built, *, replace: bool = False) -> None:
        with self._lock:
            if key in self._trees:
                if not replace:
                    return
                self._leaves -= self._trees.pop(key).tree.size
            self._trees[key] = built
            self._leaves += built.tree.size
            while self._leaves > self._max_leaves and len(self._trees) > 1:
                self._leaves -= self._trees.popitem(last=False)[1].tree.size

    def _tree(self, conn: Any, batch_id: int, root: bytes, row: Any) -> _Built:
        """The batch's tree, each member's leaf index by ``seq`` and the slot it was anchored in: the
        anchorer's, or rebuilt from the journal (``row``: a member joined to its batch) and held to what the
        chain's log of its anchor says (when the node has it).

        Raises:
            JournalCorruptError: the members no longer hash to the root, or the chain anchored the batch's
                transaction with another root.
        """
        key = (batch_id, root)
        with self._lock:
            cached = self._trees.get(key)
            if cached is not None:
                self._trees.move_to_end(key)
                return cached
        rows = conn.execute(
            select(receipts_table.c.seq, receipts_table.c.grant_id, *_receipt_columns())
            .where(receipts_table.c.batch_id == batch_id)
            .order_by(receipts_table.c.seq)
        ).all()
        tree = BatchTree([_checked_receipt(r).leaf_hash() for r in rows])
        if tree.root != root:  # a tree that is not the anchored one is not kept
            raise JournalCorruptError(
                f"the journal's {counted(len(rows), 'receipt')} of batch {batch_id} no longer "
                f"{'hashes' if len(rows) == 1 else 'hash'} to its root 0x{root.hex()}: a row of the batch "
                "was changed, added or removed"
            )
        slot = _row_slot(row)
        # The slot is in no leaf and no root: only the anchor's transaction, which no edit of the journal
        # changes, says where the batch went. Unmined or not on this node (it lost the block), the row is all
        # there is to go by.
        on_chain = None
        if self._anchored is not None and row.tx_hash is not None:
            with contextlib.suppress(NodeError):
                on_chain = self._anchored(str(row.tx_hash))
        if on_chain is not None:
            if on_chain.root != root:
                raise JournalCorruptError(
                    f"batch {batch_id} holds root 0x{root.hex()}, its anchor {row.tx_hash} anchored "
                    f"0x{on_chain.root.hex()}: the journal was changed after the batch was anchored"
                )
            slot = on_chain.slot
            self._keep_consumer(str(row.tx_hash), on_chain.consumer)
        built = _Built(tree, {int(r.seq): i for i, r in enumerate(rows)}, slot)
        self._keep(key, built)
        return built

    def _keep_consumer(self, tx_hash: str, consumer: int) -> None:
        with self._lock:
            self._consumers[tx_hash] = consumer
            while len(self._consumers) > CONSUMERS_KEPT:
                self._consumers.popitem(last=False)

    def _anchor_consumer(self, tx_hash: str) -> int | None:
        """The consumer the log of anchor ``tx_hash`` names; None when the node does not have it mined (the
        row is all there is to go by) or no chain is read."""
        with self._lock:
            known = self._consumers.get(tx_hash)
        if known is not None or self._anchored is None:
            return known
        on_chain = None
        with contextlib.suppress(NodeError):
            on_chain = self._anchored(tx_hash)
        if on_chain is None:
            return None
        self._keep_consumer(tx_hash, on_chain.consumer)
        return on_chain.consumer

    def _proof(self, conn: Any, row: Any, receipt: Receipt) -> ReceiptProof:
        """The inclusion proof of a journal row's receipt in its batch.

        Raises:
            JournalCorruptError: the row or its batch is not what the service wrote.
        """
        _checked_batch(row)
        key = (int(row.batch_id), bytes(row.root))
        tree, indexes, slot = self._tree(conn, *key, row)
        held = _row_slot(row)
        if held != slot:
            # The slot kept may be stale rather than the row wrong: a batch reopened and closed again with the
            # same members (same root) may have the id back, journaled a moment before the anchorer tells this
            # reader. Rebuilt, its slot is the chain's log of its anchor where the node has it.
            with self._lock:
                if (forgotten := self._trees.pop(key, None)) is not None:
                    self._leaves -= forgotten.tree.size
            tree, indexes, slot = self._tree(conn, *key, row)
        if held != slot:
            raise JournalCorruptError(
                f"its batch {row.batch_id} says it holds receipts {held.first_sequence} to "
                f"{held.first_sequence + held.leaf_count - 1} of grant {held.grant_id} (department "
                f"{held.provider}); the batch anchored holds {slot.first_sequence} to "
                f"{slot.first_sequence + slot.leaf_count - 1} of grant {slot.grant_id} (department "
                f"{slot.provider}): its bookkeeping was changed after it closed"
            )
        # The consumer is in no leaf, root or slot: a row edited to name another read final, shown to that
        # department and hidden from the grant's consumer. The anchor's log names the batch's: asked once the
        # service saw it mined (once per batch, then kept), not on every look-up while it is on its way.
        mined = row.tx_hash is not None and row.state == "final"
        consumer = self._anchor_consumer(str(row.tx_hash)) if mined else None
        if consumer is not None and row.consumer != consumer:
            raise JournalCorruptError(
                f"the journal's row {row.seq} names consumer {row.consumer!r}, the anchor {row.tx_hash} of "
                f"its batch {row.batch_id} consumer {consumer}: it was changed after the batch was anchored"
            )
        index = indexes.get(row.seq)
        if index is None or tree.size != row.leaf_count or tree.leaf(index) != receipt.leaf_hash():
            raise JournalCorruptError(
                f"the journal's row {row.seq} is not the receipt batch {row.batch_id} anchored (a batch of "
                f"{counted(row.leaf_count, 'receipt')}, root 0x{bytes(row.root).hex()}): it was changed "
                "after the batch closed"
            )
        return ReceiptProof(receipt, int(row.first_sequence), index, int(row.leaf_count), bytes(row.root),
                            tuple(tree.proof(index)))  # fmt: skip

    def _confirmed_up_to(self) -> float:
        """The newest block dxl calls final (infinite without a confirmation depth; -1 when the node does not
        answer: nothing is called final that cannot be checked)."""
        if not self._confirmations:
            return float("inf")
        assert self._head is not None
        try:
            return self._head() - self._confirmations
        except NodeError:
            return -1

    def _orphaned(self, blocks: set[tuple[int, str]]) -> set[tuple[int, str]]:
        """Of ``blocks`` (number, hash), mined under the confirmation depth, those the chain's block at that
        number is not (orphaned), or which the node does not answer for: nothing is called final that cannot
        be checked."""
        orphaned: set[tuple[int, str]] = set()
        for number, block_hash in blocks:
            with self._lock:
                if self._settled.get(number) == block_hash:
                    continue
            assert self._block_hash is not None
            try:
                held = self._block_hash(number)
            except NodeError:
                held = None
            if held != block_hash:
                orphaned.add((number, block_hash))
                continue
            with self._lock:
                self._settled[number] = block_hash
                while len(self._settled) > SETTLED_BLOCKS:
                    self._settled.popitem(last=False)
        return orphaned

    def _relocated(self, rows: list[Any], orphaned: set[tuple[int, str]]) -> dict[str, tuple[int, str]]:
        """The batches of ``rows`` whose block is ``orphaned`` and whose transaction the chain holds in
        another block now: that block (number, hash) by transaction hash, written to their rows."""
        if not orphaned or self._tx_block is None:
            return {}
        moved: dict[str, tuple[int, str]] = {}
        for row in rows:
            if row.tx_hash is None or row.tx_hash in moved:
                continue
            if (row.block_number, row.block_hash) not in orphaned:
                continue
            try:
                found = self._tx_block(str(row.tx_hash))
            except NodeError:
                continue
            if found is not None and found not in orphaned and not self._orphaned({found}):
                moved[str(row.tx_hash)] = found
        if moved:
            with self._engine.begin() as conn:
                b = batches_table.c
                conn.execute(
                    batches_table.update()
                    .where(b.tx_hash == _bind("b_tx"), b.state == "final")
                    .values(block_number=_bind("b_block"), block_hash=_bind("b_hash")),
                    [{"b_tx": tx, "b_block": n, "b_hash": h} for tx, (n, h) in moved.items()],
                )
        return moved

    def posted_by(self, provider: int, ids: Sequence[bytes]) -> set[bytes]:
        """Those of ``ids`` that ``provider`` posted as receipts (in any state: a refused one is still what
        ``GET /receipts/{id}`` answers for its id)."""
        r = receipts_table.c
        query = select(r.delivery_id).where(
            r.provider == provider, r.delivery_id.in_(list(dict.fromkeys(ids)))
        )
        with self._engine.connect() as conn:
            return {bytes(row[0]) for row in conn.execute(query)}

    def lookup(self, ids: Iterable[bytes], *, reader: int | None) -> list[ReceiptView]:
        """The receipts with these ids that ``reader`` (a department id; None: an auditor) is party to."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        r, b = receipts_table.c, batches_table.c
        query = (
            select(r.delivery_id, r.grant_id, r.provider, r.consumer, r.commitment, r.hash_algorithm,
                   r.byte_size, r.record_count, r.accepted_at, r.batch_id, r.seq, b.first_sequence,
                   b.leaf_count, b.grant_id.label("batch_grant_id"), b.provider.label("batch_provider"),
                   b.root, b.state, b.tx_hash, b.block_number, b.block_hash, b.error)
            .select_from(receipts_table.outerjoin(batches_table, r.batch_id == b.id))
            .where(r.delivery_id.in_(wanted))
            .order_by(r.seq)
        )  # fmt: skip
        out: list[ReceiptView] = []
        confirmed_up_to = self._confirmed_up_to()
        with self._engine.connect() as conn:
            rows = [
                row
                for row in conn.execute(query).all()
                if reader is None or reader in (row.provider, row.consumer)
            ]
            orphaned = (
                self._orphaned({
                    (int(row.block_number), str(row.block_hash)) for row in rows
                    if row.state == "final" and row.block_hash is not None
                    and row.block_number is not None and row.block_number <= confirmed_up_to
                })
                if self._confirmations
                else set()
            )  # fmt: skip
            moved = self._relocated(rows, orphaned)
            for row in rows:
                try:
                    receipt = _checked_receipt(row)
                    proof = None if row.batch_id is None else self._proof(conn, row, receipt)
                except JournalCorruptError as exc:
                    # Evidence of tampering, shown as such: its id is the one asked for, the rest unreadable.
                    log.warning("receipt journal: %s", exc.message)
                    out.append(_corrupt_view(row, exc))
                    continue
                if proof is None:
                    out.append(ReceiptView(receipt, row.provider, row.consumer, "pending", row.accepted_at,
                                           None, None, None))  # fmt: skip
                    continue
                batch = {
                    "grant_id": receipt.grant_id,
                    "first_sequence": int(row.first_sequence),
                    "leaf_count": int(row.leaf_count),
                    "root": "0x" + bytes(row.root).hex(),
                    "tx_hash": row.tx_hash,
                    "block_number": row.block_number,
                }
                status = _STATUS[row.state]
                if status == "final" and row.tx_hash in moved:
                    batch["block_number"] = moved[row.tx_hash][0]  # re-mined there, on the chain
                    if batch["block_number"] > confirmed_up_to:
                        status = "anchored"
                elif status == "final" and (row.block_number, row.block_hash) in orphaned:
                    status, batch["block_number"] = "anchored", None  # its block is no longer the chain's
                elif status == "final" and (row.block_number is None or row.block_number > confirmed_up_to):
                    status = "anchored"  # mined, not yet under the confirmation depth
                view = ReceiptView(receipt, row.provider, row.consumer, status, row.accepted_at, batch, proof,
                                   row.error)  # fmt: skip
                out.append(view)
        return out


def _corrupt_view(row: Any, exc: JournalCorruptError) -> ReceiptView:
    """A journal row that is not what the service wrote: status ``corrupt``, ``error`` saying what; the
    fields of the row that read as the service writes them, zero for the others."""

    def count(value: Any) -> int:
        return value if type(value) is int and 0 <= value < _UINT64 else 0

    def word(value: Any) -> bytes:
        return bytes(value) if isinstance(value, bytes | memoryview) and len(value) == 32 else bytes(32)

    receipt = Receipt(word(row.delivery_id), count(row.grant_id), word(row.commitment),
                      count(row.hash_algorithm), count(row.byte_size), count(row.record_count))  # fmt: skip
    accepted_at = row.accepted_at if isinstance(row.accepted_at, float) else 0.0
    return ReceiptView(receipt, count(row.provider), count(row.consumer), "corrupt", accepted_at, None, None,
                       exc.message)  # fmt: skip
