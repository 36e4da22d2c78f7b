"""The catalog's document store and search table on each database the service runs on (SQLite, and
PostgreSQL with ``DXL_TEST_POSTGRES_URL``): whatever text a document or a search holds, it is stored and
searched, never a database error."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.catalog import CatalogIndex, CatalogQuery, DocumentStore, checked, search_text
from api.db import CatalogDocumentRow, CatalogEntryRow, CatalogSyncRow, init_db, make_engine, session_factory
from node.types import ShareType
from tests.api.api_helpers import catalog_document
from tests.postgres import BACKENDS, api_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with api_engine(request.param, tmp_path, "catalog_store_test") as found:
        init_db(found)
        yield found


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


def _given(sessions: sessionmaker[Session]) -> Callable[[], sessionmaker[Session]]:
    return lambda: sessions


def _indexed_catalog(url: str, count: int) -> Engine:
    """An audit index holding ``count`` registrations, each followed by an update of the entry registered
    just before it (what :class:`CatalogIndex` follows), written as the indexer writes its events."""
    from node.audit import models as audit_models
    from node.audit.store import open_store

    index = open_store(url)

    def event(seq: int, name: str, ident: int, share_type: int) -> dict[str, object]:
        fields = {"owner": 1 + ident % 3, "shareType": share_type, "sensitivity": 1,
                  "metadataHash": "0x" + f"{ident:064x}", "schemaHash": "0x" + "00" * 32}  # fmt: skip
        return {"seq": seq, "block_number": seq, "block_hash": "0x" + f"{seq:064x}", "block_time": seq,
                "tx_hash": "0x" + f"{seq:064x}", "tx_index": 0, "log_index": 0, "address": "0x" + "11" * 20,
                "event": name, "resource_id": ident, "fields": json.dumps(fields)}  # fmt: skip

    rows = []
    for ident in range(1, count + 1):
        rows.append(event(2 * ident, "ResourceRegistered", ident, 0))
        if ident > 1:
            rows.append(event(2 * ident + 1, "ResourceUpdated", ident - 1, 2))
    with index.begin() as conn:
        conn.execute(audit_models.events.insert(), rows)
    return index


def test_two_services_following_the_index_at_once_on_one_database_both_succeed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services sharing one database each follow the audit index into the search table, at the same
    moment: each writes the same rows and the same mark, and neither fails on the other's (a read followed
    by an insert lost that race with a duplicate key). The table then holds every entry as the index left
    it."""
    url = engine.url.render_as_string(hide_password=False)
    index = _indexed_catalog(url.replace("api.sqlite3", "audit.sqlite3"), 300)  # PostgreSQL: the same schema
    monkeypatch.setattr(CatalogIndex, "SYNC_BATCH", 40)  # several batches each: more moments to collide
    engines = [make_engine(url) for _ in range(2)]
    factories = [session_factory(e) for e in engines]
    followers = [CatalogIndex(_given(s)) for s in factories]
    try:
        for fresh in (True, False, True, False):
            with engine.begin() as conn:  # both build the table from the start: a new database, or an index
                if fresh:  # rewound past the last change applied (its block is another now)
                    conn.execute(delete(CatalogEntryRow))
                    conn.execute(delete(CatalogSyncRow))
                else:
                    conn.execute(update(CatalogSyncRow).values(block_hash="0x" + "ee" * 32))
            start = threading.Barrier(2)

            def follow(follower: CatalogIndex, start: threading.Barrier = start) -> None:
                start.wait()
                follower.sync(index)

            with ThreadPoolExecutor(2) as pool:
                for done in [pool.submit(follow, f) for f in followers]:
                    done.result()
            page = followers[0].page(index, CatalogQuery(), cursor=None, limit=500)
            assert [r.id for r in page.entries] == list(range(300, 0, -1))
            assert [r.share_type for r in page.entries] == [ShareType.UNCONDITIONAL] + [
                ShareType.NOT_SHARED
            ] * 299
            shared = followers[1].page(index, CatalogQuery(share_type=ShareType.NOT_SHARED), cursor=None,
                                       limit=500)  # fmt: skip
            assert len(shared.entries) == 299
    finally:
        for e in engines:
            e.dispose()
        index.dispose()


def test_two_services_storing_the_same_documents_at_once_both_succeed(engine: Engine) -> None:
    """An import run against two services sharing a database stores each document twice at the same moment:
    both succeed, and each row holds the document and its search text."""
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]
    factories = [session_factory(e) for e in engines]
    stores = [DocumentStore(_given(s)) for s in factories]
    documents = [catalog_document(f"同时存储 {i}") for i in range(60)]
    start = threading.Barrier(2)

    def store_all(store: DocumentStore) -> list[str]:
        start.wait()
        return [store.put(document) for document in documents]

    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = [done.result() for done in [pool.submit(store_all, s) for s in stores]]
        assert first == second
        held = DocumentStore(lambda: session_factory(engine)).stored(first)
        assert [(held[d].document, held[d].verified) for d in first] == [(doc, True) for doc in documents]
    finally:
        for e in engines:
            e.dispose()


def test_two_imports_storing_the_same_documents_in_other_orders_at_once_both_succeed(engine: Engine) -> None:
    """Two imports (one service's two requests, or two services') store the same documents at once, each in
    one transaction and each in the order its body lists them: both succeed, new documents or stored ones.
    On PostgreSQL each write waited for a row the other had written first (an insert, or the update that
    heals a stored row), the other waiting the same way, and the database broke the deadlock by failing one
    of them."""
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]
    stores = [DocumentStore(_given(session_factory(e))) for e in engines]
    documents = [catalog_document(f"倒序导入 {i}") for i in range(200)]
    start = threading.Barrier(2)  # released again for each round once both arrive

    def store_all(store: DocumentStore, listed: list[dict[str, object]]) -> list[str]:
        start.wait()
        return store.put_many(listed)

    try:
        for _new_then_stored in range(6):
            with ThreadPoolExecutor(2) as pool:
                forward = pool.submit(store_all, stores[0], documents)
                backward = pool.submit(store_all, stores[1], documents[::-1])
                first, second = forward.result(), backward.result()
            assert first == second[::-1]
            held = DocumentStore(lambda: session_factory(engine)).stored(first)
            assert [(held[d].document, held[d].verified) for d in first] == [(doc, True) for doc in documents]
    finally:
        for e in engines:
            e.dispose()
