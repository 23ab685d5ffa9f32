"""collections: named sets of documents, their membership, and answers over a collection

Revision ID: 0007_collections
Revises: 0006_job_llm_retries
Create Date: 2026-11-26 15:25:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_collections"
down_revision = "0006_job_llm_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("collection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "collectiondocument",
        sa.Column("collection_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collection_id", "document_id"),
    )
    with op.batch_alter_table("collectiondocument", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collectiondocument_document_id"), ["document_id"], unique=False)
    op.create_table(
        "collectionanswer",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("collection_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strategy_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("dropped_citations", sa.Integer(), nullable=False),
        sa.Column("document_ids", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("cached_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("stopped_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("collectionanswer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collectionanswer_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_collectionanswer_collection_id"), ["collection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_collectionanswer_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_table("collectionanswer")
    op.drop_table("collectiondocument")
    op.drop_table("collection")
