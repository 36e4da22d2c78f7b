"""Sharing practice: the index follows the ``SharingPractice`` contract beside the ledger (demands,
evaluations, inspections) into a table of its own, and the progress marker names that contract.

Databases made before it hold NULL there; the indexer then re-reads the chain from the practice contract's
deployment block once (as for the receipt anchors, :meth:`node.audit.indexer.Indexer.sync`), so demands and
inspections made earlier are indexed too.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_progress") as batch:
        batch.add_column(sa.Column("practice", sa.String(42), nullable=True))
    op.create_table(
        "audit_practice_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("block_time", sa.BigInteger, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("tx_index", sa.Integer, nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("demand_id", sa.BigInteger),
        sa.Column("inspection_id", sa.BigInteger),
        sa.Column("agreement_id", sa.BigInteger),
        sa.Column("publisher_id", sa.BigInteger),
        sa.Column("addressee_id", sa.BigInteger),
        sa.Column("delivery_id", sa.String(66)),
        sa.Column("fields", sa.Text, nullable=False),
    )
    for name, columns in (
        ("demand", ["event", "demand_id"]),
        ("publisher", ["publisher_id", "demand_id"]),
        ("addressee", ["addressee_id", "demand_id"]),
        ("inspection", ["event", "inspection_id"]),
        ("agreement", ["agreement_id", "seq"]),
    ):
        op.create_index(f"ix_audit_practice_events_{name}", "audit_practice_events", columns)


def downgrade() -> None:
    op.drop_table("audit_practice_events")
    with op.batch_alter_table("audit_progress") as batch:
        batch.drop_column("practice")
