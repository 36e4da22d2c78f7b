"""The API's tables: tokens, idempotency keys, the transaction journal, half-signed terms, catalog documents,
inspection presentations, the receipt journal and its batches.

A database made by dxl before its migrations were managed by Alembic (tables created as the models stood,
columns added later by hand) holds some of these tables, perhaps without columns added since: those are
added, nothing else of them is touched; the missing tables are created. A new database gets them all.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Columns that tables of the earliest releases lack: (table, column).
_LATER_COLUMNS = (
    ("api_idempotency", sa.Column("owner", sa.String(length=32), nullable=True)),
    ("api_idempotency", sa.Column("tx_hash", sa.String(length=66), nullable=True)),
    ("api_tx_journal", sa.Column("tx_index", sa.Integer(), nullable=True)),
    ("api_receipt_batches", sa.Column("block_hash", sa.String(length=66), nullable=True)),
)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()
    for table, column in _LATER_COLUMNS:
        if table in existing and column.name not in {
            c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)
        }:
            with op.batch_alter_table(table) as batch:
                batch.add_column(column)


def downgrade() -> None:
    for name, _ in reversed(_TABLES):
        op.drop_table(name)


def _catalog_documents() -> None:
    op.create_table(
        "api_catalog_documents",
        sa.Column("metadata_hash", sa.String(length=66), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("metadata_hash"),
    )


def _idempotency() -> None:
    op.create_table(
        "api_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=32), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("principal", "key", name="uq_api_idempotency_principal_key"),
    )


def _inspection_presentations() -> None:
    op.create_table(
        "api_inspection_presentations",
        sa.Column("inspection_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("presented_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("inspection_id", "delivery_id"),
    )


def _pending_signatures() -> None:
    op.create_table(
        "api_pending_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "role", name="uq_api_pending_signature_request_role"),
    )
    op.create_index("ix_api_pending_signatures_request_id", "api_pending_signatures", ["request_id"])


def _tokens() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_principal", "api_tokens", ["principal"])


def _tx_journal() -> None:
    op.create_table(
        "api_tx_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("finish", sa.JSON(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("tx_index", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash"),
    )
    op.create_index("ix_api_tx_journal_block_number", "api_tx_journal", ["block_number"])
    op.create_index("ix_api_tx_journal_sender_nonce", "api_tx_journal", ["sender", "nonce"])
    op.create_index("ix_api_tx_journal_status", "api_tx_journal", ["status"])


def _receipt_batches() -> None:
    op.create_table(
        "api_receipt_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Integer(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=False),
        sa.Column("final_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_receipt_batches_grant", "api_receipt_batches", ["grant_id", "first_sequence"])


def _receipts() -> None:
    op.create_table(
        "api_receipts",
        # SQLite's INTEGER PRIMARY KEY is its row id: 64-bit there, and no second index.
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("delivery_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("provider", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=False),
        sa.Column("commitment", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash_algorithm", sa.SmallInteger(), nullable=False),
        sa.Column("byte_size", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.Float(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("delivery_id", "provider", name="uq_api_receipts_id_provider"),
    )
    op.create_index("ix_api_receipts_batch", "api_receipts", ["batch_id", "seq"])


_TABLES = (
    ("api_catalog_documents", _catalog_documents),
    ("api_idempotency", _idempotency),
    ("api_inspection_presentations", _inspection_presentations),
    ("api_pending_signatures", _pending_signatures),
    ("api_tokens", _tokens),
    ("api_tx_journal", _tx_journal),
    ("api_receipt_batches", _receipt_batches),
    ("api_receipts", _receipts),
)
