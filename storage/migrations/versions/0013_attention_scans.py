"""attention scans: a scan's progress after each chunk, so a restarted job resumes it

Revision ID: 0013_attention_scans
Revises: 0012_index_jobs
Create Date: 2026-11-27 02:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013_attention_scans"
down_revision = "0012_index_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attentionscan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("run_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pass_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("next_chunk", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_key", "pass_key"),
    )
    with op.batch_alter_table("attentionscan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attentionscan_document_id"), ["document_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attentionscan_run_key"), ["run_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attentionscan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attentionscan_run_key"))
        batch_op.drop_index(batch_op.f("ix_attentionscan_document_id"))
    op.drop_table("attentionscan")
