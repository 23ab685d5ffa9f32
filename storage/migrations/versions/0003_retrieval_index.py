"""retrieval index: a document's passages and dense embeddings, built once

Revision ID: 0003_retrieval_index
Revises: 0004_plans_and_speeds
Create Date: 2026-11-26 14:40:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_retrieval_index"
down_revision = "0004_plans_and_speeds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrievalindex",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scheme", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("embed_model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n_passages", sa.Integer(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("spans", sa.LargeBinary(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("document_id", "scheme", "embed_model"),
    )
    with op.batch_alter_table("retrievalindex", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrievalindex_document_id"), ["document_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("retrievalindex", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrievalindex_document_id"))
    op.drop_table("retrievalindex")
