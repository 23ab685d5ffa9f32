"""Engine and sessions. SQLite (WAL, busy timeout) by default; PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlmodel import Session, create_engine

from longread.config import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; the busy timeout rides out short write locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched: `Session.execute` returns a cursor result for those, typed as a plain one."""
    return result.rowcount if isinstance(result, CursorResult) else 0


def insert_new(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """INSERT that leaves an existing row with the same unique key alone (ON CONFLICT DO NOTHING, in
    PostgreSQL's and SQLite's dialects); True when the row was written. Commits nothing."""
    from sqlalchemy.dialects import postgresql, sqlite

    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    # A row comes back only when one was written (psycopg reports no rowcount for this statement).
    key = next(iter(table.primary_key.columns))
    return session.execute(statement.returning(key)).first() is not None


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


def migrate(engine: Engine | None = None) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    engine = engine or get_engine()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_migrated: set[str] = set()


def init_db() -> Engine:
    """Engine for the configured database, migrated once per process."""
    engine = get_engine()
    key = str(engine.url)
    if key not in _migrated:
        migrate(engine)
        _migrated.add(key)
    return engine


@contextmanager
def session_scope() -> Iterator[Session]:
    with Session(init_db(), expire_on_commit=False) as session:
        yield session
