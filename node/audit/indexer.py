"""The indexer: follows the ledger's events into the audit database.

Guarantees: rows and the progress marker are written in one database transaction per block range, so a crash
or restart resumes exactly after the last committed range (no gap); ``audit_events.seq`` (block number, log
index) is the primary key, so a log can never be stored twice (no duplicate).

Divergence: stored blocks keep their hash, and every sync first compares the last indexed block's hash with
the chain's (:meth:`Indexer.heal`). When they differ, or the node no longer has that block (a reorganisation,
or a node restarted from an older state), the fork point is the highest stored block whose hash the chain
still has; everything indexed after it is dropped in one transaction, a WARNING says so, and indexing resumes
from there. A block the chain still has vouches for every block before it (each header commits to its
parent), so nothing before the fork point needs re-reading.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from node.audit import models as m
from node.audit.derive import DerivedRange, derive_range, record_row, row_record
from node.audit.errors import IndexMismatchError
from node.audit.events import DELIVERY_RECORDED, SEQ_BLOCK, DeliveryInfo, EventCodec, EventRecord, Lineage
from node.rpc import BATCH_SIZE, JsonRpc

log = logging.getLogger("dxl.audit.indexer")

#: Events whose lineage later events need; replayed from the database when the indexer starts.
LINEAGE_EVENTS = (
    "DepartmentAdmitted",
    "AccessRequested",
    "AgreementConcluded",
    "AgreementSuspended",
    "AgreementReinstated",
    "AgreementRevoked",
    "GrantIssued",
    "GrantRevoked",
)


@dataclass(frozen=True)
class IndexerConfig:
    """``batch_blocks``: blocks per ``eth_getLogs`` (Besu caps ranges at 5,000 by default);
    ``confirmations``: blocks behind the head left unindexed (0 on QBFT/anvil, where blocks are final);
    ``scan_refusals``: also record failed ``recordDelivery`` transactions (see :mod:`node.audit.derive`)."""

    batch_blocks: int = 2000
    confirmations: int = 0
    scan_refusals: bool = True


@dataclass
class SyncResult:
    from_block: int
    to_block: int
    events: int = 0
    refusals: int = 0
    ranges: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Rewind:
    """What :meth:`Indexer.heal` undid: the index now ends at ``fork_block``, the last block both histories
    share (``start_block - 1`` when they share none)."""

    diverged_at: int
    stored_hash: str
    chain_hash: str | None
    fork_block: int
    events: int
    refusals: int


@dataclass(frozen=True)
class Progress:
    chain_id: int
    contract: str
    start_block: int
    last_block: int
    last_block_hash: str | None
    scan_refusals: bool
    #: The ``ReceiptAnchors`` contract indexed beside the ledger (None: none known when indexing).
    anchors: str | None = None
    #: The ``SharingPractice`` contract indexed beside the ledger (None: none known when indexing).
    practice: str | None = None

    def companion(self, column: str) -> str | None:
        """The contract beside the ledger indexed as ``column`` (``anchors``, ``practice``)."""
        value: str | None = getattr(self, column)
        return value


@dataclass(frozen=True)
class CompanionSource:
    """A contract beside the ledger (its ``ReceiptAnchors``, its ``SharingPractice``), as the deployment
    record names it."""

    address: str
    block_number: int


#: What each companion contract is called in the messages about it.
_COMPANION_NAMES = {"anchors": "receipt anchors", "practice": "sharing practice"}


def read_progress(engine: Engine) -> Progress | None:
    with engine.connect() as c:
        row = c.execute(select(m.progress).where(m.progress.c.id == 1)).first()
    if row is None:
        return None
    return Progress(
        row.chain_id,
        row.contract,
        row.start_block,
        row.last_block,
        row.last_block_hash,
        bool(row.scan_refusals),
        row.anchors,
        row.practice,
    )


def load_lineage(engine: Engine) -> Lineage:
    """The lineage of everything indexed so far; deliveries are looked up in the database on demand."""

    def lookup(delivery_id: str) -> DeliveryInfo | None:
        with engine.connect() as c:
            row = c.execute(
                select(m.events)
                .where(m.events.c.delivery_id == delivery_id, m.events.c.event == DELIVERY_RECORDED)
                .limit(1)
            ).first()
        if row is None:
            return None
        return DeliveryInfo(
            row.grant_id,
            row.commitment,
            row.provider_id,
            row.consumer_id,
            row.agreement_id,
            row.resource_id,
            row.request_id,
        )

    lineage = Lineage(delivery_lookup=lookup)
    with engine.connect() as c:
        rows = c.execute(
            select(m.events).where(m.events.c.event.in_(LINEAGE_EVENTS)).order_by(m.events.c.seq)
        )
        for row in rows:
            lineage.resolve(row_record(row))
    return lineage


class Indexer:
    """Indexes one contract on one chain into one database (which it refuses to mix with another)."""

    def __init__(
        self,
        engine: Engine,
        rpc: JsonRpc,
        codec: EventCodec,
        *,
        contract: str,
        chain_id: int,
        start_block: int,
        config: IndexerConfig | None = None,
        anchors: CompanionSource | None = None,
        practice: CompanionSource | None = None,
    ) -> None:
        self.engine, self.rpc, self.codec = engine, rpc, codec
        self.contract, self.chain_id, self.start_block = contract, chain_id, start_block
        self.config = config or IndexerConfig()
        self.anchors, self.practice = anchors, practice
        self._lineage: Lineage | None = None

    def _progress(self) -> Progress:
        current = read_progress(self.engine)
        if current is None:
            # Another indexer of this database (the API's follower, a `dxl audit index` run) may write the
            # first marker at the same moment: the first one written stays, the other insert does nothing
            # (a plain insert failed the second indexer on the primary key).
            on_conflict = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            with self.engine.begin() as c:
                c.execute(
                    on_conflict(m.progress)
                    .on_conflict_do_nothing()
                    .values(
                        id=1,
                        chain_id=self.chain_id,
                        contract=self.contract,
                        start_block=self.start_block,
                        last_block=self.start_block - 1,
                        last_block_hash=None,
                        scan_refusals=self.config.scan_refusals,
                        anchors=None if self.anchors is None else self.anchors.address,
                        practice=None if self.practice is None else self.practice.address,
                    )
                )
            current = read_progress(self.engine)
            assert current is not None
        if current.chain_id != self.chain_id or current.contract.lower() != self.contract.lower():
            raise IndexMismatchError(
                f"the audit database indexes contract {current.contract} on chain {current.chain_id}, not "
                f"{self.contract} on chain {self.chain_id}; point DXL_DATABASE_URL elsewhere or rebuild it"
            )
        for column, source in (("anchors", self.anchors), ("practice", self.practice)):
            if source is None:
                continue
            indexed = current.companion(column)
            if indexed is None:
                if adopt_companion(self.engine, current, column, source):
                    self._lineage = None
                    log.warning(
                        "the audit database predates %s %s (deployed in block %d): re-indexing from that "
                        "block so that what it recorded since is indexed too",
                        _COMPANION_NAMES[column], source.address, source.block_number,
                    )  # fmt: skip
                return self._progress()
            if indexed.lower() != source.address.lower():
                raise IndexMismatchError(
                    f"the audit database indexes {_COMPANION_NAMES[column]} {indexed}, the deployment names "
                    f"{source.address}; rebuild it (`dxl audit index --rebuild`)"
                )
        return current

    def sync(
        self,
        *,
        to_block: int | None = None,
        max_ranges: int | None = None,
        on_range: Callable[[DerivedRange], None] | None = None,
    ) -> SyncResult:
        """Index from the block after the last indexed one up to ``to_block`` (default: head minus the
        confirmation depth), at most ``max_ranges`` block ranges.

        Raises:
            IndexMismatchError: the database belongs to another contract or chain.
            NodeError, AuditError: as :func:`node.audit.derive.derive_range`.
        """
        started = time.perf_counter()
        self._progress()
        self.heal()
        progress = self._progress()
        head = self.rpc.block_number() - self.config.confirmations
        target = head if to_block is None else min(to_block, head)
        result = SyncResult(from_block=progress.last_block + 1, to_block=progress.last_block)
        while target > progress.last_block and (max_ranges is None or result.ranges < max_ranges):
            if self._lineage is None:
                self._lineage = load_lineage(self.engine)
            first, last = progress.last_block + 1, min(progress.last_block + self.config.batch_blocks, target)
            derived = derive_range(
                self.rpc,
                self.codec,
                self._lineage,
                self.contract,
                first,
                last,
                scan_refusals=progress.scan_refusals,
                anchors=progress.anchors,
                practice=progress.practice,
            )
            if not write_range(self.engine, derived):
                # Another indexer of this database (the API's follower, a `dxl audit index` run) stored
                # this range first. Its rows are the same chain's: drop ours, and the lineage they advanced,
                # and go on after what it wrote.
                self._lineage = None
                progress = self._progress()
                continue
            progress = dataclasses.replace(progress, last_block=last, last_block_hash=derived.last_block_hash)
            result.events += len(derived.records)
            result.refusals += len(derived.refusals)
            result.ranges += 1
            result.to_block = last
            if on_range is not None:
                on_range(derived)
        if result.events >= ANALYZE_AFTER:
            analyze(self.engine)
        result.seconds = time.perf_counter() - started
        return result

    def _chain_hashes(self, numbers: list[int]) -> list[str | None]:
        """The chain's hash of each block number (None where the node has no such block)."""
        found = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        return [None if b is None else str(b["hash"]).lower() for b in found]

    def heal(self) -> Rewind | None:
        """Make the index a prefix of the chain the node serves now: if the last indexed block is not on
        chain any more, drop everything after the fork point (see the module docstring). One header read
        when nothing diverged.

        Raises:
            NodeError: the node fails.
        """
        progress = read_progress(self.engine)
        if progress is None or progress.last_block_hash is None:
            return None
        (chain_hash,) = self._chain_hashes([progress.last_block])
        if chain_hash == progress.last_block_hash:
            return None
        fork_block, fork_hash = progress.start_block - 1, None
        below = progress.last_block
        while fork_hash is None:
            with self.engine.connect() as c:
                stored = c.execute(
                    select(m.blocks.c.number, m.blocks.c.hash)
                    .where(m.blocks.c.number < below)
                    .order_by(m.blocks.c.number.desc())
                    .limit(BATCH_SIZE)
                ).all()
            if not stored:
                break
            for (number, stored_hash), on_chain in zip(
                stored, self._chain_hashes([n for n, _ in stored]), strict=True
            ):
                if on_chain == stored_hash:
                    fork_block, fork_hash = number, stored_hash
                    break
            below = stored[-1][0]
        rewind = rewind_store(self.engine, progress, fork_block, fork_hash, chain_hash)
        if rewind is not None:
            self._lineage = None  # it learnt from the dropped events
            log.warning(
                "the chain diverged from the audit index: block %d is %s on chain, %s in the index; "
                "dropped %d events and %d refusals after block %d (the last block both share) and "
                "re-indexing from block %d",
                rewind.diverged_at, rewind.chain_hash or "missing", rewind.stored_hash, rewind.events,
                rewind.refusals, rewind.fork_block, rewind.fork_block + 1,
            )  # fmt: skip
        return rewind


