"""index jobs: the job kind that builds a document's retrieval index as it joins a collection

Revision ID: 0012_index_jobs
Revises: 0011_collection_summaries
Create Date: 2026-11-26 18:05:00.000000
"""

from alembic import op

revision = "0012_index_jobs"
down_revision = "0011_collection_summaries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL keeps job kinds in a native enum (by member name); SQLite stores them as plain text.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE jobkind ADD VALUE IF NOT EXISTS 'BUILD_INDEX'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; a kind no job uses is harmless.
    pass
