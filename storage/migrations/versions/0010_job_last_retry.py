"""job last retry: the latest retried provider failure of a job, as a stable code and a fixed sentence

Revision ID: 0010_job_last_retry
Revises: 0009_document_pages
Create Date: 2026-11-26 17:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_job_last_retry"
down_revision = "0009_document_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("llm_last_retry_code", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("llm_last_retry_error", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("llm_last_retry_error")
        batch_op.drop_column("llm_last_retry_code")
