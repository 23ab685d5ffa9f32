"""collection jobs: the job kind for questions over a collection

Revision ID: 0008_collection_jobs
Revises: 0007_collections
Create Date: 2026-11-26 15:30:00.000000
"""

from alembic import op

revision = "0008_collection_jobs"
down_revision = "0007_collections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL keeps job kinds in a native enum (by member name); SQLite stores them as plain text.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE jobkind ADD VALUE IF NOT EXISTS 'ASK_COLLECTION'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; a kind no job uses is harmless.
    pass