#: Refresh the query planner's statistics after indexing this many events in one run.
ANALYZE_AFTER = 50_000


def analyze(engine: Engine) -> None:
    """Refresh planner statistics, so filters on rare events (a grant's revocation) use the right index."""
    with engine.begin() as c:
        c.exec_driver_sql("ANALYZE")


def reset_store(engine: Engine) -> None:
    """Forget everything indexed (``dxl audit index --rebuild``): the next sync starts again from the
    deployment block. The chain is the record; the database is only its index."""
    with engine.begin() as c:
        for table in (m.events, m.practice_events, m.blocks, m.refusals, m.progress):
            c.execute(table.delete())


def rewind_store(
    engine: Engine, progress: Progress, fork_block: int, fork_hash: str | None, chain_hash: str | None
) -> Rewind | None:
    """Drop every row after ``fork_block`` and move the progress marker back to it, atomically; None (and
    nothing done) if another indexer moved the marker since ``progress`` was read."""
    assert progress.last_block_hash is not None
    after = (fork_block + 1) * SEQ_BLOCK
    with engine.begin() as c:
        claimed = c.execute(
            update(m.progress)
            .where(m.progress.c.id == 1, m.progress.c.last_block == progress.last_block)
            .values(last_block=fork_block, last_block_hash=fork_hash)
        ).rowcount
        if claimed != 1:
            return None
        events = c.execute(delete(m.events).where(m.events.c.seq >= after)).rowcount
        events += c.execute(delete(m.practice_events).where(m.practice_events.c.seq >= after)).rowcount
        refusals = c.execute(delete(m.refusals).where(m.refusals.c.block_number > fork_block)).rowcount
        c.execute(delete(m.blocks).where(m.blocks.c.number > fork_block))
    return Rewind(progress.last_block, progress.last_block_hash, chain_hash, fork_block, events, refusals)


