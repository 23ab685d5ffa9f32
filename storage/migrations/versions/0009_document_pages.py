"""document pages: where each page of a PDF starts in the stored text, so citations can name their page

Revision ID: 0009_document_pages
Revises: 0008_collection_jobs
Create Date: 2026-11-26 17:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_document_pages"
down_revision = "0008_collection_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: documents stored before this revision, and every format without pages, have none.
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("page_starts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("page_starts")
