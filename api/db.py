"""The API's own tables: token hashes, idempotency records, the transaction journal and pending signatures.

The metadata is private to the API (:data:`ApiBase`); other components keep their own tables in their own
modules and create them on the same database without editing this one. SQLite under ``DXL_HOME`` by default.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from node.errors import ConfigurationError

log = logging.getLogger("dxl.api.db")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ApiBase(DeclarativeBase):
    """Declarative base of the API's tables only."""


class ApiToken(ApiBase):
    """A bearer token: only the SHA-256 of the token is kept, the plaintext is shown once at issue time."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: ``department:<CODE>``, ``governor:<N>`` or ``auditor``.
    principal: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class IdempotencyRecord(ApiBase):
    """One claimed ``Idempotency-Key``: inserted before the write is sent, completed with its response.

    The unique (principal, key) constraint makes a concurrent retry lose the race to insert and wait for the
    first request's stored result instead of sending a second transaction.
    """

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_api_idempotency_principal_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: None while the first request is in flight.
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    #: The API process working on the claim (its random id); None: nobody, a retry takes it over.
    owner: Mapped[str | None] = mapped_column(String(32), default=None)
    #: The journaled transaction this request sent, set in the same database transaction as the journal row.
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class JournaledTransaction(ApiBase):
    """A signed transaction, committed here before it is sent (write-ahead): the exact bytes that are sent and
    re-sent, so a retry never signs a second transaction. See :mod:`api.journal`."""

    __tablename__ = "api_tx_journal"
    __table_args__ = (Index("ix_api_tx_journal_sender_nonce", "sender", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: ``sent``, ``mined``, ``reverted`` or ``superseded`` (:class:`api.journal.TxStatus`).
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: How the request's response is built from the mined transaction (so a retry can finish it).
    finish: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    #: Position in its block: lost blocks are re-sent in exactly their first order, across senders, so every
    #: record the contract numbers (resources, requests, grants) gets the id its 2xx answer gave.
    tx_index: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JournalChainRow(ApiBase):
    """The chain the journal's transactions were signed for and mined on (one row, ``id`` 1): its id and the
    hash of its first block, recorded at the first start on a ledger. Its blocks are the only ones the
    journal's rows can name: a service on another chain refuses to start on this database
    (:meth:`api.journal.Journal.bind_chain`)."""

    __tablename__ = "api_journal_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    genesis_hash: Mapped[str] = mapped_column(String(66))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingSignature(ApiBase):
    """The first party's EIP-712 signature over an approved request's terms, kept until the other signs."""

    __tablename__ = "api_pending_signatures"
    __table_args__ = (UniqueConstraint("request_id", "role", name="uq_api_pending_signature_request_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, index=True)
    #: ``provider`` or ``consumer``.
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int] = mapped_column(Integer)
    #: The terms the signature is over (JSON of the SharingTerms fields), so both signatures match exactly.
    terms: Mapped[dict[str, object]] = mapped_column(JSON)
    signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogDocumentRow(ApiBase):
    """A catalog entry's metadata document, addressed by the hash the chain holds for it. ``document`` is the
    canonical JSON text (:mod:`verifier.catalog`), re-hashed on every read: an edited row reads unverified."""

    __tablename__ = "api_catalog_documents"

    metadata_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: What a catalog search looks in (:func:`api.catalog.search_text`), written with the document.
    search_text: Mapped[str | None] = mapped_column(Text, default=None)


class CatalogEntryRow(ApiBase):
    """A catalog entry as the audit index's latest registration or update of it left it: what catalog
    searches filter and page on in SQL (:class:`api.catalog.CatalogIndex`). Only which entries a page holds is
    read here; each entry answered is read from the index again and its document checked against that."""

    __tablename__ = "api_catalog_entries"
    __table_args__ = (
        Index("ix_api_catalog_entries_owner", "owner", "registered_seq"),
        Index("ix_api_catalog_entries_share_type", "share_type", "registered_seq"),
    )

    resource_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The index position of its registration: the list's order and its cursors'.
    registered_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    owner: Mapped[int] = mapped_column(BigInteger)
    #: :class:`node.types.ShareType`'s value.
    share_type: Mapped[int] = mapped_column(Integer)
    metadata_hash: Mapped[str] = mapped_column(String(66), index=True)


class CatalogSyncRow(ApiBase):
    """How far :class:`CatalogEntryRow` follows the audit index: the position of the last registration or
    update applied, and its block's hash (a different hash there: the index was rewound past it)."""

    __tablename__ = "api_catalog_sync"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))


