"""The receipt journal: its tables (``api_receipts``, ``api_receipt_batches``) and their single writer,
:class:`ReceiptJournal`, which writes every request that arrived meanwhile in one transaction (group commit)
and hands what it committed to the anchorer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from api.db import ApiBase
from api.errors import ApiError
from api.journal import database_unavailable
from node.errors import NodeError
from verifier.receipts import Receipt, leaf_hashes

if TYPE_CHECKING:
    from api.delivery_ids import DeliveryIds

log = logging.getLogger("dxl.receipts")

#: The receipt journal writer's SQLite page cache, in KiB (about 50 MB of index per million receipts).
JOURNAL_CACHE_KIB = 65_536

# On the API's metadata: one schema for the API's database, migrated as one (api/migrations).
receipts_table = Table(
    "api_receipts",
    ApiBase.metadata,
    # Journal order, assigned by the single writer: the order receipts enter their grant's batches.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("delivery_id", LargeBinary(32), nullable=False),
    Column("provider", Integer, nullable=False),
    Column("consumer", Integer, nullable=False),
    Column("grant_id", BigInteger, nullable=False),
    Column("commitment", LargeBinary(32), nullable=False),
    Column("hash_algorithm", SmallInteger, nullable=False),
    Column("byte_size", BigInteger, nullable=False),
    Column("record_count", BigInteger, nullable=False),
    Column("accepted_at", Float, nullable=False),
    # A receipt's leaf index is its rank by ``seq`` within its batch.
    Column("batch_id", Integer, nullable=True),
    # Delivery ids are unique per provider; leading with the id also serves look-ups by id alone.
    UniqueConstraint("delivery_id", "provider", name="uq_api_receipts_id_provider"),
    Index("ix_api_receipts_batch", "batch_id", "seq"),
)

batches_table = Table(
    "api_receipt_batches",
    ApiBase.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("grant_id", BigInteger, nullable=False),
    Column("provider", Integer, nullable=False),
    Column("first_sequence", BigInteger, nullable=False),
    Column("leaf_count", Integer, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    #: closed (journaled, maybe sent) | final (mined) | refused (the contract refused it)
    Column("state", String(16), nullable=False),
    Column("tx_hash", String(66), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    #: The hash of that block: on a network whose blocks can be orphaned (a confirmation depth), the reader
    #: calls the batch final only while the chain's block at ``block_number`` is this one.
    Column("block_hash", String(66), nullable=True),
    Column("error", String(200), nullable=True),
    Column("closed_at", Float, nullable=False),
    Column("final_at", Float, nullable=True),
    Index("ix_api_receipt_batches_grant", "grant_id", "first_sequence"),
)


class BatchSlot(NamedTuple):
    """Whose batch it is and where it sits in its grant's sequence: what ``anchorBatch`` carries besides the
    root, and what the journal's batch row must go on saying."""

    grant_id: int
    provider: int
    first_sequence: int
    leaf_count: int


class AnchorLog(NamedTuple):
    """What an anchor transaction's ``ReceiptBatchAnchored`` log says of its batch: the slot and root, and the
    consumer (its grant's, which neither a leaf nor the slot holds: only this log and the ledger do)."""

    slot: BatchSlot
    root: bytes
    consumer: int


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


