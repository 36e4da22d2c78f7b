"""The write-ahead transaction journal: what makes a 2xx write exactly-once, whatever crashes.

Every transaction the API sends goes through :class:`JournaledSender`:

1. under the sender's lock, a nonce is reserved and the transaction signed; the signed bytes, their hash, the
   sender and the nonce are inserted into ``api_tx_journal`` and the request's idempotency claim is pointed at
   the hash, in ONE database transaction. Only then are the bytes sent. If that commit fails (disk full,
   database down), nothing is sent: ``503 DATABASE_UNAVAILABLE``.
2. The bytes are the unit of retry: a lost or late answer, "already known" or "nonce too low" mean "look the
   hash up" (:meth:`~node.chain.LedgerClient.send_signed`), and every re-send sends the same bytes.
3. The receipt is awaited without any database session open; the row is then marked ``mined`` (or
   ``reverted``) with its block, and the write waits until every journaled transaction of the blocks up to
   that one has its place in the journal (:class:`BlockPlacer`): should the node lose those blocks, they are
   re-sent in the order that numbered the records the write answers. A database that cannot record it (a
   full disk) answers ``TRANSACTION_PENDING``; the retry of the key records it and answers. With a
   confirmation depth (``DXL_CONFIRMATIONS``, where the last blocks may
   be reorganised) the write is answered only once its block is that deep on the node in use, from the
   receipt of the block held there (:meth:`JournaledSender.wait`).

:class:`Reconciler` heals the chain from the journal: at start, and whenever :class:`ChainWatcher` sees the
node come back (unreachable then reachable, the height going down, a known block's hash changing) or the chain
client fail over to another node of the network, one that died or one whose head stalled while another's
moved on (never a new signature: the same bytes). Rows whose block is
gone are reopened (gone: the chain holds another block at its height, or a lone node fell below it; a node
behind the others lacks a block only for now, and the client moves to a node that holds it, or the
reconciliation waits, writes held, until one does or the chain replaces it), every reopened row is re-sent in
its first order (block, then position in the block, across senders: the contract numbers records in mining
order, and each 2xx answer named an id), then the unmined ones, and each sender's nonce counter is rebuilt
from the node and the journal, so no gap stalls later transactions. The node keeps arrival order among equal
fees (``--order fifo``, :mod:`node.anvil`). A send first checks that the newest block holding a journaled
transaction is still on the chain: a node that restarted from an older state between two looks of the watcher
would otherwise mine a new write first, in the place (and with the id) of an acknowledged one. The claims of
requests whose transaction was reopened are handed back (their stored response is dropped), so a retry of the
key answers from the re-mined transaction.

An answer that reports a transaction someone else sent (an agreement another party relayed) first adopts it:
its signed bytes, read from the node, are journaled as mined (:meth:`JournaledSender.adopt`), so a lost block
takes it no more than the service's own.

Bytes sent before (a lost block's, an earlier attempt's) are never signed again on the node's word alone, even
when it refuses them as never minable ("nonce too low" and the node does not hold them). That refusal is
believed only when the chain says the nonce is used (:meth:`JournaledSender.judge_refusal`: the sender's count
at the confirmation depth, :meth:`~node.chain.LedgerClient.mined_nonce`, past the row's nonce, and no receipt
for its hash). The chain, not the pool: a node's pool may judge nonces by the head it had before (geth's does
after a reorganisation, and on the node a failover moved to, until it catches up with the new head and puts
the lost block's transactions back). At the depth, not the head: a nonce used only in the last blocks is free
again when they are reorganised away, and the bytes may be mined after all. Until then the row stays sent. In
reconciliation, a lost block's row ends the pass's re-sends (first order) and is reported ``waiting``: the
watcher keeps writes held and reconciles again at its next look, which sends the same bytes again; a row never
seen mined is left for a later pass, and writes go on. A retry of the key (:meth:`JournaledSender.resume`)
answers ``TRANSACTION_PENDING``, and the next retry sends the same bytes again. A lost block's nonce can only
be used without it when the node's state is not the chain it mined — as after a restart from anvil's own
periodic save, which stored a block's effects (nonces, storage) without the block (the reason for
:mod:`node.statekeeper`) — and then the write's effects may be there already: a new signature would record it
twice or revert. The row is marked superseded and logged as an error naming the lost write. Only a
transaction never mined is signed again at a new nonce: a request's bytes refused at their first send
(:meth:`JournaledSender.send`, another transaction of the same key holding its nonce), or an earlier
attempt's proven superseded (the request runs again).

A reverted transaction is voided (:meth:`JournaledSender.void`): a transfer of nothing signed at its nonce is
journaled as standby, and if the node loses its block the standby is sent in its place, never its bytes. Its
refusal was answered (a request's 4xx, kept as the key's final answer; a receipt batch the anchorer gave up),
and on a rewound chain its cause may be gone (a suspension or revocation sent past this service, never
journaled here): sent again, it would be mined — a write on the ledger that its client was told was refused.
:meth:`JournaledSender.wait` voids a request's reverted transaction before the refusal is answered; if the
node lost its block meanwhile, the answer is ``TRANSACTION_PENDING`` and the retry answers what the chain made
of it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from api.db import IdempotencyRecord, JournalChainRow, JournaledTransaction, insert_missing, utcnow
from api.errors import ApiError
from node.chain import (
    BlockRef,
    BlockStanding,
    LedgerClient,
    NodeBehindError,
    NonceTakenError,
    SignedTx,
    TransactionRefusedError,
    TxResult,
    receipt_poll_delays,
)
from node.errors import ConfigurationError, NodeError
from verifier.text import counted

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("dxl.api.journal")

#: Database failures that mean "unavailable" (disk full, server down, pool exhausted), not a bug.
DATABASE_DOWN = (OperationalError, PoolTimeoutError)
#: New signatures for one write whose nonce another transaction of the same key took meanwhile.
_NONCE_TAKEN_RETRIES = 3
#: A journaled transaction not mined after this long is re-sent by the watcher (the node may have lost it).
STALE_AFTER_S = 10.0
#: Settled rows read per page while looking for the newest block the node still has.
_BLOCK_PAGE = 50
#: Hashes per ``IN (...)`` list (SQLite takes at most 32,766 parameters a statement; a block holds fewer).
_IN_LIST = 500


class TxStatus(StrEnum):
    SENT = "sent"
    MINED = "mined"
    REVERTED = "reverted"
    #: Never minable: the node does not hold it and another transaction took its nonce.
    SUPERSEDED = "superseded"
    #: Reverted, and its effect must never happen any more (a receipt anchor whose receipts were refused or
    #: batched again): if the node loses its block, its nonce is filled by its ``STANDBY`` transaction, never
    #: by its bytes, which on the rewound chain might now succeed.
    VOIDED = "voided"
    #: A transfer of nothing signed at a voided transaction's nonce; sent only if the node loses that block.
    STANDBY = "standby"


class Refusal(StrEnum):
    """What a node's "nonce too low" for journaled bytes sent before proves
    (:meth:`JournaledSender.judge_refusal`)."""

    #: Mined after all (between the send and the look): the row is marked from its receipt.
    MINED = "mined"
    #: Never minable: the chain, under the confirmation depth, used its nonce for another transaction.
    SUPERSEDED = "superseded"
    #: Nothing: the chain has its nonce free (the node's pool is behind its head, and may yet mine the bytes).
    UNPROVEN = "unproven"


@dataclass(frozen=True)
class Claim:
    """The idempotency claim a request runs under: its row id, and the transaction it already sent, if any."""

    id: int
    owner: str
    tx_hash: str | None = None


@dataclass(frozen=True)
class Entry:
    """One journal row, detached from its session."""

    tx_hash: str
    raw: bytes
    sender: str
    nonce: int
    status: TxStatus
    finish: dict[str, Any] | None
    block_number: int | None

    @property
    def signed(self) -> SignedTx:
        return SignedTx(self.tx_hash, self.raw, self.sender, self.nonce)


def _entry(row: JournaledTransaction) -> Entry:
    return Entry(
        row.tx_hash, bytes(row.raw), row.sender, int(row.nonce), TxStatus(row.status),
        dict(row.finish) if row.finish else None, row.block_number,
    )  # fmt: skip


def database_unavailable(exc: BaseException) -> ApiError:
    log.warning("database unavailable: %s", exc)
    return ApiError("DATABASE_UNAVAILABLE", "the API database cannot be written; nothing was sent")


class ClaimLostError(ApiError):
    """The request's claim was taken over (its process was presumed dead) before its transaction was
    journaled; nothing was sent."""

    def __init__(self) -> None:
        super().__init__(
            "IDEMPOTENCY_IN_FLIGHT", "another request took this Idempotency-Key over; retry later"
        )


@dataclass(frozen=True)
class JournalChain:
    """A chain as the journal tells chains apart: its id and the hash of its first block (two chains of one
    id, such as two local networks, or an anvil started afresh, differ there)."""

    chain_id: int
    genesis_hash: str

    def __str__(self) -> str:
        return f"chain id {self.chain_id} (genesis block {self.genesis_hash})"


class JournalChainMismatchError(ConfigurationError):
    """Thrown when the API database journals the transactions of another chain than the node's
    (:meth:`Journal.bind_chain`)."""

    code = "JOURNAL_CHAIN_MISMATCH"

    def __init__(self, database: str, journaled: JournalChain, rpc_url: str, serving: JournalChain) -> None:
        self.journaled, self.serving = journaled, serving
        super().__init__(
            f"the API database ({database}) journals the transactions of {journaled}, and the node at "
            f"{rpc_url} serves {serving}: the blocks the journal names are not on this chain (reconciling "
            "would hold every write for blocks it never reaches, or send the other chain's signed "
            "transactions here). Point DXL_RPC_URL at a node of the journal's chain, or give this service "
            "the database of this chain's ledger, or a new one (DXL_DATABASE_URL; by default dxl.sqlite3 in "
            "DXL_HOME)"
        )


class Journal:
    """The ``api_tx_journal`` table. Blocking; every method opens and closes its own short session."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions()() as session:
            yield session

    def bind_chain(self, chain: JournalChain, *, rpc_url: str) -> None:
        """Record ``chain`` (served by the node at ``rpc_url``) as the journal's, or check that it is the one
        recorded: the journal's rows name blocks of one chain, and its signed transactions are valid there.
        Called at start, before the journal meets the chain; the first start on a database records the chain
        it starts on (also one journaled before chains were recorded).

        Raises:
            JournalChainMismatchError: the journal is another chain's.
            SQLAlchemyError: the database cannot be read or written.
        """
        with self._session() as session:
            first = {"id": 1, "chain_id": chain.chain_id, "genesis_hash": chain.genesis_hash}
            insert_missing(session, JournalChainRow, [{**first, "recorded_at": utcnow()}])
            row = session.get(JournalChainRow, 1)
            session.commit()
            assert row is not None  # inserted above, or there before
            recorded = JournalChain(int(row.chain_id), str(row.genesis_hash))
            if recorded != chain:
                url = session.get_bind().engine.url.render_as_string(hide_password=True)
                raise JournalChainMismatchError(url, recorded, rpc_url, chain)

    def record(self, signed: SignedTx, *, claim: Claim | None, finish: dict[str, Any] | None) -> None:
        """Journal ``signed`` and point ``claim`` at it, in one database transaction.

        Raises:
            ApiError: DATABASE_UNAVAILABLE (nothing recorded); IDEMPOTENCY_IN_FLIGHT (:class:`ClaimLostError`)
                when the claim is no longer this request's.
        """
        try:
            with self._session() as session:
                session.add(
                    JournaledTransaction(
                        tx_hash=signed.tx_hash, sender=signed.sender, nonce=signed.nonce, raw=signed.raw,
                        status=TxStatus.SENT.value, finish=finish,
                    )
                )  # fmt: skip
                if claim is not None:
                    moved = session.execute(
                        update(IdempotencyRecord)
                        .where(
                            IdempotencyRecord.id == claim.id,
                            IdempotencyRecord.owner == claim.owner,
                            IdempotencyRecord.status_code.is_(None),
                        )
                        .values(tx_hash=signed.tx_hash)
                    )
                    if getattr(moved, "rowcount", 0) != 1:
                        session.rollback()
                        raise ClaimLostError()
                session.commit()
        except DATABASE_DOWN as exc:
            raise database_unavailable(exc) from None

    def entry(self, tx_hash: str) -> Entry | None:
        with self._session() as session:
            row = session.scalar(select(JournaledTransaction).where(JournaledTransaction.tx_hash == tx_hash))
            return _entry(row) if row is not None else None

    def mark(
        self, tx_hash: str, status: TxStatus, block: BlockRef | None = None, index: int | None = None
    ) -> None:
        """Record what became of a transaction; a database failure is logged, not raised (the row stays
        ``sent`` and the next reconciliation finds its receipt)."""
        try:
            self._set_status(tx_hash, status, block, index)
        except SQLAlchemyError as exc:
            log.warning("journal: could not mark %s %s: %s", tx_hash, status.value, exc)

    def _set_status(self, tx_hash: str, status: TxStatus, block: BlockRef | None, index: int | None) -> None:
        with self._session() as session:
            session.execute(
                update(JournaledTransaction)
                # A voided row changes only when its block is lost (reopen): a late look at its receipt must
                # not make its bytes sendable again.
                .where(
                    JournaledTransaction.tx_hash == tx_hash,
                    JournaledTransaction.status != TxStatus.VOIDED.value,
                )
                .values(
                    status=status.value,
                    block_number=block.number if block else None,
                    block_hash=block.hash if block else None,
                    tx_index=index if block else None,
                )
            )
            session.commit()

    def mark_receipt(self, tx_hash: str, receipt: Mapping[str, Any]) -> BlockRef:
        """Record the transaction mined (or reverted) where its ``receipt`` says; returns the block. Unlike
        :meth:`mark`, a failure is raised: where a write was mined is what a lost block re-sends it by, so a
        write is not answered without it.

        Raises:
            SQLAlchemyError: the database cannot be written (the row is left as it was).
        """
        block = BlockRef.of_receipt(receipt)
        status = TxStatus.MINED if int(receipt["status"]) == 1 else TxStatus.REVERTED
        self._set_status(tx_hash, status, block, int(receipt["transactionIndex"]))
        return block

    def unsettled(self) -> list[Entry]:
        """Rows not known to be mined, in the order to re-send them: those of lost blocks first, by block and
        position in it, then the others in the order they were journaled (nonce order for each sender), so
        the node mines them again in their first order and records keep their ids.

        A row with no position that a sender's positioned row follows in nonce order goes right before it:
        it was mined before it (a nonce is used once, in order), and sent after it the node would hold the
        sender's later rows back behind the gap, then mine them in a run once it filled, out of their first
        order. (A write is answered only once every block up to its own is placed, so such a row is one no
        2xx answer counted on.)"""
        with self._session() as session:
            rows = session.scalars(
                select(JournaledTransaction)
                .where(JournaledTransaction.status == TxStatus.SENT.value)
                .order_by(
                    JournaledTransaction.block_number.is_(None),
                    JournaledTransaction.block_number,
                    JournaledTransaction.tx_index.is_(None),
                    JournaledTransaction.tx_index,
                    JournaledTransaction.id,
                )
            )
            entries = [_entry(r) for r in rows]
        placed = [e for e in entries if e.block_number is not None]
        loose: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.block_number is None:
                loose.setdefault(entry.sender, []).append(entry)
        ordered: list[Entry] = []
        for entry in placed:
            before = loose.get(entry.sender, [])
            while before and before[0].nonce < entry.nonce:
                ordered.append(before.pop(0))
            ordered.append(entry)
        left = {e.tx_hash for rest in loose.values() for e in rest}
        return ordered + [e for e in entries if e.tx_hash in left]

    def unplaced(self) -> list[Entry]:
        """Rows with no position in a block: not mined yet, or mined where no receipt was recorded yet."""
        with self._session() as session:
            rows = session.scalars(
                select(JournaledTransaction).where(
                    JournaledTransaction.status == TxStatus.SENT.value,
                    JournaledTransaction.block_hash.is_(None),
                )
            )
            return [_entry(r) for r in rows]

    def place(self, block: BlockRef, tx_hashes: list[str]) -> None:
        """Record where journaled transactions sit in ``block`` (``tx_hashes`` in block order), also those
        whose own request has not seen its receipt yet. Their status is left to their receipts: this is only
        their position, so that lost blocks are re-sent in exactly their first order. Only journaled rows not
        already there are written (most were, from their own receipts).

        Raises:
            SQLAlchemyError: the database cannot be written (nothing recorded).
        """
        if not tx_hashes:
            return
        t = JournaledTransaction
        at = {tx_hash: index for index, tx_hash in enumerate(tx_hashes)}
        with self._session() as session:
            moved = []
            for start in range(0, len(tx_hashes), _IN_LIST):
                chunk = tx_hashes[start : start + _IN_LIST]
                found = session.execute(
                    select(t.tx_hash, t.block_hash, t.tx_index).where(t.tx_hash.in_(chunk))
                ).all()
                moved += [
                    r.tx_hash for r in found if (r.block_hash, r.tx_index) != (block.hash, at[r.tx_hash])
                ]
            for tx_hash in moved:
                session.execute(
                    update(t)
                    .where(t.tx_hash == tx_hash)
                    .values(block_number=block.number, block_hash=block.hash, tx_index=at[tx_hash])
                )
            session.commit()

    def has_stale(self, older_than: float) -> bool:
        """Whether a row journaled more than ``older_than`` seconds ago is still not known to be mined."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than)
        with self._session() as session:
            found = session.scalar(
                select(JournaledTransaction.id)
                .where(
                    JournaledTransaction.status == TxStatus.SENT.value,
                    JournaledTransaction.created_at < cutoff,
                )
                .limit(1)
            )
            return found is not None

    def settled_blocks(self, after: BlockRef | None) -> list[BlockRef]:
        """Distinct blocks holding mined, reverted or voided rows, newest first (those of one height by hash),
        following ``after`` in that order (one page)."""
        # A voided row counts: a block holding only such a row, lost, must still have its standby sent.
        settled = (TxStatus.MINED.value, TxStatus.REVERTED.value, TxStatus.VOIDED.value)
        t = JournaledTransaction
        with self._session() as session:
            query = select(t.block_number, t.block_hash).where(
                t.status.in_(settled), t.block_number.is_not(None)
            )
            if after is not None:
                # By (height, hash), not height alone: two blocks at one height (one replaced the other) on
                # either side of a page's end are both read.
                query = query.where(
                    or_(
                        t.block_number < after.number,
                        and_(t.block_number == after.number, t.block_hash < after.hash),
                    )
                )
            rows = session.execute(
                query.distinct().order_by(t.block_number.desc(), t.block_hash.desc()).limit(_BLOCK_PAGE)
            )
            return [BlockRef(int(n or 0), str(h)) for n, h in rows]

    def newest_settled(self) -> list[BlockRef]:
        """The blocks at the newest height holding a mined or reverted row: one, unless the node replaced a
        block of the journal's by another that holds a later write (then the first is lost)."""
        page = self.settled_blocks(None)
        return [block for block in page if block.number == page[0].number]

    def reopen(self, blocks: list[BlockRef]) -> list[str]:
        """Rows mined in ``blocks`` (which the node no longer has) become ``sent`` again (keeping the lost
        block's number, to re-send them in their first order), and the claims of their requests are handed
        back without their stored response; a voided row is superseded instead, and its standby transaction
        takes its place (its nonce, its position), its request's refusal kept. Returns the hashes now to be
        sent."""
        if not blocks:
            return []
        t = JournaledTransaction
        with self._session() as session:
            hashes: list[str] = []
            for block in blocks:
                hashes += session.scalars(
                    select(t.tx_hash).where(t.block_number == block.number, t.block_hash == block.hash)
                )
            # Voided rows are left out first, then read: one voided meanwhile (conditional on ``reverted``) is
            # either reopened here or read as voided below, never both.
            session.execute(
                update(t)
                .where(t.tx_hash.in_(hashes), t.status != TxStatus.VOIDED.value)
                .values(status=TxStatus.SENT.value, block_hash=None)
            )
            voided = session.execute(
                select(t.tx_hash, t.sender, t.nonce, t.block_number, t.tx_index).where(
                    t.tx_hash.in_(hashes), t.status == TxStatus.VOIDED.value
                )
            ).all()
            reopened = [h for h in hashes if h not in {v.tx_hash for v in voided}]
            for v in voided:
                session.execute(
                    update(t)
                    .where(t.tx_hash == v.tx_hash)
                    .values(status=TxStatus.SUPERSEDED.value, block_hash=None)
                )
                standby = t.sender == v.sender, t.nonce == v.nonce, t.status == TxStatus.STANDBY.value
                reopened += session.scalars(select(t.tx_hash).where(*standby))
                session.execute(
                    update(t)
                    .where(*standby)
                    .values(status=TxStatus.SENT.value, block_number=v.block_number, tx_index=v.tx_index)
                )
            # A voided row's refusal stays its key's answer: the standby, not its bytes, takes the nonce.
            handed_back = [h for h in hashes if h not in {v.tx_hash for v in voided}]
            session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.tx_hash.in_(handed_back))
                .values(status_code=None, response_body=None, completed_at=None, owner=None)
            )
            session.commit()
            return reopened

    def reverted(self) -> list[Entry]:
        """Rows reverted and not voided (few: a write the contract refused)."""
        with self._session() as session:
            rows = session.scalars(
                select(JournaledTransaction).where(JournaledTransaction.status == TxStatus.REVERTED.value)
            )
            return [_entry(r) for r in rows]

    def void(self, tx_hash: str, standby: SignedTx) -> bool:
        """Make the reverted transaction ``tx_hash`` never minable again: ``standby`` (a transaction of the
        same sender and nonce, with no effect) is journaled to take its place if the node loses its block.
        Returns False when the row is not reverted in a block any more (reopened: that block was lost, and its
        bytes may be mined again; the caller must look again at what became of it); True, journaling nothing,
        for a transaction the journal does not hold.

        Raises:
            ApiError: DATABASE_UNAVAILABLE (nothing changed).
        """
        t = JournaledTransaction
        try:
            with self._session() as session:
                status = session.scalar(select(t.status).where(t.tx_hash == tx_hash))
                if status is None or status == TxStatus.VOIDED.value:
                    return True  # voided already, or not journaled: nothing here sends it again
                moved = session.execute(
                    update(t)
                    .where(
                        t.tx_hash == tx_hash,
                        t.status == TxStatus.REVERTED.value,
                        t.block_hash.is_not(None),
                    )
                    .values(status=TxStatus.VOIDED.value)
                )
                if getattr(moved, "rowcount", 0) != 1:
                    session.rollback()
                    return False
                session.add(
                    t(tx_hash=standby.tx_hash, sender=standby.sender, nonce=standby.nonce, raw=standby.raw,
                      status=TxStatus.STANDBY.value, finish=None)
                )  # fmt: skip
                session.commit()
                return True
        except DATABASE_DOWN as exc:
            raise database_unavailable(exc) from None

    def next_nonce(self, sender: str) -> int:
        """One past the highest nonce of ``sender``'s rows that are or may be on the chain (0 without any).

        Raises:
            ApiError: DATABASE_UNAVAILABLE.
        """
        try:
            with self._session() as session:
                highest = session.scalar(
                    select(func.max(JournaledTransaction.nonce)).where(
                        JournaledTransaction.sender == sender,
                        JournaledTransaction.status != TxStatus.SUPERSEDED.value,
                    )
                )
        except DATABASE_DOWN as exc:
            raise database_unavailable(exc) from None
        return 0 if highest is None else int(highest) + 1

    def next_nonces(self) -> dict[str, int]:
        """Per sender, one past the highest nonce of a row that is or may be on the chain."""
        with self._session() as session:
            rows = session.execute(
                select(JournaledTransaction.sender, func.max(JournaledTransaction.nonce))
                .where(JournaledTransaction.status != TxStatus.SUPERSEDED.value)
                .group_by(JournaledTransaction.sender)
            )
            return {str(sender): int(nonce) + 1 for sender, nonce in rows}


