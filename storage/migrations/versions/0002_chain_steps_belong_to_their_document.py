"""chain steps belong to their document

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:18:41.904302
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Chain steps only let an interrupted run resume; older rows cannot name their document, so they go.
    op.execute("DELETE FROM chainstep")
    with op.batch_alter_table("chainstep", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False))
        batch_op.create_index(batch_op.f("ix_chainstep_document_id"), ["document_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_chainstep_document_id", "document", ["document_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("chainstep", schema=None) as batch_op:
        batch_op.drop_constraint("fk_chainstep_document_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_chainstep_document_id"))
        batch_op.drop_column("document_id")
