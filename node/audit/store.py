"""Opening the audit database: SQLite by default, PostgreSQL (psycopg 3) when a URL says so; the Alembic
migrations are applied on every open, so a service start or a CLI run always sees the current schema."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from node.audit.errors import AuditError
from node.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the indexer writes; NORMAL is durable at each checkpoint, which is enough
    # because the index can always be rebuilt from the chain.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Random-key indexes (delivery id, commitment) stay fast to insert only while their pages are cached.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def database_url(url: str, what: str = "audit database") -> URL:
    """``url`` as a database dxl keeps its tables in: ``sqlite:///path`` or ``postgresql+psycopg://...`` (a
    bare ``postgresql://`` URL is taken to mean psycopg 3). The audit index and the API (``DXL_DATABASE_URL``)
    both read their URL here; ``what`` names the database in the error.

    Raises:
        ConfigurationError: the URL is malformed, names another database, or a driver not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"{what} URL {url!r} is malformed: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"{what} must be SQLite or PostgreSQL, got {parsed.get_backend_name()!r}")
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(f"{what} URL {url!r} names a driver dxl does not have: {exc}") from None
    return parsed


def create_audit_engine(url: str) -> Engine:
    """An engine for ``url`` (:func:`database_url`).

    Raises:
        ConfigurationError: the URL is malformed or names an unsupported database.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


#: The first key of the advisory lock held while a database is migrated; the second is the schema's hash.
_MIGRATION_LOCK = 0x6478_6D67  # "dxmg"


#: Alembic keeps the migration it runs in module globals (``alembic.context``, ``alembic.op``): two threads
#: of one process migrating at once (the API's tables and the audit index's, as a second service started in
#: the process of the first, which tests do) ran one's environment against the other's context, failing with
#: KeyError 'config' or a version table created twice. One migration at a time per process; processes are
#: kept apart by the database (:func:`_migrating_alone`).
_ONE_AT_A_TIME = threading.Lock()


def _migrating_alone(connection: Connection) -> None:
    """Makes ``connection``'s transaction the only one migrating its database (schema) until it ends, across
    processes: two processes opening one new PostgreSQL database at once (a service starting while `dxl token
    issue` or `dxl audit index` runs) both created its tables, and the second failed on a duplicate
    (pg_type_typname_nsp_index). Waiting, the second finds the schema at head and does nothing. SQLite
    lets one writer in already."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:lock, hashtext(current_schema()))"), {"lock": _MIGRATION_LOCK}
        )


def upgrade_to_head(engine: Engine, migrations: Path) -> None:
    """Applies every pending Alembic migration of the ``migrations`` folder to ``engine``'s database, alone:
    the only migration running in this process and, on PostgreSQL, in the database's schema.

    Raises:
        OperationalError: the database cannot be reached or changed.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations))
    with _ONE_AT_A_TIME, engine.begin() as connection:
        _migrating_alone(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def migrate(engine: Engine) -> None:
    """Apply every pending Alembic migration of the audit index.

    Raises:
        AuditError: the database cannot be reached or migrated.
    """
    try:
        upgrade_to_head(engine, MIGRATIONS_DIR)
    except OperationalError as exc:
        raise AuditError(f"audit database {engine.url!r} unusable: {exc.orig}") from exc


def open_store(url: str) -> Engine:
    """:func:`create_audit_engine` + :func:`migrate`."""
    engine = create_audit_engine(url)
    migrate(engine)
    return engine
