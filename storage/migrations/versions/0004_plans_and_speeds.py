"""plans and speeds: the planner's choice stored with each answer, why reading stopped, measured model speeds

Revision ID: 0004_plans_and_speeds
Revises: 0005_conversations
Create Date: 2026-11-26 14:40:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_plans_and_speeds"
down_revision = "0005_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("stopped_reason", sa.Text(), nullable=True))
    op.create_table(
        "modelspeed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Float(), nullable=False),
        sa.Column("completion_tokens", sa.Float(), nullable=False),
        sa.Column("pp", sa.Float(), nullable=False),
        sa.Column("cc", sa.Float(), nullable=False),
        sa.Column("pc", sa.Float(), nullable=False),
        sa.Column("ps", sa.Float(), nullable=False),
        sa.Column("cs", sa.Float(), nullable=False),
        sa.Column("requested", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "kind"),
    )


def downgrade() -> None:
    op.drop_table("modelspeed")
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_column("stopped_reason")
        batch_op.drop_column("plan")