class InspectionPresentationRow(ApiBase):
    """What a sampled provider presented to an inspection: the verifier's verdict on its payload and manifest
    against the chain (the payload itself is not kept). The latest presentation of a delivery counts."""

    __tablename__ = "api_inspection_presentations"

    inspection_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    #: The verdict's status (``MATCH`` passes; anything else fails).
    status: Mapped[str] = mapped_column(String(32))
    #: The verdict as canonical JSON; its SHA-256 is the evidence hash recorded with the outcome.
    verdict: Mapped[str] = mapped_column(Text)
    presented_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


#: WAL pages (4 KiB each) between two automatic checkpoints of an SQLite database (see make_engine).
WAL_CHECKPOINT_PAGES = 40_000


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL and a busy timeout (writers wait, not fail).

    Raises:
        ConfigurationError: the URL is malformed or names a database dxl does not keep its tables in
            (:func:`node.audit.store.database_url`): a start-up error in one line, not SQLAlchemy's traceback.
    """
    from node.audit.store import database_url as parsed_url

    url = parsed_url(database_url, "the API's database (DXL_DATABASE_URL)")
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # A checkpoint every 160 MB of WAL, not every 4 MB (SQLite's default; any connection committing
            # past it runs one): a receipt journal commit dirties about one index page per receipt (the ids
            # are random), and a page written again before the next checkpoint is copied back once. CPU per
            # 1,000 receipts inserted at 800,000-1,000,000 receipts: 24-26 ms at 4 MB, 19-22 at 40 MB (in the
            # service); the insert alone (4,000 receipts a commit, the journal's page cache): 18-20 ms at
            # 40 MB, 14-15 at 160 MB, 13-14 at 400 MB. The WAL file keeps its largest size (160 MB) and is
            # replayed at start after a crash. Durability is the same: every commit still syncs the WAL.
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def init_db(engine: Engine) -> None:
    """Brings the API's database to the current schema: every pending migration of ``api/migrations``
    (Alembic; a new database gets every table, one made before the migrations existed gets what it lacks).
    Idempotent.

    Raises:
        OperationalError: the database cannot be reached or changed.
    """
    # Imported here: the CLI commands that never touch the database do not pay for Alembic.
    from node.audit.store import upgrade_to_head

    upgrade_to_head(engine, MIGRATIONS_DIR)


#: Rows per statement of :func:`insert_missing`: SQLite binds at most 32,766 parameters in one.
_INSERT_ROWS = 1000


def insert_missing(session: Session, row: type[ApiBase], values: Sequence[Mapping[str, Any]]) -> None:
    """Inserts those of ``values`` whose keys (primary or unique) ``row``'s table does not hold yet, leaving
    the others as they are: ``INSERT ... ON CONFLICT DO NOTHING``, which SQLite and PostgreSQL both take, so
    two services inserting the same row at once both succeed (a read followed by an insert lost that race
    with a duplicate key). Callers update what the rows should say in a statement of their own."""
    table = cast(Table, row.__table__)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for at in range(0, len(values), _INSERT_ROWS):
        session.execute(insert(table).values(list(values[at : at + _INSERT_ROWS])).on_conflict_do_nothing())


def one_writer_at_a_time(session: Session, lock: int) -> None:
    """Makes ``session``'s transaction the only one holding ``lock`` until it ends, across processes: two
    services writing the same rows in one database then write them one after the other, never each waiting
    on a row the other holds (PostgreSQL found that deadlock). PostgreSQL: a transaction-scoped advisory
    lock; SQLite lets one writer at a time in already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})


class DatabaseInUseError(ConfigurationError):
    """Thrown when another API service runs on the API database (:func:`hold_database`)."""

    code = "DATABASE_IN_USE"

    def __init__(self, database: str, holder: str) -> None:
        super().__init__(
            f"another dxl API service ({holder}) runs on the API database ({database}); one service per "
            "database signs, journals and anchors the ledger's writes (its nonce counters, transaction "
            "journal, Idempotency-Key claims and receipt sequence are its own, and a second one would sign "
            "other transactions at the same nonces): stop that service first, or give this one a database "
            "of its own (DXL_DATABASE_URL)"
        )


#: The first key of the advisory lock a service holds on its database; the second is the schema's hash, so
#: services on other schemas of one PostgreSQL database (the tests' workers) do not exclude each other.
_SERVICE_LOCK = 0x6478_6C73  # "dxls"
#: How long a starting service waits for the lock before refusing: a service just killed holds it until the
#: server sees its connection closed.
HOLD_WAIT_S = 5.0
#: How often a running service looks at the connection holding its lock (one ``SELECT 1``), to take the lock
#: again on a new one after the server restarted or the connection was cut.
HOLD_CHECK_S = 1.0
_TAKE = text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))")
_GIVE_BACK = text("SELECT pg_advisory_unlock(:cls, hashtext(current_schema()))")
_WHO_HOLDS = text(
    "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
    " AND l.classid = CAST(:cls AS oid) AND l.objid = CAST(hashtext(current_schema()) AS oid)"
    " AND l.objsubid = 2"
)


