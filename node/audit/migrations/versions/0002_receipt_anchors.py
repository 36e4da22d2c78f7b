"""Receipt anchors: the progress marker names the ``ReceiptAnchors`` contract indexed beside the ledger.

Databases made before it hold NULL there; the indexer then re-reads the chain from the anchors' deployment
block once (see :meth:`node.audit.indexer.Indexer.sync`), so batches anchored earlier are indexed too.

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
    with op.batch_alter_table("audit_progress") as batch:
        batch.add_column(sa.Column("anchors", sa.String(42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_progress") as batch:
        batch.drop_column("anchors")
