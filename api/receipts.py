"""Receipts at volume: accepted in bulk, journaled with group commit, anchored in Merkle batches, off the hot
path.

A receipt is a delivery that does not get a transaction of its own. ``POST /receipts`` checks each receipt as
``POST /deliveries`` checks a delivery — the caller is the grant's provider, the grant is usable, both
departments are active, the id is unused — against grant state cached for :data:`GRANT_CACHE_TTL_S`, not one
``eth_call`` per receipt; then the :class:`ReceiptJournal` writes it durably (one SQLite/PostgreSQL
transaction for every request that arrived meanwhile: group commit) and the request is answered ``202``.

The :class:`Anchorer` (a thread of the service) collects each grant's journaled receipts and closes a batch
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

Receipt status: ``pending`` (journaled, in no batch yet), ``anchored`` (in a closed batch whose root and
inclusion proof are known, transaction sent), ``final`` (the anchoring transaction is mined, with
``DXL_CONFIRMATIONS`` blocks on top of it: the batch is on chain for good), ``refused`` (the contract refused
the batch, e.g. the grant was revoked in between; ``error`` says why; posted again, a refused receipt passes
the door's checks as a new one and is journaled anew). The batches of the grant sent behind
a refused one fail out of sequence: their receipts are batched again, in journal order, from the slot it left.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import itertools
import logging
import operator
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from eth_utils.crypto import keccak
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
    select,
)
from web3 import Web3
from web3.exceptions import TransactionNotFound

from api.db import ApiBase, init_db
from api.errors import ApiError, not_found
from api.journal import Claim, Entry, JournaledSender, TxStatus, database_unavailable
from api.models import MAX_DELIVERY_COUNT, MAX_ID64, MAX_RECEIPTS_PER_REQUEST
from node.chain import LedgerClient, LedgerRevertError, PendingTx, TxResult
from node.errors import DxlError, NodeError
from node.types import (
    Agreement,
    AgreementStatus,
    Department,
    DepartmentStatus,
    Grant,
    Resource,
    ShareType,
)
from verifier.codes import FindingCode
from verifier.receipts import BatchTree, Receipt, ReceiptProof, leaf_hashes

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from api.delivery_ids import DeliveryIds

log = logging.getLogger("dxl.receipts")

#: Ids one bulk look-up may name.
MAX_LOOKUP = 1000
#: How long checked grant state is trusted. The contract checks again on every anchor, so a grant revoked
#: within this window refuses its batch instead of recording it.
GRANT_CACHE_TTL_S = 1.0
#: Gas limit of one anchor (about 115,000 used; the first anchor of a grant about 17,000 more). Fixed, not
#: estimated: a grant's next batch is sent before the previous one is mined, and an estimate would see the
#: sequence number still taken.
ANCHOR_GAS = 300_000
#: A closing batch takes every pending receipt of its grant up to this many, not only ``batch_size``: an
#: anchorer that fell behind (a slow node, a busy disk) catches up with bigger batches instead of a growing
#: queue of small ones, each costing a transaction and its bookkeeping. 65,536 leaves: a 16-hash proof.
MAX_BATCH_LEAVES = 1 << 16
#: Leaves of recent batch trees the reader keeps (about 100 bytes each): proofs of receipts being followed
#: are read off them instead of rebuilding the tree from the journal on every look-up.
TREE_CACHE_LEAVES = 1 << 19
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
#: How often the follower asks the node's height while anchors wait. Each look is one ``eth_blockNumber``
#: through web3 (about 1.4 ms of the service's CPU): every 20 ms, fifty a second cost 3.5 ms of CPU per 1,000
#: receipts at 20,000 receipts/s; every 50 ms a mined anchor is seen 15 ms later on average, against blocks
#: of 250 ms and a time to final near a second.
FOLLOW_TICK_S = 0.05
#: Blocks the reader remembers as final on a chain with a confirmation depth (a number and a hash each): a
#: look-up of receipts anchored in them asks the node for their hash no more.
SETTLED_BLOCKS = 4096
#: The receipt journal writer's SQLite page cache, in KiB (about 50 MB of index per million receipts).
JOURNAL_CACHE_KIB = 65_536
_HASH_IDS = {"sha256": 1, "sm3": 2}
_HASH_NAMES = {v: k for k, v in _HASH_IDS.items()}
_FIELDS = ("delivery_id", "grant_id", "commitment", "hash_algorithm", "byte_size", "record_count")
_FIELD_SET = frozenset(_FIELDS)
_REQUIRED = frozenset(("delivery_id", "grant_id", "commitment", "byte_size"))

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


# --------------------------------------------------------------------------------------------------- input


class ReceiptRow(NamedTuple):
    """A checked receipt: the contract's ``DeliveryRecord`` fields. A named tuple, not a frozen dataclass:
    one is built per receipt on the hot path, at less than half the cost."""

    delivery_id: bytes
    grant_id: int
    commitment: bytes
    hash_algorithm: int
    byte_size: int
    record_count: int


def _bad(index: int, name: str, message: str) -> ApiError:
    return ApiError(
        "VALIDATION_ERROR", f"receipts[{index}].{name}: {message}", field=f"receipts.{index}.{name}"
    )


def _b32(value: Any, index: int, name: str) -> bytes:
    # "0x" as POST /deliveries and the documented pattern take it: "0X" passed here alone.
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        raise _bad(index, name, "expected 0x followed by 64 hex digits")
    try:
        decoded = bytes.fromhex(value[2:])
    except ValueError:
        raise _bad(index, name, "expected 0x followed by 64 hex digits") from None
    if len(decoded) != 32:  # fromhex skips whitespace: 66 characters may hold fewer than 32 bytes
        raise _bad(index, name, "expected 0x followed by 64 hex digits")
    return decoded


def _count(value: Any, index: int, name: str, low: int = 0, high: int = MAX_DELIVERY_COUNT) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(index, name, f"expected an integer from {low} to {high}")
    return value


def _checked(item: Any, i: int) -> ReceiptRow:
    """Receipt ``i`` checked field by field, in the order a refusal names them.

    Raises:
        ApiError: VALIDATION_ERROR naming the first bad field.
    """
    if not isinstance(item, dict):
        raise ApiError("VALIDATION_ERROR", f"receipts[{i}] must be an object", field=f"receipts.{i}")
    missing = _REQUIRED.difference(item)
    if missing:
        raise _bad(i, sorted(missing)[0], "field required")
    if not _FIELD_SET.issuperset(item):
        raise _bad(i, sorted(set(item).difference(_FIELDS))[0], "unknown field")
    delivery_id = _b32(item["delivery_id"], i, "delivery_id")
    commitment = _b32(item["commitment"], i, "commitment")
    name = item.get("hash_algorithm", "sha256")
    # Only a string can be a name: anything else (an object, a list) is not even looked up.
    alg = _HASH_IDS.get(name) if isinstance(name, str) else None
    if alg is None:
        raise _bad(i, "hash_algorithm", "expected sha256 or sm3")
    return ReceiptRow(
        delivery_id,
        # Any grant id the ledger could number: one it never did is GRANT_NOT_FOUND, as for POST /deliveries.
        _count(item["grant_id"], i, "grant_id", 1, MAX_ID64),
        commitment,
        alg,
        _count(item["byte_size"], i, "byte_size"),
        _count(item.get("record_count", 0), i, "record_count"),
    )


def parse_receipts(document: Any) -> list[ReceiptRow]:
    """The receipts of a ``POST /receipts`` body (already JSON-decoded), checked field by field.

    A hand-written check instead of a model per receipt: this runs for every receipt of the hot path.

    Raises:
        ApiError: VALIDATION_ERROR naming the first bad field (``receipts.<i>.<name>``), a repeated id, or a
            wrong shape; INVALID_FIELD for a zero delivery id or commitment.
    """
    if not isinstance(document, dict) or set(document) != {"receipts"}:
        raise ApiError("VALIDATION_ERROR", 'the body must be {"receipts": [ ... ]}', field="receipts")
    items = document["receipts"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RECEIPTS_PER_REQUEST:
        raise ApiError(
            "VALIDATION_ERROR",
            f"receipts must be a list of 1 to {MAX_RECEIPTS_PER_REQUEST} receipts",
            field="receipts",
        )
    rows: list[ReceiptRow] = []
    seen: dict[bytes, int] = {}
    zero = bytes(32)
    fromhex, hash_ids = bytes.fromhex, _HASH_IDS
    for i, item in enumerate(items):
        # The common case is checked inline (a call per field is a third of this loop's time); whatever it
        # does not accept goes through the field checks, which name the first bad field.
        try:
            d, c = item["delivery_id"], item["commitment"]
            delivery_id, commitment = fromhex(d[2:]), fromhex(c[2:])
            grant_id, byte_size = item["grant_id"], item["byte_size"]
            alg = hash_ids.get(item.get("hash_algorithm", "sha256"))
            record_count = item.get("record_count", 0)
        except (TypeError, KeyError, ValueError, AttributeError):
            row = _checked(item, i)
        else:
            if (
                len(item) > 6
                or (len(item) > 4 and not _FIELD_SET.issuperset(item))
                or len(d) != 66
                or d[:2] != "0x"
                or len(c) != 66
                or c[:2] != "0x"
                or len(delivery_id) != 32  # fromhex skips whitespace: 66 characters may hold fewer bytes
                or len(commitment) != 32
                or alg is None
                or type(grant_id) is not int
                or not 1 <= grant_id <= MAX_ID64
                or type(byte_size) is not int
                or not 0 <= byte_size <= MAX_DELIVERY_COUNT
                or type(record_count) is not int
                or not 0 <= record_count <= MAX_DELIVERY_COUNT
            ):
                row = _checked(item, i)
            else:
                row = ReceiptRow(delivery_id, grant_id, commitment, alg, byte_size, record_count)
        if row.delivery_id == zero or row.commitment == zero:
            raise ApiError(
                "INVALID_FIELD", f"receipts[{i}]: delivery_id and commitment must not be zero", index=i
            )
        if row.delivery_id in seen:
            raise _bad(i, "delivery_id", f"repeats receipts[{seen[row.delivery_id]}].delivery_id")
        seen[row.delivery_id] = i
        rows.append(row)
    return rows


def refuse_repeated_names(raw: bytes, document: dict[str, Any]) -> None:
    """Refuse a body that names a field twice in one object, which orjson settles silently (the last wins):
    every other route's body is refused for it before it is parsed (:func:`api.limits.parse_json`).

    Counted rather than parsed again, on the hot path: ``document`` passed :func:`parse_receipts`, so its
    only names are ``receipts`` and known receipt fields and its only strings hex ids and algorithm names,
    none holding a quote. The body's quotes are then exactly two per name and per string value; a name said
    again adds some.

    Raises:
        ApiError: VALIDATION_ERROR (field ``body``).
    """
    items = document["receipts"]
    # Two per name; each receipt's delivery_id and commitment are strings, and its hash_algorithm if given.
    with_algorithm = sum(map(operator.contains, items, itertools.repeat("hash_algorithm")))
    expected = 2 + 2 * sum(map(len, items)) + 4 * len(items) + 2 * with_algorithm
    if raw.count(b'"') != expected:
        raise ApiError("VALIDATION_ERROR", "the body names a field twice in one object", field="body")


# ---------------------------------------------------------------------------------------------- grant cache


@dataclass(frozen=True, slots=True)
class GrantState:
    """What a receipt's checks need of its grant, read from the ledger at ``fetched_at``."""

    grant_id: int
    provider: int
    consumer: int
    expires_at: int
    #: Why the grant is unusable regardless of time and caller (revoked, agreement or a party not active).
    refusal: tuple[str, str] | None
    fetched_at: float
    #: How far the chain's clock ran ahead of this machine's when read (0 if it did not): the grant expires on
    #: the chain's clock, and a receipt accepted by the wall clock on a node whose clock runs ahead would be
    #: answered 202 and its batch refused later.
    clock_ahead: int = 0

    def check(self, department: int, now: float) -> None:
        """Raise the ApiError ``POST /deliveries`` would answer ``department`` for this grant; ``now`` is
        this machine's clock (``time.time()``)."""
        if department not in (self.provider, self.consumer):
            # Not its exchange: the answer of a grant that does not exist, so grant ids cannot be probed.
            raise not_found("grant", self.grant_id)
        if department != self.provider:
            raise ApiError(
                "NOT_A_PARTY",
                f"only department {self.provider} may deliver under grant {self.grant_id} (its provider); "
                f"you are department {department}",
            )
        if self.refusal is not None:
            raise ApiError(*self.refusal)
        if self.expires_at <= now + self.clock_ahead:
            raise ApiError("GRANT_EXPIRED", f"grant {self.grant_id} expired at {self.expires_at}")


