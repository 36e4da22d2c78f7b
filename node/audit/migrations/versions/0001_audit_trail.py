"""Audit trail: indexer progress, blocks, decoded events and refused deliveries.

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

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_progress",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("start_block", sa.BigInteger, nullable=False),
        sa.Column("last_block", sa.BigInteger, nullable=False),
        sa.Column("last_block_hash", sa.String(66), nullable=True),
        sa.Column("scan_refusals", sa.Boolean, nullable=False),
    )
    op.create_table(
        "audit_blocks",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_audit_blocks_timestamp", "audit_blocks", ["timestamp"])
    op.create_table(
        "audit_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("block_time", sa.BigInteger, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("tx_index", sa.Integer, nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("request_id", sa.BigInteger),
        sa.Column("agreement_id", sa.BigInteger),
        sa.Column("grant_id", sa.BigInteger),
        sa.Column("resource_id", sa.BigInteger),
        sa.Column("provider_id", sa.BigInteger),
        sa.Column("consumer_id", sa.BigInteger),
        sa.Column("subject_id", sa.BigInteger),
        sa.Column("delivery_id", sa.String(66)),
        sa.Column("commitment", sa.String(66)),
        sa.Column("fields", sa.Text, nullable=False),
    )
    for name, columns in (
        ("event", ["event", "seq"]),
        ("provider", ["provider_id", "seq"]),
        ("consumer", ["consumer_id", "seq"]),
        ("subject", ["subject_id", "seq"]),
        ("pair", ["provider_id", "consumer_id", "seq"]),
        ("resource", ["resource_id", "seq"]),
        ("agreement", ["agreement_id", "seq"]),
        ("request", ["request_id", "seq"]),
        ("grant", ["grant_id", "seq"]),
        ("delivery", ["delivery_id"]),
        ("commitment", ["commitment"]),
        ("time", ["block_time"]),
    ):
        op.create_index(f"ix_audit_events_{name}", "audit_events", columns)
    op.create_table(
        "audit_refusals",
        sa.Column("tx_hash", sa.String(66), primary_key=True),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("block_time", sa.BigInteger, nullable=False),
        sa.Column("tx_index", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("grant_id", sa.BigInteger, nullable=False),
        sa.Column("delivery_id", sa.String(66), nullable=False),
        sa.Column("commitment", sa.String(66), nullable=False),
        sa.Column("provider_id", sa.BigInteger),
        sa.Column("consumer_id", sa.BigInteger),
        sa.Column("reason", sa.String(32), nullable=False),
    )
    op.create_index("ix_audit_refusals_time", "audit_refusals", ["block_time"])
    op.create_index("ix_audit_refusals_provider", "audit_refusals", ["provider_id", "block_time"])


def downgrade() -> None:
    op.drop_table("audit_refusals")
    op.drop_table("audit_events")
    op.drop_table("audit_blocks")
    op.drop_table("audit_progress")
