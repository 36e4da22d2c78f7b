"""The audit migrations create the tables and indexes node/audit/models.py declares; migrations run alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, inspect

from api.db import ApiBase, init_db, make_engine
from node.audit.models import metadata
from node.audit.store import open_store


def test_migrations_match_models(engine: Engine) -> None:
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in insp.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
        indexes = {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(table.name)}
        assert indexes == {i.name: tuple(c.name for c in i.columns) for i in table.indexes}, table.name


def _migrate_both_at_once(url: str) -> list[BaseException]:
    """The API's migrations and the audit index's on ``url``, each on its own thread, started together."""
    together = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(migrate: Callable[[], None]) -> None:
        together.wait()
        try:
            migrate()
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda: init_db(make_engine(url)),)),
        threading.Thread(target=run, args=(lambda: open_store(url).dispose(),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_the_api_and_the_audit_index_migrated_at_once_in_one_process_both_reach_head(tmp_path: Path) -> None:
    """Alembic keeps the migration it runs in module globals: the API's tables and the audit index's migrated
    by two threads at once (a second service started in the process of the first, as tests do) failed on
    every try, with KeyError 'config' or a version table created twice. Each pair starts together on a new
    database."""
    for attempt in range(5):
        url = f"sqlite:///{tmp_path}/shared-{attempt}.db"
        assert _migrate_both_at_once(url) == [], f"attempt {attempt}"
        tables = set(inspect(make_engine(url)).get_table_names())
        assert {t.name for t in metadata.sorted_tables} | set(ApiBase.metadata.tables) <= tables
        assert {"api_alembic_version", "audit_alembic_version"} <= tables
