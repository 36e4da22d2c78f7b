"""Catalog search in SQL: each stored document's search text, and the catalog entries as the audit index
holds them (``api_catalog_entries``, followed from the index: ``api_catalog_sync``).

The search text of documents stored before is written here from the stored text; the entries are filled by
the first list that reads the catalog (:class:`api.catalog.CatalogIndex`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from api.catalog import parse_document, search_text

    with op.batch_alter_table("api_catalog_documents") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    documents = sa.table(
        "api_catalog_documents",
        sa.column("metadata_hash", sa.String()),
        sa.column("document", sa.Text()),
        sa.column("search_text", sa.Text()),
    )
    bind = op.get_bind()
    for digest, text in bind.execute(sa.select(documents.c.metadata_hash, documents.c.document)).all():
        bind.execute(
            documents.update()
            .where(documents.c.metadata_hash == digest)
            .values(search_text=search_text(parse_document(text)))
        )
    op.create_table(
        "api_catalog_entries",
        sa.Column("resource_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("registered_seq", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.BigInteger(), nullable=False),
        sa.Column("share_type", sa.Integer(), nullable=False),
        sa.Column("metadata_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("resource_id"),
        sa.UniqueConstraint("registered_seq"),
    )
    op.create_index("ix_api_catalog_entries_owner", "api_catalog_entries", ["owner", "registered_seq"])
    op.create_index(
        "ix_api_catalog_entries_share_type", "api_catalog_entries", ["share_type", "registered_seq"]
    )
    op.create_index(op.f("ix_api_catalog_entries_metadata_hash"), "api_catalog_entries", ["metadata_hash"])
    op.create_table(
        "api_catalog_sync",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("api_catalog_sync")
    op.drop_table("api_catalog_entries")
    with op.batch_alter_table("api_catalog_documents") as batch:
        batch.drop_column("search_text")
