"""The Alembic migrations create exactly the tables and indexes node/audit/models.py declares."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from node.audit.models import metadata


def test_migrations_match_models(engine: Engine) -> None:
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in insp.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
        indexes = {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(table.name)}
        assert indexes == {i.name: tuple(c.name for c in i.columns) for i in table.indexes}, table.name
