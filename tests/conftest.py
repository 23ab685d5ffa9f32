"""Fixtures: an isolated data folder and database per test, on SQLite and on the PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
if os.environ.get("PYTEST_XDIST_WORKER") and "LONGREAD_DATA_DIR" not in os.environ:
    # Parallel workers (`make test-fast`) each get their own data folder, so what a test module does at
    # collection (an app built at import migrates its database) never races another worker's.
    import tempfile

    os.environ["LONGREAD_DATA_DIR"] = tempfile.mkdtemp(prefix=f"longread-{os.environ['PYTEST_XDIST_WORKER']}-")

PG_ADMIN_URL = os.environ.get("LONGREAD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_database() -> Iterator[str]:
    import psycopg

    name = f"longread_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        from longread.storage.db import engine_for

        engine_for(f"{base}/{name}").dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data folder (and SQLite database) with settings re-read from the environment."""
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LONGREAD_DATABASE_URL", raising=False)
    monkeypatch.delenv("LONGREAD_REDIS_URL", raising=False)
    monkeypatch.setenv("LONGREAD_LLM", "scripted/longread.testing.doubles.reader")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_env(request: pytest.FixtureRequest, env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The same test against the embedded SQLite and against PostgreSQL (a fresh schema each time)."""
    from longread.config import get_settings

    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        _reset_pg(url)
        monkeypatch.setenv("LONGREAD_DATABASE_URL", url)
        get_settings.cache_clear()
    yield request.param


def _reset_pg(url: str) -> None:
    from sqlmodel import SQLModel

    import longread.storage.db as db
    import longread.storage.models  # noqa: F401

    engine = db.engine_for(url)
    db.migrate(engine)
    db._migrated.add(str(engine.url))
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def session(db_env: str):  # type: ignore[no-untyped-def]
    from longread.storage.db import session_scope

    with session_scope() as s:
        yield s


SERVICE_TIERS = {"service", "browser", "faults"}


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from default settings and an empty call log.

    The service tiers share one environment for their API and worker processes; every other test
    must not inherit it, whatever order the tiers run in.
    """
    from longread.config import get_settings
    from longread.testing import doubles

    if not SERVICE_TIERS & set(request.node.path.parts):
        for key in [k for k in os.environ if k.startswith("LONGREAD_")]:
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    doubles.calls.clear()
    yield
    get_settings.cache_clear()