class WriteTurn:
    """A lock handed over in the order it was asked for (a ticket lock).

    The receipt journal's writer asks for it again as soon as it let it go; with a plain lock (or SQLite's
    busy wait) it would nearly always win, and the anchorer waiting beside it would fall ever further behind.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *_exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class Journaled(NamedTuple):
    """Receipts of one grant journaled together (one request's), as the anchorer needs them: their journal
    sequence numbers, ascending, and their leaf hashes in the same order. Handed over by the list, not one
    object per receipt: the anchorer extends its grant's lists with them in one step."""

    grant_id: int
    provider: int
    seqs: list[int]
    leaves: list[bytes]


@dataclass
class _Append:
    provider: int
    consumers: dict[int, int]
    rows: list[Receipt]
    done: Callable[[BaseException | None], None]


class ReceiptJournal:
    """The single writer of ``api_receipts``: one transaction for every request that arrived meanwhile.

    ``on_commit`` gets the receipts of each committed transaction, in journal order (the anchorer's inbox).
    """

    def __init__(
        self,
        engine: Engine,
        on_commit: Callable[[list[Journaled]], None],
        *,
        turn: WriteTurn | None = None,
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        #: Held while writing; shared with the anchorer (see :class:`Anchorer`).
        self._turn = turn or WriteTurn()
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dxl-receipt-journal", daemon=True)
        #: The writer's own connection; None after a database error broke it (opened again by the next write).
        self._conn: Any = None
        #: Writes whose commit failed with the database's connection (a server's crash, a network cut): the
        #: commit may have happened all the same, unseen. Settled first once the database answers again: a
        #: write found journaled goes to the anchorer then, as a commit would have handed it over (its
        #: requests were answered 503; posted again, their receipts are found journaled and accepted).
        self._unsure: list[list[Journaled]] = []
        self._next_seq = 0
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert = (
            "INSERT INTO api_receipts (seq, delivery_id, provider, consumer, grant_id, commitment, "
            f"hash_algorithm, byte_size, record_count, accepted_at) VALUES ({', '.join([mark] * 10)})"
        )
        self._mark = mark
        #: Which delivery ids a single delivery holds (set by the app): one id names one delivery, so a
        #: receipt may not take a single delivery's id. None: unchecked.
        self.ids: DeliveryIds | None = None
        self._forget_refused = (
            f"DELETE FROM api_receipts WHERE provider = {mark} AND delivery_id = {mark} AND batch_id IN "
            "(SELECT id FROM api_receipt_batches WHERE state = 'refused')"
        )

    def start(self) -> None:
        self._connect()
        cur = self._conn.cursor()
        cur.execute("SELECT MAX(seq) FROM api_receipts")
        top = cur.fetchone()[0]
        cur.close()
        self._next_seq = 0 if top is None else int(top) + 1
        self._thread.start()

    def _connect(self) -> None:
        self._conn = self._engine.raw_connection()
        if self._engine.dialect.name == "sqlite":
            # Every acknowledged receipt survives power loss, not only a crash of this process.
            self._conn.execute("PRAGMA synchronous=FULL")
            # Up to 64 MB of pages (SQLite's default: 2 MB): the delivery-id index takes each receipt at a
            # random place, so at a million receipts nearly every insert read its page from the file again
            # (half the journal's CPU, in the kernel).
            self._conn.execute(f"PRAGMA cache_size=-{JOURNAL_CACHE_KIB}")

    def _disconnect(self) -> None:
        """Drops the connection after a database error: pooled, a connection the server closed stays closed,
        and every later write on it would fail too."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            self._conn = None

    def _settle_unsure(self) -> None:
        """Hands the anchorer each unsure write (see ``_unsure``) that the database holds; forgets the
        others (rolled back: their sequence numbers stay unused, as after any failed write)."""
        while self._unsure:
            journaled = self._unsure[0]
            cur = self._conn.cursor()
            try:
                # A write is one transaction: its first receipt is there exactly when all of them are.
                cur.execute(f"SELECT 1 FROM api_receipts WHERE seq = {self._mark}", (journaled[0].seqs[0],))
                found = cur.fetchone() is not None
            finally:
                cur.close()
            self._conn.rollback()  # the read's transaction, on databases that opened one
            self._unsure.pop(0)
            if found:
                self._on_commit(journaled)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()

    async def append(self, provider: int, consumers: dict[int, int], rows: list[Receipt]) -> None:
        """Journal ``rows`` (all or none) and return once they are durable.

        Raises:
            ApiError: DUPLICATE_DELIVERY if one of the ids was journaled before for this provider with other
                fields (the same receipt posted again is accepted once, silently).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            def settle() -> None:
                if future.done():
                    return
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

            loop.call_soon_threadsafe(settle)

        self._queue.put(_Append(provider, consumers, rows, done))
        await future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.rows)
            while size < 200_000:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                group.append(more)
                size += len(more.rows)
            try:
                if self._conn is None:
                    self._connect()
                self._settle_unsure()
                if self.ids is None:
                    self._commit(group)
                else:
                    # Looked up and journaled under one lock with the single deliveries' claims on their ids:
                    # of a receipt and a single delivery with one id, exactly one is taken (api.delivery_ids).
                    with self.ids.lock:
                        group = self._without_ledger_ids(group, self.ids)
                        if group:
                            self._commit(group)
            except (
                Exception
            ) as exc:  # one writer for everyone: a failure answers its requests, never kills it
                # Nothing of the group may stay pending in the connection: a later commit would journal
                # receipts answered 503. (Their sequence numbers stay unused: batches tolerate gaps.)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.rollback()
                if self._broken(exc):
                    self._disconnect()
                    exc = database_unavailable(exc)
                elif not isinstance(exc, ApiError | NodeError):  # an answer already (index or node away)
                    log.exception("receipt journal write failed")
                for item in group:
                    item.done(exc)

    def _broken(self, exc: BaseException) -> bool:
        """The database or the connection to it failed (not the write itself)."""
        dbapi = self._engine.dialect.dbapi
        return dbapi is not None and isinstance(exc, dbapi.OperationalError)

    def _without_ledger_ids(self, group: list[_Append], ids: DeliveryIds) -> list[_Append]:
        """The requests of ``group`` none of whose receipts takes the id of a single delivery (by its
        provider: ids are held to the provider's namespace on both paths), recorded on the ledger or being
        recorded by this service (:meth:`api.delivery_ids.DeliveryIds.taken`: the audit index, the chain's
        blocks it has not followed yet, the single deliveries in flight); the others are answered
        DELIVERY_ID_IN_USE. One look-up for the whole group, here on the writer's thread rather than on a
        thread of each request's own (that hand-over cost more than the look-up)."""
        taken = ids.taken([r.delivery_id for item in group for r in item.rows])
        if not taken:
            return group
        kept = []
        for item in group:
            hit = next(((i, r) for i, r in enumerate(item.rows) if r.delivery_id in taken), None)
            if hit is None:
                kept.append(item)
                continue
            i, row = hit
            delivery_id = "0x" + row.delivery_id.hex()
            item.done(
                ApiError(
                    "DELIVERY_ID_IN_USE",
                    f"receipts[{i}]: {delivery_id} is a single delivery recorded on the ledger (or being "
                    "recorded); a receipt takes an id of its own",
                    field=f"receipts.{i}.delivery_id",
                    index=i,
                    delivery_id=delivery_id,
                )
            )
        return kept

    def _params(self, item: _Append, now: float) -> tuple[list[tuple[Any, ...]], list[Journaled]]:
        first = self._next_seq
        provider, consumers, rows = item.provider, item.consumers, item.rows
        params = [
            (first + i, r.delivery_id, provider, consumers[r.grant_id], r.grant_id, r.commitment,
             r.hash_algorithm, r.byte_size, r.record_count, now)
            for i, r in enumerate(rows)
        ]  # fmt: skip
        seqs = list(range(first, first + len(rows)))
        leaves = leaf_hashes(rows)
        self._next_seq = first + len(rows)
        if len(consumers) == 1:  # one grant, as nearly every request: one hand-over
            return params, [Journaled(rows[0].grant_id, provider, seqs, leaves)]
        by_grant: dict[int, Journaled] = {}
        for r, seq, leaf in zip(rows, seqs, leaves, strict=True):
            chunk = by_grant.get(r.grant_id)
            if chunk is None:
                chunk = by_grant[r.grant_id] = Journaled(r.grant_id, provider, [], [])
            chunk.seqs.append(seq)
            chunk.leaves.append(leaf)
        return params, list(by_grant.values())

    def _commit(self, group: list[_Append]) -> None:
        now = time.time()
        batches = [self._params(item, now) for item in group]
        try:
            self._write([p for params, _ in batches for p in params])
        except self._engine.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
            # Some request repeats an id: journal each request on its own so only that one is refused.
            for item in group:
                self._commit_alone(item)
            return
        except Exception as exc:
            if self._broken(exc):
                self._unsure.append([j for _, journaled in batches for j in journaled])
            raise
        for item in group:
            item.done(None)
        self._on_commit([j for _, journaled in batches for j in journaled])

    def _write(self, rows: list[tuple[Any, ...]], *, refused: Sequence[tuple[int, bytes]] = ()) -> None:
        """Insert ``rows`` in one transaction, durable on return; else rolled back and the error raised.
        ``refused``: (provider, delivery id) of receipts of refused batches that ``rows`` journal anew,
        removed in the same transaction (refused is final: no batch takes them back)."""
        conn = self._conn
        # Everything else is prepared before taking the turn: the anchorer's writes wait only for the insert.
        with self._turn:
            cur = conn.cursor()
            try:
                if refused:
                    cur.executemany(self._forget_refused, refused)
                cur.executemany(self._insert, rows)
                conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                raise
            finally:
                cur.close()

    def _commit_alone(self, item: _Append) -> None:
        conn = self._conn
        cur = conn.cursor()
        marks = ", ".join([self._mark] * len(item.rows))
        cur.execute(
            "SELECT r.delivery_id, r.grant_id, r.commitment, r.hash_algorithm, r.byte_size, r.record_count, "
            "b.state FROM api_receipts r LEFT JOIN api_receipt_batches b ON b.id = r.batch_id "
            f"WHERE r.provider = {self._mark} AND r.delivery_id IN ({marks})",
            (item.provider, *[r.delivery_id for r in item.rows]),
        )
        existing: dict[bytes, Receipt] = {}
        # A receipt whose batch the contract refused (its grant revoked, a party suspended) is never anchored;
        # posted again, its checks at the door having passed now, it is journaled anew, as if first posted:
        # answered 202 and left refused, it would never be on the ledger.
        refused: list[tuple[int, bytes]] = []
        posted = {r.delivery_id: r for r in item.rows}
        for row in cur:
            found = Receipt(bytes(row[0]), int(row[1]), bytes(row[2]), int(row[3]), int(row[4]), int(row[5]))
            if row[6] == "refused" and posted[found.delivery_id] == found:
                refused.append((item.provider, found.delivery_id))
            else:
                existing[found.delivery_id] = found
        cur.close()
        for i, r in enumerate(item.rows):
            if r.delivery_id in existing and existing[r.delivery_id] != r:
                item.done(
                    ApiError(
                        "DUPLICATE_DELIVERY",
                        f"receipts[{i}]: 0x{r.delivery_id.hex()} was posted before with other fields",
                        index=i,
                        delivery_id="0x" + r.delivery_id.hex(),
                    )
                )
                return
        new_rows = [r for r in item.rows if r.delivery_id not in existing]
        fresh = _Append(item.provider, item.consumers, new_rows, item.done)
        if not fresh.rows:
            item.done(None)
            return
        params, journaled = self._params(fresh, time.time())
        try:
            self._write(params, refused=refused)
        except Exception as exc:
            if self._broken(exc):  # answered 503 by the writer's loop, the connection dropped there
                self._unsure.append(journaled)
                raise
            item.done(exc)
            return
        item.done(None)
        self._on_commit(journaled)
