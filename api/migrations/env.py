"""Alembic environment of the API's database: runs on the connection :func:`api.db.init_db` hands over. Its
version table is its own: the audit index (``node.audit``, ``audit_alembic_version``) may share the
database."""

from __future__ import annotations

from alembic import context

import api.receipts.journal  # noqa: F401  (its tables join the API's metadata)
from api.db import ApiBase

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=ApiBase.metadata, version_table="api_alembic_version"
)
with context.begin_transaction():
    context.run_migrations()
