"""Alembic environment: runs against the connection handed in by storage.db.migrate, or the settings URL."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import longread.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from longread.storage.db import get_engine

        with get_engine().begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