def _no_batch(grant_id: int, first_sequence: int) -> ApiError:
    """The one answer for a batch that does not exist and for one of an exchange the caller is not in."""
    return ApiError("RECEIPT_BATCH_NOT_FOUND", f"no batch of grant {grant_id} starts at {first_sequence}")


class GrantCache:
    """Grant, agreement, resource and department state per grant, read with five ``eth_call``s at most once
    per TTL."""

    def __init__(
        self,
        ledger: LedgerClient,
        *,
        ttl: float = GRANT_CACHE_TTL_S,
        gate: Callable[[], object] | None = None,
    ) -> None:
        """``gate``: the transaction journal's (:meth:`api.journal.JournaledSender.gate`), passed before a
        grant is called unknown."""
        self._ledger = ledger
        self.ttl = ttl
        self._gate = gate
        self._states: dict[int, GrantState] = {}

    def _read(self, grant_id: int) -> Grant:
        try:
            return Grant.read(self._ledger, grant_id)
        except LedgerRevertError as exc:
            if exc.error_name == "GrantUnknown":
                raise not_found("grant", grant_id) from None
            raise

    def fresh(self, grant_id: int, now: float) -> GrantState | None:
        state = self._states.get(grant_id)
        return state if state is not None and now - state.fetched_at < self.ttl else None

    def load(self, grant_id: int) -> GrantState:
        """Read the grant's state from the ledger (blocking).

        Raises:
            ApiError: GRANT_NOT_FOUND for a grant that does not exist.
            NodeError: the node is unreachable.
        """
        fetched = time.monotonic()
        try:
            grant = self._read(grant_id)
        except ApiError:
            if self._gate is None:
                raise
            # An acknowledged grant whose block the node lost exists again once the journal has re-mined it:
            # through the journal's gate (which has lost blocks healed and re-mined first), then read again.
            self._gate()
            fetched = time.monotonic()
            grant = self._read(grant_id)
        refusal: tuple[str, str] | None = None
        if grant.revoked:
            refusal = ("GRANT_REVOKED", f"grant {grant_id} was revoked")
        else:
            agreement = Agreement.read(self._ledger, grant.agreement_id)
            if agreement.status is not AgreementStatus.ACTIVE:
                refusal = (
                    "AGREEMENT_NOT_ACTIVE",
                    f"the agreement {grant.agreement_id} of grant {grant_id} is not active",
                )
            # Reclassified not shared, a resource takes no more deliveries under its grants (nor anchors).
            elif Resource.read(self._ledger, agreement.resource_id).share_type is ShareType.NOT_SHARED:
                refusal = (
                    "RESOURCE_NOT_SHARED",
                    f"resource {agreement.resource_id} of grant {grant_id} is classified as not shared",
                )
            for dept in (grant.provider, grant.consumer):
                if refusal is not None:
                    break
                if Department.read(self._ledger, dept).status is not DepartmentStatus.ACTIVE:
                    refusal = ("DEPARTMENT_NOT_ACTIVE", f"department {dept} is not active")
        clock_ahead = max(0, self._ledger.next_block_time() - int(time.time()))
        state = GrantState(
            grant_id, grant.provider, grant.consumer, grant.expires_at, refusal, fetched, clock_ahead
        )
        self._states[grant_id] = state
        return state


