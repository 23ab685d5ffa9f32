"""collection conversations: a thread may be about a collection; collection answers name their thread

Revision ID: 0014_collection_conversations
Revises: 0013_attention_scans
Create Date: 2026-11-27 02:10:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014_collection_conversations"
down_revision = "0013_attention_scans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.alter_column("document_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        batch_op.add_column(sa.Column("collection_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversation_collection_id"), ["collection_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_conversation_collection_id_collection", "collection", ["collection_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("collectionanswer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_collectionanswer_conversation_id"), ["conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collectionanswer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collectionanswer_conversation_id"))
        batch_op.drop_column("conversation_id")
    op.execute("DELETE FROM conversation WHERE document_id IS NULL")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_constraint("fk_conversation_collection_id_collection", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_conversation_collection_id"))
        batch_op.drop_column("collection_id")
        batch_op.alter_column("document_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