class NotPlacedError(NodeError):
    """Thrown when the journaled transactions of the blocks up to a write's could not be given their places in
    time: the node or the database failing (the write is pending; its retry answers)."""


class BlockPlacer:
    """Gives every journaled transaction its place (block, position) in the journal, block after block up to
    the newest a waiting write was mined in (:meth:`await_placed`), on one thread of its own.

    A write is answered from its receipt, and another journaled transaction mined before it (in its block or
    an earlier one) may not have been seen by its own request yet, or seen while the database could not
    record it (a full disk). The journal re-sends a lost block's transactions by their places, so each must
    be there before a write mined after it is answered. One thread reads the blocks and writes the places,
    once per block, while the requests wait holding nothing (no lock another request needs, no database
    connection); a failure is reported to the requests waiting at that moment (they answer ``pending``) and
    the thread tries again.

    Two ways up to a block: block by block, reading each from the node (a write's block is usually the next
    one); or, when far behind (the service idle for a while, or just started), through the rows the journal
    holds without a place: each one's receipt names its block, which is placed. Every journaled transaction
    mined up to the head read first then has its place: one journaled later is sent after that head was read,
    and mined above it.
    """

    #: A write's block further than this above the last one placed is reached through the unplaced rows.
    FAR = 16
    #: Blocks placed remembered by height (with their hashes, to see a receipt of another block there).
    KEPT = 256
    #: Pause after a failure, before trying again.
    RETRY_S = 0.25

    def __init__(self, client: LedgerClient, journal: Journal) -> None:
        self.client = client
        self.journal = journal
        self._cond = threading.Condition()
        #: Every journaled transaction mined at or below this height has its place (-1: none known yet).
        self._through = -1
        #: The highest block a waiting write was mined in.
        self._wanted = -1
        self._placed: dict[int, BlockRef] = {}
        #: The last failure, and when (time.monotonic()); cleared by the next block placed.
        self._failure: tuple[float, str] | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def await_placed(self, block: BlockRef, deadline: float) -> bool:
        """Wait until every journaled transaction of the blocks up to ``block`` has its place. False when
        the node holds another block at that height (looked at once more, after the wait).

        Raises:
            NotPlacedError: the node or the database failed meanwhile, or ``deadline`` passed.
        """
        asked = time.monotonic()
        looked_again = False
        with self._cond:
            self._start()
            while True:
                if self._through >= block.number:
                    there = self._placed.get(block.number)
                    if there is None or there == block:
                        return True
                    if looked_again:
                        return False
                    # Placed as another block: the chain there changed since (or before) the receipt was read.
                    self._rewind(block.number)
                    looked_again = True
                self._wanted = max(self._wanted, block.number)
                self._cond.notify_all()
                if self._failure is not None and self._failure[0] >= asked:
                    raise NotPlacedError(self._failure[1])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NotPlacedError("the blocks up to it were not placed in the journal in time")
                self._cond.wait(min(left, 1.0))  # then asks again: a failure may have dropped the request

    def rewind(self, number: int) -> None:
        """Blocks from ``number`` on are to be placed again: the node lost them (reconciliation)."""
        with self._cond:
            self._rewind(number)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _rewind(self, number: int) -> None:
        self._through = min(self._through, number - 1)
        self._wanted = min(self._wanted, self._through)  # the writes still waiting ask again
        self._cond.notify_all()
        for height in [h for h in self._placed if h >= number]:
            del self._placed[height]

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="dxl-journal-placer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and self._wanted <= self._through:
                    self._cond.wait()
                if self._stopped:
                    return
                through, wanted = self._through, self._wanted
            try:
                if wanted - through > self.FAR:
                    placed, reached = self._catch_up()
                else:
                    placed, reached = self._next(through + 1), through + 1
            except (NodeError, SQLAlchemyError) as exc:
                cause = getattr(exc, "orig", None) or exc
                log.warning("journal: could not place the blocks after %s: %s", through, cause)
                with self._cond:
                    self._failure = (time.monotonic(), f"placing the journal's blocks failed ({cause})")
                    # The writes waiting now answer pending; one still waiting, or a retry, asks again. A
                    # block the node lost is not read again and again for a write no longer waiting.
                    self._wanted = min(self._wanted, self._through)
                    self._cond.notify_all()
                time.sleep(self.RETRY_S)
                continue
            with self._cond:
                if self._through == through:  # not rewound meanwhile
                    self._through = reached
                    self._placed.update((b.number, b) for b in placed)
                    for height in sorted(self._placed)[: -self.KEPT]:
                        del self._placed[height]
                    self._failure = None
                self._cond.notify_all()

    def _next(self, number: int) -> list[BlockRef]:
        """Place block ``number`` as the node holds it.

        Raises:
            NodeError: the node does not answer, or does not hold the block (it lost it: reconciliation).
            SQLAlchemyError: the database cannot be written.
        """
        found = self.client.block_transactions(number)
        if found is None:
            raise NodeError(f"the node {self.client.rpc_url} does not hold block {number}")
        self.journal.place(*found)
        return [found[0]]

    def _catch_up(self) -> tuple[list[BlockRef], int]:
        """Place the blocks of the journal's unplaced rows mined up to the head; returns them and the head.

        Raises:
            NodeError: the node does not answer.
            SQLAlchemyError: the database cannot be read or written.
        """
        head = self.client.block_number()  # first: a row journaled after the read below is mined above it
        heights = set()
        for entry in self.journal.unplaced():
            receipt = self.client.receipt(entry.tx_hash)
            if receipt is not None and int(receipt["blockNumber"]) <= head:
                heights.add(int(receipt["blockNumber"]))
        return [block for height in sorted(heights) for block in self._next(height)], head


