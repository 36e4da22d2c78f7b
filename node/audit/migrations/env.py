"""Alembic environment: runs on the connection :func:`node.audit.store.migrate` hands over."""

from __future__ import annotations

from alembic import context

from node.audit.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table="audit_alembic_version")
with context.begin_transaction():
    context.run_migrations()
