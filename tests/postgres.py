"""PostgreSQL for the tests that run on it too: ``DXL_TEST_POSTGRES_URL`` (scripts/ci-postgres.sh starts one;
CI sets it), each test in a schema of its own so parallel workers never share tables. A store test runs on
both of the API's databases: ``@pytest.fixture(params=BACKENDS)`` and :func:`api_engine`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

URL = os.environ.get("DXL_TEST_POSTGRES_URL")


@contextmanager
def schema_url(prefix: str) -> Iterator[str]:
    """The URL of a new, empty schema (``search_path`` set to it), dropped with all it holds afterwards;
    skips the test when no server is configured."""
    if not URL:
        pytest.skip("DXL_TEST_POSTGRES_URL is not set (scripts/ci-postgres.sh starts one)")
    schema = f"{prefix}_{secrets.token_hex(4)}"
    # No pooled connection held between the schema's creation and its drop: a test may end every connection
    # to the database but its own (a server restart, an administrator's command).
    admin = create_engine(URL, poolclass=NullPool)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in URL else "?"
    try:
        yield f"{URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


#: The databases a store test runs on: SQLite always, PostgreSQL where ``DXL_TEST_POSTGRES_URL`` names one.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def database_url(backend: str, sqlite_file: Path, prefix: str) -> AbstractContextManager[str]:
    """The URL of an empty database on ``backend`` (one of :data:`BACKENDS`): the SQLite file
    ``sqlite_file``, or a PostgreSQL schema of its own named from ``prefix`` (:func:`schema_url`)."""
    return nullcontext(f"sqlite:///{sqlite_file}") if backend == "sqlite" else schema_url(prefix)


@contextmanager
def api_engine(backend: str, tmp_path: Path, prefix: str) -> Iterator[Engine]:
    """An engine of the API's (:func:`api.db.make_engine`) on an empty database: a SQLite file in
    ``tmp_path``, or a PostgreSQL schema of its own named from ``prefix``; disposed of afterwards."""
    from api.db import make_engine

    with database_url(backend, tmp_path / "api.sqlite3", prefix) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