class JournaledSender:
    """Signs, journals, sends and awaits transactions for the API (see the module docstring)."""

    def __init__(self, client: LedgerClient, journal: Journal, *, confirmations: int = 0) -> None:
        self.client = client
        self.journal = journal
        #: Blocks on top of a transaction's block before :meth:`wait` answers it (``DXL_CONFIRMATIONS``): 0
        #: where a mined block is final (anvil, Besu QBFT), a few where the last blocks may be reorganised.
        self.confirmations = confirmations
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # Closed from the moment the node is seen unreachable or changed until the journal is reconciled with
        # it: new transactions then wait, so the healed ones are mined first, in their first order.
        self._open = threading.Event()
        self._open.set()
        #: Set by :class:`ChainWatcher`: asks it to look at the node now. Without a watcher nothing heals
        #: lost blocks, and sends do not check for them.
        self.on_chain_changed: Callable[[], None] | None = None
        #: Told, after a reconciliation, of the rows of lost blocks it sent again (the receipt anchorer
        #: follows its anchors among them again).
        self.on_reopened: Callable[[list[Entry]], None] | None = None
        #: The custodied account of a sender's address, to sign the standby of its reverted transactions
        #: (:meth:`void`); set by the ledger service. Without it a reverted request is not voided.
        self.account_of: Callable[[str], LocalAccount | None] | None = None
        #: The journal's blocks at its newest height (:meth:`Journal.newest_settled`), once read.
        self._newest: list[BlockRef] = []
        self._newest_known = False
        self._newest_guard = threading.Lock()
        #: Records where every journaled transaction of the blocks up to a write's sits before it is answered.
        self.placer = BlockPlacer(client, journal)

    def note_mined(self, block: BlockRef) -> None:
        """A journaled transaction was seen mined in ``block``: track the newest such block."""
        with self._newest_guard:
            if self._newest_known:
                if not self._newest or block.number > self._newest[0].number:
                    self._newest = [block]
                elif block.number == self._newest[0].number and block not in self._newest:
                    self._newest = [*self._newest, block]

    def close(self) -> None:
        """Stop the placer's thread (the service stops)."""
        self.placer.stop()

    def forget_newest(self) -> None:
        """After reconciliation: the newest settled block is read from the journal again."""
        with self._newest_guard:
            self._newest_known = False

    def _newest_settled(self) -> list[BlockRef]:
        with self._newest_guard:
            if not self._newest_known:
                self._newest, self._newest_known = self.journal.newest_settled(), True
            return self._newest

    def chain_intact(self) -> bool:
        """Whether the node still holds the newest block with a journaled transaction. Any lost block of an
        acknowledged write implies that one is lost too (a block's hash commits to those before it).

        Raises:
            NodeError: the node does not answer.
        """
        if all(self._holds(block) for block in self._newest_settled()):
            return True
        # The block kept in memory may be one the journal has left: a receipt followed to another block at
        # the same height (Clique's block in turn replacing one sealed out of turn, holding the same
        # transactions) moves the row, and is no newer a block to keep. Kept, it would hold every write back
        # until something else reconciled. The journal says which block is newest.
        self.forget_newest()
        return all(self._holds(block) for block in self._newest_settled())

    def _holds(self, block: BlockRef) -> bool:
        return self.client.block_hash(block.number) == block.hash

    def gate(self) -> bool:
        """Before a write acts on the chain's state: wait while the journal is being reconciled, and have a
        node that lost blocks reconciled first, so journaled writes are mined again before this one (keeping
        their ids) and the records they made exist again. Returns whether it had to wait for a
        reconciliation.

        Raises:
            ApiError: NODE_UNAVAILABLE when the node does not come back intact in time (nothing was sent).
            NodeError: the node does not answer.
        """
        self._open.wait(timeout=self.client.receipt_timeout)
        wake = self.on_chain_changed
        if wake is None or self.chain_intact():
            return False
        self.hold()
        wake()
        self._open.wait(timeout=self.client.receipt_timeout)
        if not self.chain_intact():
            # Named so that an operator (and a failed test's log) can tell a node behind from one that lost
            # the block: the block, its hash and the node the service reads.
            newest = self._newest_settled()
            missing = f" block {newest[0].number} ({' and '.join(b.hash for b in newest)})" if newest else ""
            raise ApiError(
                "NODE_UNAVAILABLE",
                f"the node {self.client.rpc_url} does not hold{missing}, where a journaled transaction was "
                "mined: it lost blocks, or is behind them, and is not reconciled yet; nothing was sent",
            )
        return True

    def hold(self) -> None:
        self._open.clear()

    def resume_sending(self) -> None:
        self._open.set()

    def lock(self, sender: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sender, threading.Lock())

    def send(
        self,
        account: LocalAccount,
        request: dict[str, Any],
        *,
        claim: Claim | None,
        finish: dict[str, Any] | None,
    ) -> SignedTx:
        """Sign, journal, then send ``request``; returns the signed transaction.

        Raises:
            ApiError: DATABASE_UNAVAILABLE (nothing sent); TRANSACTION_PENDING when the node cannot be asked
                whether it has the transaction (it is journaled: reconciliation sends it).
            NodeError: the node refused it (TRANSACTION_REFUSED), or other transactions of the key kept
                taking its nonce (NONCE_TAKEN).
        """
        sender = str(account.address)
        nonces = self.client.nonces
        # Bounded: a node that stays away fails the send below anyway (journaled, answered as pending).
        self.gate()
        for attempt in range(_NONCE_TAKEN_RETRIES + 1):
            with self.lock(sender):
                if nonces.peek(sender) is None:
                    # First use in this process: the node may have lost journaled transactions not re-sent
                    # yet, whose nonces a count read from the node alone would hand out a second time.
                    nonces.rebuild(
                        sender, max(self.client.pending_nonce(sender), self.journal.next_nonce(sender))
                    )
                nonce = nonces.reserve(sender)
                signed = self.client.sign(account, request, nonce)
                try:
                    self.journal.record(signed, claim=claim, finish=finish)
                except BaseException:
                    nonces.release(sender, nonce)
                    raise
            try:
                self.push(signed)
            except NonceTakenError:
                # Provably never minable: bytes signed a moment ago, sent once, and refused by the node, which
                # does not hold them; another transaction of this key holds their nonce (e.g. one signed by
                # another client of the same key), and nothing sends superseded bytes again. The only case
                # where signing again cannot make a second transaction. Bytes sent before are another matter
                # (:meth:`resume`).
                self.journal.mark(signed.tx_hash, TxStatus.SUPERSEDED)
                if attempt == _NONCE_TAKEN_RETRIES:
                    raise
                nonces.resync(sender)
                continue
            return signed
        raise AssertionError("unreachable")  # pragma: no cover

    def push(self, signed: SignedTx) -> None:
        """Send journaled bytes (again).

        Raises:
            ApiError: TRANSACTION_PENDING when the node is unreachable.
            NonceTakenError: the node refused them as "nonce too low" and does not hold them; the row is left
                as it is (what that proves depends on whether they were sent before: :meth:`judge_refusal`).
            TransactionRefusedError: refused for another reason; the row is marked superseded (it cannot be
                mined).
        """
        try:
            self.client.send_signed(signed)
        except NonceTakenError:
            raise  # a node's answer, not an unreachable node: the caller judges it
        except TransactionRefusedError:
            self.journal.mark(signed.tx_hash, TxStatus.SUPERSEDED)
            with self.lock(signed.sender):
                # The nonce stays unused: given back if it was the last one handed out, else read again.
                self.client.nonces.release(signed.sender, signed.nonce)
            raise
        except NodeError as exc:
            raise pending(
                signed.tx_hash, f"the node did not confirm it received the transaction ({exc})"
            ) from None

    def wait(self, tx_hash: str, *, timeout: float | None = None) -> TxResult:
        """The mined transaction's result, once its block has :attr:`confirmations` blocks on top of it on the
        node in use; marks the journal row.

        What a write answers (a record's id the contract assigned, a refusal) is read from the receipt of the
        block the node holds at that depth: on a chain whose last blocks may be reorganised (Clique), a
        competing block at the same height may hold the same transactions in another order, and the ids the
        contract numbered in mining order with them. A receipt that moves meanwhile (the node switched
        branches, or the journal sent the same bytes again after the block was lost) is followed to its new
        block, which is placed in the journal like the first. With no depth the first receipt is the answer,
        with no look beyond it.

        Raises:
            LedgerRevertError: mined with status 0.
            ApiError: TRANSACTION_PENDING when not mined, or not under the depth, in time, or the node stops
                answering (the retry of the key answers what the chain made of it).
        """
        limit = self.client.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delays = receipt_poll_delays()
        placed: BlockRef | None = None
        try:
            while True:
                receipt = self.client.receipt(tx_hash)
                if receipt is not None:
                    block = BlockRef.of_receipt(receipt)
                    if block != placed:
                        if not self._recorded(tx_hash, receipt, deadline):
                            time.sleep(next(delays))
                            continue
                        placed = block
                    if not self.confirmations or self._buried(block):
                        break
                if time.monotonic() > deadline:
                    why = (
                        "not mined" if placed is None else f"not {counted(self.confirmations, 'block')} deep"
                    )
                    raise pending(tx_hash, f"{why} within {limit:g} s")
                time.sleep(next(delays))
        except NodeError as exc:
            raise pending(tx_hash, f"the node stopped answering ({exc})") from None
        assert receipt is not None  # the loop ends on a receipt under the depth
        if int(receipt["status"]) != 1:
            self._void_refused(tx_hash)
        return self.client.outcome(receipt)

    def _recorded(self, tx_hash: str, receipt: Mapping[str, Any], deadline: float) -> bool:
        """:meth:`record_receipt` for a request about to be answered: a write is answered only once the
        journal holds where it and every journaled transaction mined before it sit. Should the node lose the
        blocks, they are re-sent in that order, which numbered the records it answers; answered without, a
        transaction the journal could not place (a full disk, a block no request looked at yet) would be
        re-sent after the writes mined after it, and the ids they answered would go to other records.

        Raises:
            ApiError: TRANSACTION_PENDING naming the block (the retry of the key records it and answers).
        """
        where = f"mined in block {BlockRef.of_receipt(receipt).number}"
        try:
            return self.record_receipt(tx_hash, receipt, deadline=deadline)
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise pending(tx_hash, f"{where}, which the journal could not record ({cause})") from None
        except NotPlacedError as exc:
            raise pending(tx_hash, f"{where}; {exc}") from None

    def _buried(self, block: BlockRef) -> bool:
        """Whether the node in use holds ``block`` with :attr:`confirmations` blocks on top of it. The head is
        read before the block's hash: a branch switch between the two shows as another hash.

        Raises:
            NodeError: the node does not answer.
        """
        return (
            self.client.block_number() >= block.number + self.confirmations
            and self.client.block_hash(block.number) == block.hash
        )

    def void(self, account: LocalAccount, tx_hash: str, nonce: int) -> bool:
        """Make the reverted transaction ``tx_hash`` of ``account`` (at ``nonce``) never minable again: a
        transfer of nothing to itself, signed at the same nonce, stands by to take its place should the node
        lose its block (:meth:`Journal.void`). False when its block was lost meanwhile (it is being sent
        again; the caller must look again at what became of it).

        Raises:
            ApiError: DATABASE_UNAVAILABLE (nothing changed).
        """
        address = str(account.address)
        request = self.client.build(address, "", to=address, value=0, gas=21_000)
        return self.journal.void(tx_hash, self.client.sign(account, request, nonce))

    def void_reverted(self) -> int:
        """Void every reverted row not voided yet whose key this service holds; returns how many. Such rows
        are an earlier process's: journaled before refused requests were voided, or left by a process killed
        between a refusal's receipt and its voiding. Their refusals were answered, and their bytes would be
        sent again should the node lose their blocks. Called once the journal met the chain (a row of a lost
        block is reopened first, and follows its new outcome), before requests are served.

        Raises:
            ApiError: DATABASE_UNAVAILABLE.
        """
        if self.account_of is None:
            return 0
        accounts: dict[str, LocalAccount | None] = {}
        voided = 0
        for entry in self.journal.reverted():
            key = entry.sender.lower()
            if key not in accounts:  # one keystore unlock per key, not per row
                accounts[key] = self.account_of(entry.sender)
            account = accounts[key]
            if account is None:
                log.warning(
                    "journal: reverted transaction %s cannot be voided (no custodied key)", entry.tx_hash
                )
            elif self.void(account, entry.tx_hash, entry.nonce):
                voided += 1
        if voided:
            log.warning(
                "journal: %d reverted transaction(s) left unvoided by an earlier process voided", voided
            )
        return voided

    def _void_refused(self, tx_hash: str) -> None:
        """Before a request's refusal is answered: its transaction is voided.

        Raises:
            ApiError: TRANSACTION_PENDING when the node lost its block meanwhile (the journal sends it again:
                the retry of the key answers what it becomes); DATABASE_UNAVAILABLE (not answered as refused:
                the claim stays open to the retry).
        """
        entry = self.journal.entry(tx_hash)
        account = None if entry is None or self.account_of is None else self.account_of(entry.sender)
        if entry is None or account is None:
            log.warning("journal: reverted transaction %s cannot be voided (no custodied key)", tx_hash)
            return
        if not self.void(account, tx_hash, entry.nonce):
            raise pending(tx_hash, "it reverted, then the node lost its block: it is being sent again")

    def adopt(self, tx_hash: str) -> bool:
        """Journal a mined transaction this service did not send, which an answer reports as done (both
        parties' signatures relayed to the ledger by someone else): if the node loses its block,
        reconciliation sends its bytes again, as for the service's own, instead of the answer holding only if
        the relayer sends them again. Returns whether it is journaled; False when the node does not hold it
        mined or does not serve its signed bytes.

        Raises:
            ApiError: DATABASE_UNAVAILABLE.
            NodeError: the node does not answer.
        """
        if self.journal.entry(tx_hash) is not None:
            return True
        signed, receipt = self.client.signed_transaction(tx_hash), self.client.receipt(tx_hash)
        if signed is None or receipt is None:
            return False
        try:
            self.journal.record(signed, claim=None, finish=None)
        except IntegrityError:  # adopted by a request that reported it at the same moment
            return True
        self.record_receipt(tx_hash, receipt)
        return True

    def record_receipt(
        self, tx_hash: str, receipt: Mapping[str, Any], *, deadline: float | None = None
    ) -> bool:
        """Mark a journaled transaction mined (or reverted) where ``receipt`` says, then wait until every
        journaled transaction of the blocks up to that one has its place in the journal (:class:`BlockPlacer`;
        at most until ``deadline``, a :func:`time.monotonic` instant, or the receipt timeout). Returns False
        when the node holds another block at the receipt's height by then: the receipt is stale, to be read
        again.

        Raises:
            SQLAlchemyError: the database cannot record the receipt.
            NotPlacedError: the blocks could not be placed by then (the node or the database failing).
        """
        block = self.journal.mark_receipt(tx_hash, receipt)
        self.note_mined(block)
        until = time.monotonic() + self.client.receipt_timeout if deadline is None else deadline
        return self.placer.await_placed(block, until)

    def judge_refusal(self, signed: SignedTx) -> Refusal:
        """What the node's "nonce too low" for journaled bytes it does not hold (:class:`NonceTakenError`)
        proves, for bytes sent before (a lost block's, an earlier attempt's): the row is marked mined or
        superseded when it is proven so, and left ``sent`` otherwise.

        Proof of supersession is the chain's nonce, not the pool's answer: geth's pool judges nonces by the
        state of the head it had until it catches up with a new one (after a reorganisation, or on the node a
        failover moved to), answering "nonce too low" for transactions the chain has not mined, then puts a
        lost block's transactions back and mines them. The chain's count is read at the confirmation depth
        (:attr:`confirmations`): a nonce used only in the last blocks is free again if they are reorganised
        away. The nonce is read before the receipt: mined in between shows there.

        Raises:
            NodeError: the node does not answer.
        """
        if self.client.mined_nonce(signed.sender, depth=self.confirmations) <= signed.nonce:
            return Refusal.UNPROVEN
        if (receipt := self.client.receipt(signed.tx_hash)) is not None:
            self.journal.mark_receipt(signed.tx_hash, receipt)
            return Refusal.MINED
        self.journal.mark(signed.tx_hash, TxStatus.SUPERSEDED)
        return Refusal.SUPERSEDED

    def resume(self, entry: Entry) -> TxResult | None:
        """Finish a journaled transaction of an earlier attempt: re-send its bytes unless it is mined, await
        it. None when it can never be mined (the request may run again): refused for a reason other than its
        nonce, or its nonce proven used by another transaction (:meth:`judge_refusal`).

        Raises:
            ApiError: TRANSACTION_PENDING, also when the node refuses the bytes as "nonce too low" while the
                chain has their nonce free (its pool is behind its head; the retry of the key sends them
                again). Otherwise as :meth:`wait`.
        """
        # Through the same gate as a new send: a retry pushing its bytes to a node that lost blocks, before
        # reconciliation re-sent them, would be mined ahead of acknowledged writes and take their ids.
        self.gate()
        if entry.status is TxStatus.SENT and self.client.receipt(entry.tx_hash) is None:
            try:
                self.push(entry.signed)
            except TransactionRefusedError:
                return None
            except NonceTakenError as exc:
                try:
                    refusal = self.judge_refusal(entry.signed)
                except NodeError as down:
                    raise pending(entry.tx_hash, f"the node stopped answering ({down})") from None
                if refusal is Refusal.SUPERSEDED:
                    return None
                if refusal is Refusal.UNPROVEN:
                    # Signed again, the write could be made twice: the node may yet mine these bytes.
                    why = (
                        f"the node refused it ({exc}) while the chain has its nonce free: its pool is behind"
                    )
                    raise pending(entry.tx_hash, why) from None
        return self.wait(entry.tx_hash)

    def rebuild_counters(self) -> None:
        """Each sender's next nonce from the node's pending count and the journal, whichever is higher."""
        journaled = self.journal.next_nonces()
        for sender in sorted(set(journaled) | set(self.client.nonces.senders())):
            with self.lock(sender):
                node_next = self.client.pending_nonce(sender)
                self.client.nonces.rebuild(sender, max(node_next, journaled.get(sender, 0)))