# ------------------------------------------------------------------------------------------------- journal


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
    rows: list[ReceiptRow]
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

    async def append(self, provider: int, consumers: dict[int, int], rows: list[ReceiptRow]) -> None:
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
        existing: dict[bytes, ReceiptRow] = {}
        # A receipt whose batch the contract refused (its grant revoked, a party suspended) is never anchored;
        # posted again, its checks at the door having passed now, it is journaled anew, as if first posted:
        # answered 202 and left refused, it would never be on the ledger.
        refused: list[tuple[int, bytes]] = []
        posted = {r.delivery_id: r for r in item.rows}
        for row in cur:
            found = ReceiptRow(
                bytes(row[0]), int(row[1]), bytes(row[2]), int(row[3]), int(row[4]), int(row[5])
            )
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


# ------------------------------------------------------------------------------------------------ anchorer


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


class BatchSlot(NamedTuple):
    """Whose batch it is and where it sits in its grant's sequence: what ``anchorBatch`` carries besides the
    root, and what the journal's batch row must go on saying."""

    grant_id: int
    provider: int
    first_sequence: int
    leaf_count: int


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
        on_receipt: Callable[[str, Any], None] | None = None,
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
        self._anchored_topic = (
            "0x"
            + keccak(text="ReceiptBatchAnchored(uint64,uint64,uint32,uint32,uint64,bytes32,uint64)").hex()
        )
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
        #: The refusal being settled (the closing thread's; kept until it is).
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
        while not self._stop.is_set():
            try:
                if not self.ready.is_set():
                    self._recover()
                    self.ready.set()
                self._follow_rewound()
                self._settle_refusals()
                self._drain()
                self._flush()
                self._close_due(time.monotonic())
            except DxlError as exc:  # the node away or refusing: keep everything journaled and retry
                log.warning("receipt anchoring paused: %s", exc)
                self._stop.wait(1.0)
                continue
            except Exception:
                log.exception("receipt anchoring failed; retrying")
                self._stop.wait(1.0)
                continue
            self._stop.wait(self._tick)

    def _follow_run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.ready.is_set():  # recovery first: it decides what is sent again
                    self._follow()
            except DxlError as exc:  # the node away: what was sent is still followed when it answers
                log.warning("following receipt anchors paused: %s", exc)
                self._stop.wait(1.0)
                continue
            except Exception:
                log.exception("following receipt anchors failed; retrying")
                self._stop.wait(1.0)
                continue
            self._stop.wait(self._follow_tick)

    def _follow_rewound(self) -> None:
        entries: dict[str, Entry] = {}
        while True:
            try:
                entries.update((e.tx_hash, e) for e in self._rewound.get_nowait())
            except queue.Empty:
                break
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
        while True:
            if not self._settling:
                try:
                    self._settling.append(self._refusals.get_nowait())
                except queue.Empty:
                    return
            # Taken off only once settled: a refusal that fails half-way (the node or the database away while
            # its anchor is voided or its receipts batched again) is settled again at the next round, before
            # the refusals behind it, instead of being dropped with its batch left closed for good.
            self._refused(*self._settling[0])
            self._settling.pop(0)

    def _drain(self) -> None:
        while True:
            try:
                handed_over, journaled = self._inbox.get_nowait()
            except queue.Empty:
                return
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
        while self._unsent:
            self._send(self._unsent[0])
            self._unsent.pop(0)

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
        w3 = self._anchors.w3
        # One eth_blockNumber per tick; the transactions' receipts only when a block was added.
        block = int(w3.eth.block_number)
        if block == self._seen_block:
            return
        self._seen_block = block
        still: list[_Sent] = []
        seen: list[tuple[_Sent, Any]] = []
        for sent in waiting:
            try:
                receipt = w3.eth.get_transaction_receipt(sent.pending.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
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
            on_chain = self._anchors.call("batch", sent.batch.grant_id, sent.batch.first_sequence)
            if (
                int(on_chain[5]) != 0
                and bytes(on_chain[0]) == sent.batch.root
                and int(on_chain[1]) == sent.batch.leaf_count
            ):
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

    def _break(self, grant_id: int) -> None:
        """The chain's sequence of ``grant_id`` stopped at a refused batch: the next batch starts where the
        chain says, and the batches closed so far are behind the refusal. Only here, not for a batch behind
        one: re-read while the batches closed since are on their way, the chain would hand out their slot
        a second time."""
        self._next.pop(grant_id, None)
        self._breaks[grant_id] = self._breaks.get(grant_id, 0) + 1

    def _reopen(self, batch_id: int) -> None:
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(receipts_table.c.seq, receipts_table.c.grant_id, receipts_table.c.provider,
                       *_receipt_columns())
                .where(receipts_table.c.batch_id == batch_id)
                .order_by(receipts_table.c.seq)
            ).all()  # fmt: skip
            conn.execute(
                receipts_table.update().where(receipts_table.c.batch_id == batch_id).values(batch_id=None)
            )
            conn.execute(batches_table.delete().where(batches_table.c.id == batch_id))
        self._requeue(rows)

    def _requeue(self, rows: Sequence[Any]) -> None:
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
            on_chain = self._anchors.call("batch", int(b.grant_id), int(b.first_sequence))
            if int(on_chain[5]) != 0:
                if bytes(on_chain[0]) != bytes(b.root) or int(on_chain[1]) != int(b.leaf_count):
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
            rows = conn.execute(
                select(receipts_table.c.seq, receipts_table.c.grant_id, receipts_table.c.provider,
                       *_receipt_columns())
                .where(receipts_table.c.batch_id.is_(None))
                .order_by(receipts_table.c.seq)
            ).all()  # fmt: skip
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
            try:
                # What it called, from the node (which still holds it: the journal was reconciled before).
                called = self._anchors.w3.eth.get_transaction(pending.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            if str(called.get("to") or "").lower() == ours:
                self._void(account, pending)

    def _mark_final_from_chain(self, batch_id: int, grant_id: int, first: int, tx_hash: str | None) -> None:
        """A batch the chain has but the journal does not know as final (the process died after sending)."""
        topic = self._anchored_topic
        logs = self._anchors.w3.eth.get_logs(
            {
                "address": Web3.to_checksum_address(self._anchors._require_address()),
                "fromBlock": self._from_block,
                "toBlock": "latest",
                "topics": [topic, _word(grant_id), _word(first)],
            }
        )
        block = block_hash = None
        if logs:
            tx_hash = "0x" + bytes(logs[-1]["transactionHash"]).hex()
            block = int(logs[-1]["blockNumber"])
            block_hash = "0x" + bytes(logs[-1]["blockHash"]).hex()
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


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _receipt_columns() -> list[Any]:
    c = receipts_table.c
    return [c.delivery_id, c.commitment, c.hash_algorithm, c.byte_size, c.record_count]


def _row_receipt(row: Any) -> Receipt:
    return Receipt(bytes(row.delivery_id), int(row.grant_id), bytes(row.commitment), int(row.hash_algorithm),
                   int(row.byte_size), int(row.record_count))  # fmt: skip


class JournalCorruptError(DxlError, ValueError):
    """Thrown when a row of the receipt journal holds what the service never writes: the API database was
    changed outside the service (edited or cut by hand). The message says which row and what."""

    code = FindingCode.RECEIPT_JOURNAL_CORRUPT  # and of the finding a verdict names it by


_UINT64 = 2**64


def _checked_receipt(row: Any) -> Receipt:
    """The receipt of a journal row, each field what the service writes (bytes32, an id or count of the
    ledger's width, a hash algorithm it knows).

    Raises:
        JournalCorruptError: a field is not.
    """
    where = f"the journal's row {row.seq}"
    for name in ("delivery_id", "commitment"):
        value = getattr(row, name)
        if not isinstance(value, bytes | memoryview) or len(value) != 32:
            raise JournalCorruptError(f"{where} holds {value!r} as its {name}, not 32 bytes")
    for name in ("grant_id", "byte_size", "record_count"):
        value = getattr(row, name)
        if type(value) is not int or not 0 <= value < _UINT64:
            raise JournalCorruptError(f"{where} holds {value!r} as its {name}, not a 64-bit count")
    if row.hash_algorithm not in _HASH_NAMES:
        raise JournalCorruptError(
            f"{where} names hash algorithm {row.hash_algorithm!r}, none the ledger knows"
        )
    return _row_receipt(row)


def _checked_batch(row: Any) -> None:
    """That the batch joined to a journal row is one the service wrote.

    Raises:
        JournalCorruptError: the batch is missing, or a field of it is not what the service writes.
    """
    batch = f"its batch {row.batch_id}"
    if row.state is None:
        raise JournalCorruptError(
            f"the journal's row {row.seq} is in {batch}, which the journal does not hold"
        )
    if row.state not in _STATUS:
        raise JournalCorruptError(f"{batch} is in state {row.state!r}, which the service never writes")
    if not isinstance(row.root, bytes | memoryview) or len(row.root) != 32:
        raise JournalCorruptError(f"{batch} holds {row.root!r} as its root, not 32 bytes")
    for name, low in (("batch_grant_id", 1), ("batch_provider", 1), ("first_sequence", 0), ("leaf_count", 1)):
        value = getattr(row, name)
        if type(value) is not int or not low <= value < _UINT64:
            raise JournalCorruptError(f"{batch} holds {value!r} as its {name.removeprefix('batch_')}")
    # A batch is one grant's receipts, anchored by its provider: a member naming another is not the batch's.
    if (row.grant_id, row.provider) != (row.batch_grant_id, row.batch_provider):
        raise JournalCorruptError(
            f"the journal's row {row.seq} names grant {row.grant_id} of department {row.provider}, {batch} "
            f"grant {row.batch_grant_id} of department {row.batch_provider}"
        )


def _row_slot(row: Any) -> BatchSlot:
    """The slot the journal's batch row (joined to a receipt's) says its batch holds."""
    return BatchSlot(int(row.batch_grant_id), int(row.batch_provider), int(row.first_sequence),
                     int(row.leaf_count))  # fmt: skip


class _Built(NamedTuple):
    """A batch's tree, each member's leaf index by journal ``seq``, and the slot it was anchored in."""

    tree: BatchTree
    indexes: dict[int, int]
    slot: BatchSlot


# ------------------------------------------------------------------------------------------------ look-ups


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


_STATUS = {"closed": "anchored", "final": "final", "refused": "refused"}


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
        anchored: Callable[[str], tuple[BatchSlot, bytes] | None] | None = None,
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
                f"the journal's {len(rows)} receipts of batch {batch_id} no longer hash to its root "
                f"0x{root.hex()}: a row of the batch was changed, added or removed"
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
            if on_chain[1] != root:
                raise JournalCorruptError(
                    f"batch {batch_id} holds root 0x{root.hex()}, its anchor {row.tx_hash} anchored "
                    f"0x{on_chain[1].hex()}: the journal was changed after the batch was anchored"
                )
            slot = on_chain[0]
        built = _Built(tree, {int(r.seq): i for i, r in enumerate(rows)}, slot)
        self._keep(key, built)
        return built

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
        index = indexes.get(row.seq)
        if index is None or tree.size != row.leaf_count or tree.leaf(index) != receipt.leaf_hash():
            raise JournalCorruptError(
                f"the journal's row {row.seq} is not the receipt batch {row.batch_id} anchored (a batch of "
                f"{row.leaf_count} receipts, root 0x{bytes(row.root).hex()}): it was changed after the batch "
                "closed"
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


# ------------------------------------------------------------------------------------------------- service


def _tx_block(client: LedgerClient) -> Callable[[str], tuple[int, str] | None]:
    """A transaction's block (number, hash) as the node's receipt of it says; None when it is not mined there
    (or reverted: such an anchor anchored nothing)."""

    def locate(tx_hash: str) -> tuple[int, str] | None:
        receipt = client.receipt(tx_hash)
        if receipt is None or int(receipt["status"]) != 1:
            return None
        return int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex()

    return locate


def anchored_batch(anchors: LedgerClient) -> Callable[[str], tuple[BatchSlot, bytes] | None]:
    """The batch an anchor transaction anchored (its slot and root, from its ``ReceiptBatchAnchored`` log);
    None while it is not mined on the node's chain, or reverted (it anchored nothing)."""

    def anchored(tx_hash: str) -> tuple[BatchSlot, bytes] | None:
        receipt = anchors.receipt(tx_hash)
        if receipt is None or int(receipt["status"]) != 1:
            return None
        for event in anchors.decode_logs(receipt["logs"]):
            if event.name == "ReceiptBatchAnchored":
                a = event.args
                slot = BatchSlot(int(a["grantId"]), int(a["provider"]), int(a["firstSequence"]),
                                 int(a["leafCount"]))  # fmt: skip
                return slot, bytes(a["root"])
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
        batch_size: int,
        batch_age: float,
        from_block: int = 0,
        submit: Submit | None = None,
        on_receipt: Callable[[str, Any], None] | None = None,
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
        self.grants = GrantCache(ledger, gate=gate)
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

    def _grant(self, grant_id: int, now: float) -> GrantState:
        return self.grants.fresh(grant_id, now) or self.grants.load(grant_id)

    async def _load_grant(self, grant_id: int) -> GrantState:
        from anyio import to_thread

        # One read per grant at a time: the requests arriving while it runs wait for its answer.
        lock = self._grant_locks.setdefault(grant_id, asyncio.Lock())
        async with lock:
            state = self.grants.fresh(grant_id, time.monotonic())
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

    async def accept(self, department: int, rows: list[ReceiptRow]) -> None:
        """Check and journal ``rows`` posted by ``department``; returns once they are durable.

        Raises:
            ApiError: as ``POST /deliveries`` for the first receipt that fails (``index`` names it:
                DELIVERY_ID_NOT_PROVIDERS for an id outside the poster's namespace among them,
                DELIVERY_ID_IN_USE for the id of a delivery recorded on the ledger), or DUPLICATE_DELIVERY.
            NodeError: the node is unreachable while grant state must be read.
        """

        now_mono = time.monotonic()
        now = time.time()
        consumers: dict[int, int] = {}
        # Every grant checked below is the poster's as provider, so every id starts with its department id,
        # as the ledger requires of a delivery: an id of another's namespace would be read as that one's
        # delivery wherever a receipt is looked up by id (GET /receipts/{id}, the audit's provenance).
        namespace = department.to_bytes(4, "big")
        for i, row in enumerate(rows):
            if row.grant_id not in consumers:
                try:
                    state = self.grants.fresh(row.grant_id, now_mono) or await self._load_grant(row.grant_id)
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
