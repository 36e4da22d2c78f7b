"""The API database's schema is what its migrations make (api/migrations, Alembic), on SQLite and on
PostgreSQL (``DXL_TEST_POSTGRES_URL``): a model changed without a migration fails here, and a database made
before the migrations existed is brought to the same schema with its rows kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import api.receipts.journal  # noqa: F401  (its tables join the API's metadata)
from api.db import ApiBase, init_db
from tests.postgres import BACKENDS, api_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with api_engine(request.param, tmp_path, "api_schema_test") as found:
        yield found


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as c:
        context = MigrationContext.configure(c, opts={"version_table": "api_alembic_version"})
        return list(compare_metadata(context, ApiBase.metadata))


def _version(engine: Engine) -> str:
    with engine.connect() as c:
        return str(c.execute(text("SELECT version_num FROM api_alembic_version")).scalar_one())


def test_a_new_database_gets_the_models_schema(engine: Engine) -> None:
    init_db(engine)
    assert _differences(engine) == []
    assert _version(engine) == "0004"
    init_db(engine)  # at head: nothing to do, nothing changed
    assert _differences(engine) == []


#: Columns the earliest releases' tables lacked (each added by hand later, then by the first migration).
_LATER_COLUMNS = (
    ("api_idempotency", "owner"),
    ("api_idempotency", "tx_hash"),
    ("api_tx_journal", "tx_index"),
    ("api_receipt_batches", "block_hash"),
)


def test_a_database_made_before_the_migrations_is_brought_to_the_same_schema(engine: Engine) -> None:
    # Made as the releases before the migrations made it: the models' tables as they stood (create_all), some
    # columns and the receipt journal not there yet, no version table.
    ApiBase.metadata.create_all(engine)
    with engine.begin() as c:
        for table, column in _LATER_COLUMNS:
            c.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        c.execute(text("DROP TABLE api_receipts"))
        # Catalog search came later (0002): its tables and the documents' search text.
        c.execute(text("DROP TABLE api_catalog_entries"))
        c.execute(text("DROP TABLE api_catalog_sync"))
        c.execute(text("ALTER TABLE api_catalog_documents DROP COLUMN search_text"))
        c.execute(text("DROP TABLE api_journal_chain"))  # the journal's chain came later still (0003)
        c.execute(
            text(
                "INSERT INTO api_catalog_documents (metadata_hash, document, created_at) "
                "VALUES ('0x01', :document, :at), ('0x02', 'not json', :at)"
            ),
            {"document": '{"dct:title":"Household REGISTER","dcat:keyword":["户籍"]}',
             "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        )  # fmt: skip
        c.execute(
            text(
                "INSERT INTO api_tx_journal (id, tx_hash, sender, nonce, raw, status, created_at) "
                "VALUES (1, '0xab', '0xcd', 7, :raw, 'mined', :at)"
            ),
            {"raw": b"\x01", "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        )
    assert "tx_index" not in {c["name"] for c in inspect(engine).get_columns("api_tx_journal")}
    init_db(engine)
    assert _differences(engine) == []
    with engine.connect() as c:
        kept = c.execute(text("SELECT nonce, status, tx_index FROM api_tx_journal")).all()
    assert kept == [(7, "mined", None)]
    # The documents stored before are searchable: their search text written from the text stored.
    with engine.connect() as c:
        searched: dict[str, str] = dict(
            c.execute(text("SELECT metadata_hash, search_text FROM api_catalog_documents")).all()
        )
    assert searched == {"0x01": "household register\x1f\x1f户籍", "0x02": "\x1f"}
    assert _version(engine) == "0004"


def test_the_search_text_of_documents_stored_before_is_written_in_the_composed_form(engine: Engine) -> None:
    """Searches look for a text in Unicode's compatibility composed form (0004): a document stored before,
    its search text written as it was, is found by them once the database is migrated."""
    init_db(engine)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO api_catalog_documents (metadata_hash, document, search_text, created_at) "
                "VALUES ('0x03', :document, :searched, :at)"
            ),
            {"document": '{"dct:title":"Cafe\u0301 \uff30\uff33\uff22"}',
             "searched": "cafe\u0301 \uff50\uff53\uff42\x1f", "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        )  # fmt: skip
        c.execute(text("UPDATE api_alembic_version SET version_num = '0003'"))
    init_db(engine)
    with engine.connect() as c:
        searched = c.execute(text("SELECT search_text FROM api_catalog_documents")).scalar_one()
    assert searched == "caf\u00e9 psb\x1f"
    assert _version(engine) == "0004"