def pending(tx_hash: str, why: str) -> ApiError:
    return ApiError(
        "TRANSACTION_PENDING",
        f"transaction {tx_hash} is journaled but not confirmed yet: {why}; retry with the same "
        "Idempotency-Key for the final answer",
        tx_hash=tx_hash,
    )


@dataclass(frozen=True)
class ReconcileReport:
    reopened: int
    resent: int
    mined: int
    superseded: int
    #: Rows of lost blocks the node refused as "nonce too low" while the chain has their nonce free: its pool
    #: has not caught up with the new head yet. Writes stay held; the next pass sends them again.
    waiting: int


class Reconciler:
    """Makes the chain hold every journaled transaction again (see the module docstring)."""

    def __init__(self, sender: JournaledSender) -> None:
        self.sender = sender
        self.client = sender.client
        self.journal = sender.journal
        self._lock = threading.Lock()
        #: Whether the reverted rows an earlier process left were voided (by the first pass: at start, or
        #: once the node answers).
        self._swept = False

    def reconcile(self) -> ReconcileReport:
        """One pass: reopen rows of lost blocks, re-send unmined rows in their first order, rebuild nonce
        counters, and wait for the rows of lost blocks to be mined again (writes wait for the pass); the first
        pass also voids the reverted rows an earlier process left (:meth:`JournaledSender.void_reverted`).
        A row of a lost block refused as "nonce too low" while the chain has its nonce free ends the re-sends
        (report ``waiting``): the caller keeps writes held and runs another pass (see the module docstring).

        Raises:
            NodeError: the node stopped answering (a later pass finishes the work).
        """
        with self._lock:
            gone = self._lost_blocks()
            # The blocks the node lost, and any above its head, are placed again as it mines them anew.
            self.sender.placer.rewind(min([self.client.block_number() + 1, *(b.number for b in gone)]))
            reopened = self.journal.reopen(gone)
            resent = mined = superseded = waiting = 0
            healing: list[str] = []
            unsettled = self.journal.unsettled()
            for entry in unsettled:
                receipt = self.client.receipt(entry.tx_hash)
                if receipt is not None:
                    self.journal.mark_receipt(entry.tx_hash, receipt)
                    mined += 1
                    continue
                try:
                    self.client.send_signed(entry.signed)
                    resent += 1
                    if entry.block_number is not None:
                        healing.append(entry.tx_hash)
                except (NonceTakenError, TransactionRefusedError) as exc:
                    refusal = (
                        self.sender.judge_refusal(entry.signed) if isinstance(exc, NonceTakenError) else None
                    )
                    if refusal is Refusal.MINED:
                        mined += 1
                        continue
                    if refusal is Refusal.UNPROVEN:
                        mined_in = entry.block_number
                        lost = "" if mined_in is None else f", mined in block {mined_in} which the node lost,"
                        log.warning(
                            "journal: %s%s refused (%s) while the chain has its nonce free: the node's pool"
                            " is behind; sent again at a later pass", entry.tx_hash, lost, exc,
                        )  # fmt: skip
                        if mined_in is None:
                            # No id was promised for it: later rows go on; the next pass (the watcher re-sends
                            # rows left unmined) sends the same bytes again, never new ones.
                            continue
                        waiting += 1
                        break  # later rows wait too: re-sent in their first order, records keep their ids
                    if entry.block_number is None:
                        log.warning("journal: %s can never be mined: %s", entry.tx_hash, exc)
                    else:
                        # Mined once (its write may have been answered 2xx); never signed again, see the
                        # module docstring.
                        log.error(
                            "journal: %s, mined in block %s which the node lost, can never be mined"
                            " again (%s): its write is lost; the node's state is not the chain it mined",
                            entry.tx_hash, entry.block_number, exc,
                        )  # fmt: skip
                    if refusal is None:  # refused for another reason (judge_refusal marks what it judges)
                        self.journal.mark(entry.tx_hash, TxStatus.SUPERSEDED)
                    superseded += 1
            self.sender.rebuild_counters()
            self._await_remined(healing)
            if not self._swept:
                self.sender.void_reverted()
                self._swept = True
            self.sender.forget_newest()
            told = self.sender.on_reopened
            if reopened and told is not None:
                again = set(reopened)
                told([e for e in unsettled if e.tx_hash in again])
        report = ReconcileReport(len(reopened), resent, mined, superseded, waiting)
        if reopened or resent or superseded or waiting:
            log.warning("journal reconciled with the chain: %s", report)
        return report

    def _await_remined(self, tx_hashes: list[str]) -> None:
        """Until the re-sent transactions of lost blocks are mined again (bounded by the receipt timeout).
        Re-sent is not there yet: the writes held by the gate meanwhile would check records they make (the
        resource of an access request, the grant of a receipt) and be refused 404 although those records
        were acknowledged. With interval mining that is up to a block time."""
        deadline = time.monotonic() + self.client.receipt_timeout
        delays = receipt_poll_delays()
        for tx_hash in tx_hashes:
            while (receipt := self.client.receipt(tx_hash)) is None:
                if time.monotonic() > deadline:
                    log.warning(
                        "journal: re-sent %s not mined again within %g s",
                        tx_hash,
                        self.client.receipt_timeout,
                    )
                    return
                time.sleep(next(delays))
            self.sender.record_receipt(tx_hash, receipt)

    def _lost_blocks(self) -> list[BlockRef]:
        """Blocks of settled rows that the chain no longer holds, newest first. Stops at the first block the
        node still has with the same hash: a block's hash commits to all blocks before it.

        A block above the head of every node that answers is not lost but not there yet (a node behind the
        others; :meth:`LedgerClient.standing` moves to one that holds it): lost only once a block below it is
        replaced, since it descends from that one. Until then it is a matter of waiting, and writes wait too.

        Raises:
            NodeBehindError: blocks no node reached yet, none of them lost (the pass is over, nothing
                reopened; a later one decides).
            NodeError: the node does not answer.
        """
        lost: list[BlockRef] = []
        unseen: list[BlockRef] = []
        for height in self._settled_heights():
            standings = [(block, self.client.standing(block)) for block in height]
            if any(standing is BlockStanding.HELD for _, standing in standings):
                # The node holds one block of a height; any other the journal has there was replaced by it
                # (the node went back and mined the height again, a write sent before it was seen). Read
                # first or last, it is lost all the same.
                lost += [block for block, standing in standings if standing is not BlockStanding.HELD]
                return self._decided(lost, unseen)
            for block, standing in standings:
                if standing is BlockStanding.NOT_YET:
                    unseen.append(block)
                else:
                    lost += [*unseen, block]
                    unseen = []
        return self._decided(lost, unseen)

    def _settled_heights(self) -> Iterator[list[BlockRef]]:
        """The journal's settled blocks, newest height first, those of one height together."""
        height: list[BlockRef] = []
        after: BlockRef | None = None
        while page := self.journal.settled_blocks(after):
            for block in page:
                if height and block.number != height[0].number:
                    yield height
                    height = []
                height.append(block)
            after = page[-1]
        if height:
            yield height

    def _decided(self, lost: list[BlockRef], unseen: list[BlockRef]) -> list[BlockRef]:
        if unseen:
            newest = unseen[0]
            raise NodeBehindError(
                self.client.rpc_url,
                self.client.block_number(),
                newest.number,
                "holding journaled transactions; writes wait until a node holds it or replaces it",
            )
        return lost


