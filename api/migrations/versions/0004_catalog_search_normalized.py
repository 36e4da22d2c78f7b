"""The catalog's search text in Unicode's compatibility composed form (NFKC), as searches now look for it
(:func:`api.catalog.search_text`): the search text of every stored document is written again from the stored
text, or a document written in another form (an accent as a combining character, full-width letters) would
stay unfound by a search in the usual one.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from api.catalog import parse_document, search_text

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


def downgrade() -> None:
    """Nothing to undo: a search text in the composed form is found by the searches before it too, for the
    text in that form."""