class _Hold:
    """The connection holding a service's lock on its database, and the thread that keeps it held."""

    def __init__(self, engine: Engine, check: float) -> None:
        self.database = engine.url.render_as_string(hide_password=True)
        name = f"dxl-api {socket.gethostname()} pid {os.getpid()}"
        self._engine = create_engine(engine.url, poolclass=NullPool, connect_args={"application_name": name})
        self._conn: Connection | None = None
        #: Whether ``_conn`` holds the lock (it may be open and not hold it: another service took it).
        self._held = False
        self._check = check
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="dxl-database-hold", daemon=True)

    def take(self) -> str | None:
        """Takes the lock (on a new connection if there is none); None once held, else who holds it."""
        if self._conn is None:
            self._conn = self._engine.connect()
        taken = self._conn.scalar(_TAKE, {"cls": _SERVICE_LOCK})
        found = None if taken else self._conn.execute(_WHO_HOLDS, {"cls": _SERVICE_LOCK}).first()
        # The lock is the session's: the transaction that took it ends, and the connection stays.
        self._conn.commit()
        self._held = bool(taken)
        if taken:
            return None
        if found is None:  # released meanwhile: the next try takes it
            return "a service that just stopped"
        name, address, since = found
        return f"{name or 'unnamed'} from {address or 'a local socket'}, connected since {since}"

    def start(self) -> None:
        self._thread.start()

    def _keep(self) -> None:
        """While the service runs: a connection lost (the server restarted, a network cut) lost the lock with
        it, and a second service could start and sign at this one's nonces. The lock is taken again on a new
        connection as soon as the server answers; if another service took it meanwhile, that is logged as
        the error it is, every look, until one of the two stops."""
        lost = False
        while not self._stop.wait(self._check):
            try:
                if self._conn is not None and self._held:
                    self._conn.execute(text("SELECT 1"))
                    self._conn.rollback()
                    continue
                holder = self.take()
            except SQLAlchemyError as exc:
                self.close_connection()
                if not lost:
                    log.warning("the hold on the API database is lost, taken again once it answers: %s", exc)
                lost = True
                continue
            if holder is None:
                log.warning("the hold on the API database is taken again")
                lost = False
            else:
                log.error("%s", DatabaseInUseError(self.database, holder))

    def close_connection(self) -> None:
        self._held = False
        if self._conn is not None:
            with suppress(SQLAlchemyError):
                self._conn.invalidate()
            self._conn = None

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._conn is not None:
            with suppress(SQLAlchemyError):
                if self._held:
                    # Given back before the connection closes: the server ends a closed connection's session,
                    # and its locks, a moment later, and a service started just after this one stopped was
                    # refused meanwhile.
                    self._conn.execute(_GIVE_BACK, {"cls": _SERVICE_LOCK})
                    self._conn.commit()
                self._conn.close()
            self._conn = None
        self._engine.dispose()


@contextmanager
def _hold_file(path: Path, database: str, wait: float) -> Iterator[None]:
    """An exclusive POSIX record lock on ``path`` (created 0600, holding the holder's name) while the context
    lasts. Such locks belong to the process: another process is refused, while a second hold in the same
    process (tests start a service again beside the one they run, as after a crash) succeeds, and the first
    of the two to end releases both.

    Raises:
        DatabaseInUseError: another process still holds it after ``wait`` seconds.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:  # EAGAIN or EACCES: another process holds it
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unnamed"
                    raise DatabaseInUseError(database, f"{holder}, holding {path}") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"dxl-api {socket.gethostname()} pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def hold_database(
    engine: Engine, *, wait: float = HOLD_WAIT_S, check: float = HOLD_CHECK_S
) -> Iterator[None]:
    """Makes this process the only API service on ``engine``'s database while the context lasts.

    PostgreSQL: a session-level advisory lock, taken on a connection of its own (named ``dxl-api <host> pid
    <pid>``, which a refused service's message quotes) and held until the context ends; the server releases
    it when that connection ends, also when the process is killed. A connection lost meanwhile is replaced
    and the lock taken again (looked at every ``check`` seconds). SQLite: a POSIX lock on the file
    ``<database>.service`` beside it (:func:`_hold_file`), which the kernel releases when the process ends.

    Raises:
        DatabaseInUseError: another service still holds the database after ``wait`` seconds.
        OperationalError: the database cannot be reached.
    """
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield  # a database of this process alone
        else:
            with _hold_file(Path(f"{database}.service"), engine.url.render_as_string(), wait):
                yield
        return
    hold = _Hold(engine, check)
    try:
        deadline = time.monotonic() + wait
        while (holder := hold.take()) is not None:
            if time.monotonic() >= deadline:
                raise DatabaseInUseError(hold.database, holder)
            time.sleep(0.2)
        hold.start()
        yield
    finally:
        hold.release()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
