"""job llm retries: how many failed provider calls the job's model calls retried (and got past)

Revision ID: 0006_job_llm_retries
Revises: 0003_retrieval_index
Create Date: 2026-11-26 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_job_llm_retries"
down_revision = "0003_retrieval_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("llm_retries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("llm_retries")
