"""One id names one delivery: a single delivery on the ledger (``POST /deliveries``) or a receipt anchored in
a batch (``POST /receipts``), never both. The contracts cannot tell (the anchors see a batch's root, not its
receipts' ids; the ledger cannot see the receipts), so this service holds the rule, for both paths at once.

:class:`DeliveryIds` is the one place that knows which ids are taken:

* **recorded on the ledger**: the audit index, which follows the chain a moment behind
  (``DXL_AUDIT_FOLLOW_INTERVAL``), and for the blocks it has not followed yet the chain's own
  ``DeliveryRecorded`` logs, read here (a few blocks, only the blocks new since the last look-up, kept until
  the index has them). Before, the index alone was asked, and a single delivery mined a moment before a
  receipt with its id let the receipt through: accepted, anchored, and the id named two deliveries;
* **being recorded by this service**: a single delivery holds its ids (:meth:`DeliveryIds.delivering`) from
  before it reads the receipt journal until its transaction is mined or refused. The receipt journal's writer
  looks the ids of a group of receipts up and journals them under the same lock (:meth:`DeliveryIds.lock`),
  so of a single delivery and a receipt posted at the same moment with one id exactly one is taken: a
  receipt journaled first is in the journal when the delivery reads it; a delivery that holds its ids first
  is seen by the writer while it is in flight, and on the chain once mined.

A single delivery sent to the ledger with the department's own key, past this service, is seen once it is
mined (up to :data:`STALE_AFTER_S` later); one mined after the receipt with its id was journaled is beyond
this service to refuse at the door (it is the ledger's write, not this service's).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from node.chain import LedgerClient

log = logging.getLogger("dxl.receipts")

#: The ledger's event of a single delivery.
DELIVERY_RECORDED = "DeliveryRecorded"
#: How often the chain's recent blocks are read while look-ups come. Each read is an ``eth_blockNumber``
#: (about 1.4 ms of the service's CPU through web3) and, after a new block, an ``eth_getLogs``: read for every
#: group of receipts the journal writes, at some hundreds of groups a second, it would cost more than
#: journaling them. A single delivery of this service's is held taken until a read begun after it ended
#: (:attr:`DeliveryIds._settling`), so the interval leaves only a delivery sent past this service unseen,
#: for about this long after it is mined (:data:`STALE_AFTER_S` at most).
HEAD_TTL_S = 0.05
#: Blocks whose deliveries are kept after the index has followed them: a batch closing checks its receipts
#: against what single deliveries took since they were journaled (64 blocks: 16 s at the embedded node's
#: busiest, over a minute on 1 s blocks, where a batch closes within a second of its oldest receipt).
RECENT_BLOCKS = 64
#: A look-up that finds the last read of the chain begun longer ago than this reads it itself, on the
#: writer's thread (after a pause; or when the reading thread falls behind on a loaded machine, where
#: reading at twice the interval put a third of the reads back on the writer and cost the batched receipts
#: some 15% of their rate). So a delivery sent past this service is seen at most this long after it is mined.
STALE_AFTER_S = 0.5


class DeliveryIds:
    """Which delivery ids are taken (see the module docstring).

    ``indexed(ids)`` answers those of ``ids`` the audit index holds as recorded, ``indexed_up_to()`` the last
    block it has followed (None: none yet); ``client`` reads the chain's blocks after it, from
    ``from_block`` (the ledger's deployment) at the earliest.

    The chain is read on a thread of its own while look-ups come (at most every :data:`HEAD_TTL_S`), not on
    the receipt journal's writer: an ``eth_blockNumber`` and an ``eth_getLogs`` in series with every group's
    insert cost the batched receipts a third of their rate. A look-up after a pause reads the chain itself.
    """

    def __init__(
        self,
        client: LedgerClient,
        *,
        indexed: Callable[[list[bytes]], set[bytes]],
        indexed_up_to: Callable[[], int | None],
        from_block: int = 0,
    ) -> None:
        self._client = client
        self._indexed = indexed
        self._indexed_up_to = indexed_up_to
        self._from_block = from_block
        #: Held by the receipt journal's writer while it looks a group up and journals it, and by a single
        #: delivery while it claims its ids: one of the two comes first.
        self.lock = threading.Lock()
        self._delivering: Counter[bytes] = Counter()
        #: Guards what the chain's reads leave (``_recent``, ``_settling``, ``_read_*``); taken after lock.
        self._chain_lock = threading.Lock()
        #: Ids whose single delivery ended (mined, or refused) since the chain was last read, with when it
        #: ended: taken until a read of the chain begun after that moment has seen the block that holds them.
        self._settling: dict[bytes, float] = {}
        #: Ids recorded on chain in blocks the index had not followed at the last read, by block.
        self._recent: dict[int, set[bytes]] = {}
        #: The last block read for ``_recent`` (-1: none), and when the last read that completed began.
        self._read_up_to = -1
        self._read_at = float("-inf")
        self._wanted = threading.Event()
        self._closed = False
        self._reader = threading.Thread(target=self._run, name="dxl-delivery-ids", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        self._reader.join(timeout=5)

    @contextmanager
    def delivering(self, ids: Sequence[bytes]) -> Iterator[None]:
        """Hold ``ids`` as being recorded as single deliveries by this service for the ``with`` block: from
        before the receipt journal is read until the transaction is mined or refused."""
        with self.lock:
            self._delivering.update(ids)
        try:
            yield
        finally:
            with self.lock:
                self._delivering.subtract(ids)
                ended = time.monotonic()
                with self._chain_lock:
                    for i in ids:
                        if self._delivering[i] <= 0:
                            del self._delivering[i]
                            self._settling[i] = ended

    def taken(self, ids: list[bytes]) -> set[bytes]:
        """Those of ``ids`` that a single delivery holds: recorded on the ledger (the index, and the chain's
        blocks after it), or being recorded by this service. The caller holds :attr:`lock` when it acts on
        the answer (the receipt journal's writer: until the group is journaled).

        Raises:
            NodeError: the node does not answer (a look-up after a pause, which reads the chain itself).
            Exception: the audit index cannot be read (as ``indexed`` raises).
        """
        wanted = set(ids)
        if time.monotonic() - self._read_at > STALE_AFTER_S:
            self._read()  # after a pause: what the thread read last may be long gone by
        else:
            self._wanted.set()
        found: set[bytes] = set()
        with self._chain_lock:
            for block_ids in self._recent.values():
                found |= wanted & block_ids
            # A delivery that ended before the last read began is in the blocks read; a later one is held.
            found |= {i for i in wanted if i in self._delivering or i in self._settling}
        # The index after the chain's blocks: a block dropped from those for the index has is in it by now.
        return found | self._indexed(ids)

    def taken_lately(self) -> Callable[[list[bytes]], set[bytes]] | None:
        """For a batch about to close, whose receipts passed :meth:`taken` when journaled: a look-up of the
        ids a single delivery took since (recorded in the last :data:`RECENT_BLOCKS` blocks: one sent past
        this service), from what is held here (the chain read again if the last read is stale), not the
        index; None when nothing is held, the common case, so that the batch's ids need not be read."""
        if time.monotonic() - self._read_at > STALE_AFTER_S:
            try:
                self._read()
            except Exception as exc:  # the node away: what was read before still counts
                log.warning("reading the chain's recent deliveries failed: %s", exc)
        # Only what the chain holds: a single delivery of this service's own that races a journaled receipt
        # has lost already (it holds its ids before it reads the journal, and the writer journals under the
        # same lock, so one of the two saw the other). Counted here, one refused moments ago (still held, or
        # settling) refused the receipt that had won: answered 202, then never anchored.
        with self._chain_lock:
            held = set().union(*self._recent.values())
        if not held:
            return None
        return lambda ids: held.intersection(ids)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed:
                return
            self._wanted.clear()
            try:
                self._read()
            except Exception as exc:  # the node away: the next look-up after a pause reads and answers it
                log.warning("reading the chain's recent deliveries failed: %s", exc)
            time.sleep(HEAD_TTL_S)

    def _read(self) -> None:
        """Read the ids recorded in the blocks after the index's last and in the last :data:`RECENT_BLOCKS`,
        only blocks not read before.

        Raises:
            NodeError: the node does not answer.
        """
        began = time.monotonic()
        indexed = self._indexed_up_to()
        after = max(self._from_block, (indexed if indexed is not None else -1) + 1)
        head = self._client.block_number()
        with self._chain_lock:
            if head < self._read_up_to:  # the node lost blocks: what was read of them may be gone
                self._recent.clear()
                self._read_up_to = -1
            # The last RECENT_BLOCKS blocks even where the index has them (see taken_lately), and the blocks
            # the index has not followed, whatever their number: never a block read before.
            start = max(0, self._read_up_to + 1, min(after, head - RECENT_BLOCKS + 1))
        found: dict[int, set[bytes]] = {}
        if start <= head:
            for event, block in self._client.get_logs(DELIVERY_RECORDED, from_block=start, to_block=head):
                found.setdefault(block, set()).add(bytes(event.args["deliveryId"]))
        with self._chain_lock:
            for block, block_ids in found.items():
                self._recent.setdefault(block, set()).update(block_ids)
            # Kept a while after the index has them: a batch closing checks its receipts against these.
            for block in [b for b in self._recent if b < min(after, head - RECENT_BLOCKS)]:
                del self._recent[block]
            self._read_up_to = max(self._read_up_to, head)
            if began > self._read_at:
                self._read_at = began
                self._settling = {i: t for i, t in self._settling.items() if t >= began}
