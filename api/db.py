"""The API's own tables: token hashes, idempotency records and pending agreement signatures.

The metadata is private to the API (:data:`ApiBase`); other components keep their own tables in their own
modules and create them on the same database without editing this one. SQLite under ``DXL_HOME`` by default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


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
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


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


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL and a busy timeout (writers wait, not fail)."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(database_url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Creates the API's tables if they are missing (idempotent)."""
    ApiBase.metadata.create_all(engine)


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