class ChainWatcher:
    """A thread that reconciles whenever the node comes back: after it was unreachable, when its height went
    down, when the hash of the last block seen changed (the node restarted from an older state), or when the
    client failed over to another node of the network (transactions the dead or stalled node alone held are
    sent again, as the same bytes). Each look also has the client leave a node whose head stalled while
    another's moved on (:meth:`~node.chain.LedgerClient.leave_stalled`). From the moment it sees the node
    away or changed until the reconciliation is done, new transactions wait."""

    def __init__(self, reconciler: Reconciler, interval: float, *, reconciled: bool) -> None:
        self.reconciler = reconciler
        self.sender = reconciler.sender
        self.client = reconciler.client
        self.interval = interval
        self.stale_after = STALE_AFTER_S
        self._down = not reconciled
        self._last: BlockRef | None = None
        self._failovers = self.client.failovers
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dxl-chain-watcher", daemon=True)
        self.sender.on_chain_changed = self._wake.set

    def start(self) -> ChainWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.sender.on_chain_changed = None
        self._thread.join(timeout=30)
        self.sender.resume_sending()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)  # every interval, or at once when a send saw lost blocks
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:
                # Whatever failed, the thread must live on: sends it holds would otherwise wait for a
                # reconciliation that never comes. Looked at as a node gone away: the next look reconciles.
                log.exception("journal: the chain watcher's look failed; reconciling at the next")
                self._down = True

    def tick(self) -> bool:
        """One look at the node; returns whether it reconciled."""
        try:
            head = self.client.head()
            # A node cut off from the signers answers, and mines nothing: the client leaves it once its head
            # stood still while another node's moved on, and the failover below sends what it held again.
            if self.client.leave_stalled(head):
                head = self.client.head()
            # Known blocks: the last one seen, and the newest holding a journaled transaction (a node rewound
            # between two looks shows its height only through that one).
            known = [
                *([self._last] if self._last is not None else []),
                *self.reconciler.journal.newest_settled(),
            ]
            moved = any(
                head.number < block.number
                or (head.hash if head.number == block.number else self.client.block_hash(block.number))
                != block.hash
                for block in known
            )
            healed = False
            report: ReconcileReport | None = None
            failovers = self.client.failovers
            if self._down or moved or failovers != self._failovers:
                self.sender.hold()
                report = self.reconciler.reconcile()
                head, healed = self.client.head(), True
            elif self.reconciler.journal.has_stale(self.stale_after):
                # A node restarted from a state holding every mined block still lost its pool: what was sent
                # and not mined is gone, and later nonces of the same key wait behind it. Re-send (the same
                # bytes; "already known" for those still there). New sends need not wait: no id was promised
                # for a transaction never mined.
                report = self.reconciler.reconcile()
                healed = True
            if report is not None and report.waiting:
                # A lost block's write waits for the node's pool to catch up: writes stay held behind it and
                # the next look reconciles again (sending it again), as after a node that stopped answering.
                self.sender.hold()
                self._down = True
                return True
        except NodeError as exc:
            if isinstance(exc, NodeBehindError) and not self._down:
                log.warning("journal: reconciliation waits: %s", exc)
            self._down = True
            self.sender.hold()
            return False
        except SQLAlchemyError as exc:
            log.warning("journal: reconciliation postponed, database unavailable: %s", exc)
            self._down = True
            # Nothing can be journaled either: holding sends would only add waits.
            self.sender.resume_sending()
            return False
        self.sender.resume_sending()
        self._down, self._last, self._failovers = False, head, failovers
        return healed
