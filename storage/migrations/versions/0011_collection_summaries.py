"""collection summaries: the job kind, and a collection answer's kind and per-document summaries

Revision ID: 0011_collection_summaries
Revises: 0010_job_last_retry
Create Date: 2026-11-26 18:05:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011_collection_summaries"
down_revision = "0010_job_last_retry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL keeps job kinds in a native enum (by member name); SQLite stores them as plain text.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE jobkind ADD VALUE IF NOT EXISTS 'SUMMARIZE_COLLECTION'")
    with op.batch_alter_table("collectionanswer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="answer")
        )
        batch_op.add_column(sa.Column("summaries", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("collectionanswer", schema=None) as batch_op:
        batch_op.drop_column("summaries")
        batch_op.drop_column("kind")