def adopt_companion(engine: Engine, progress: Progress, column: str, source: CompanionSource) -> bool:
    """Start indexing ``source`` (the receipt anchors or the sharing practice, ``column`` of the progress
    marker) beside the ledger in a database indexed without it: record its address and, if the index already
    covers its deployment block, drop every row from that block on (atomically with the marker), so the next
    sync re-reads that stretch with its logs. False (and nothing done) if another indexer did it first."""
    fork = min(progress.last_block, source.block_number - 1)
    values: dict[str, Any] = {column: source.address}
    if fork < progress.last_block:
        values.update(last_block=fork, last_block_hash=None)
    with engine.begin() as c:
        claimed = c.execute(
            update(m.progress)
            .where(
                m.progress.c.id == 1,
                m.progress.c[column].is_(None),
                m.progress.c.last_block == progress.last_block,
            )
            .values(**values)
        ).rowcount
        if claimed != 1:
            return False
        if fork < progress.last_block:
            c.execute(delete(m.events).where(m.events.c.seq >= (fork + 1) * SEQ_BLOCK))
            c.execute(delete(m.practice_events).where(m.practice_events.c.seq >= (fork + 1) * SEQ_BLOCK))
            c.execute(delete(m.refusals).where(m.refusals.c.block_number > fork))
            c.execute(delete(m.blocks).where(m.blocks.c.number > fork))
    return True


def write_range(engine: Engine, derived: DerivedRange) -> bool:
    """Store one derived range and advance the progress marker, atomically.

    The marker moves first, and only from the block before the range: a writer that lost a race to another
    indexer of the same database finds it moved, writes nothing and gets False (the database's row lock or
    write lock orders the two).
    """
    with engine.begin() as c:
        claimed = c.execute(
            update(m.progress)
            .where(m.progress.c.id == 1, m.progress.c.last_block == derived.first_block - 1)
            .values(last_block=derived.last_block, last_block_hash=derived.last_block_hash)
        ).rowcount
        if claimed != 1:
            return False
        write_records(c, derived.records)
        if derived.practice:
            c.execute(insert(m.practice_events), [r.row() for r in derived.practice])
        if derived.blocks:
            c.execute(insert(m.blocks), [b.__dict__ for b in derived.blocks])
        if derived.refusals:
            c.execute(insert(m.refusals), [r.row() for r in derived.refusals])
    return True


def write_records(connection: Any, records: list[EventRecord]) -> None:
    if records:
        connection.execute(insert(m.events), [record_row(r) for r in records])
