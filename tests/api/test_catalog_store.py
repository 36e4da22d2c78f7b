"""The catalog's document store and search table on each database the service runs on (SQLite, and
PostgreSQL with ``DXL_TEST_POSTGRES_URL``): whatever text a document or a search holds, it is stored and
searched, never a database error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import catalog_document
from sqlalchemy import Engine, select

from api.catalog import CatalogIndex, CatalogQuery, DocumentStore, checked, search_text
from api.db import CatalogDocumentRow, init_db, make_engine, session_factory
from tests.postgres import schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        found = make_engine(f"sqlite:///{tmp_path / 'api.sqlite3'}")
        init_db(found)
        yield found
        found.dispose()
        return
    with schema_url("catalog_store_test") as url:
        found = make_engine(url)
        try:
            init_db(found)
            yield found
        finally:
            found.dispose()


@pytest.mark.parametrize("title", ["含\x00空字符", "part\x1fseparator", "混合 Case ẞ"])
def test_any_text_of_a_document_is_stored_checked_and_searched(engine: Engine, title: str) -> None:
    """PostgreSQL's text holds no NUL: a document titled with one failed to be stored (the search text held
    it as it was), and a search for one answered 500."""
    sessions = session_factory(engine)
    store = DocumentStore(lambda: sessions)
    document = catalog_document(title)
    digest = store.put(document)
    with sessions() as session:
        row = session.scalars(
            select(CatalogDocumentRow).where(CatalogDocumentRow.metadata_hash == digest)
        ).one()
    assert checked(row.document, digest) == (document, True)
    assert row.search_text == search_text(document) and "\x00" not in row.search_text
    index = CatalogIndex(lambda: sessions)
    for needle in (title, "\x00", "%", "_"):
        assert index.page(engine, CatalogQuery(text=needle), cursor=None, limit=5).entries == []
