"""`GET /v1/jobs/{id}` reuses a job's row only while every change of it is heard, and never past a change."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col

from longread.api import events as hub_events
from longread.api import job_cache
from longread.api.job_cache import JobRowCache
from longread.config import get_settings
from longread.storage import events
from longread.storage.models import Job, JobKind

REDIS = "redis://127.0.0.1:6379/15"


def test_a_row_read_before_its_change_is_never_kept() -> None:
    cache = JobRowCache()
    before = time.monotonic()
    cache.drop("job-1")  # the notice of a change lands while a read that began earlier is in flight
    cache.put("job-1", "tenant", b"old", before)
    assert cache.get("job-1") is None and cache.changed_since("job-1", before)

    after = time.monotonic()
    cache.put("job-1", "tenant", b"new", after)
    assert cache.get("job-1") == job_cache.Entry("tenant", b"new", after)
    cache.put("job-2", "tenant", b"other", after)
    cache.drop("job-1")
    assert cache.get("job-1") is None
    assert cache.get("job-2") is not None  # a notice drops only its own job

    cache.clear()  # the subscriber lost its connection: every row, and every read in flight, goes
    assert cache.get("job-2") is None
    cache.put("job-2", "tenant", b"late", after)
    assert cache.get("job-2") is None


def test_a_row_is_not_served_past_its_age_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_cache, "MAX_AGE_S", 0.2)
    cache = JobRowCache()
    cache.put("job-1", "tenant", b"row", time.monotonic())
    assert cache.get("job-1") is not None
    time.sleep(0.3)
    assert cache.get("job-1") is None


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def api(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The app on SQLite with Redis for notices; rows never age out here, so only notices drop them."""
    from longread.api.main import create_app
    from longread.api.routes import jobs as job_routes
    from longread.api.security import create_key
    from longread.storage import jobs
    from longread.storage.db import session_scope

    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("LONGREAD_REDIS_URL", REDIS)
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", prefix)
    get_settings.cache_clear()
    monkeypatch.setattr(job_cache, "MAX_AGE_S", 3600.0)
    reads: list[str] = []
    real_read = job_routes._job_body
    monkeypatch.setattr(job_routes, "_job_body", lambda job_id: reads.append(job_id) or real_read(job_id))
    with session_scope() as session:
        key, row = create_key(session, "owner")
        other, _ = create_key(session, "other")
        job = jobs.create_job(session, tenant_id=row.tenant_id, kind=JobKind.ASK, document_id=None)
    hub = hub_events.hub(job_routes.job_row)
    _wait(hub.hears_every_notice, 20, "the subscriber did not subscribe to this test's channel")
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
        yield {"client": client, "other": other, "job_id": job.id, "reads": reads, "prefix": prefix}


def test_repeated_reads_share_one_row_until_a_notice_from_another_process_drops_it(api: dict[str, Any]) -> None:
    from longread.storage.db import session_scope

    client: TestClient = api["client"]
    path = f"/v1/jobs/{api['job_id']}"
    first = client.get(path)
    assert first.status_code == 200 and first.json()["stage"] != "reading chapter 9"
    for _ in range(5):
        assert client.get(path).json() == first.json()
    assert len(api["reads"]) == 1  # one read of the row, six answers

    foreign = client.get(path, headers={"Authorization": f"Bearer {api['other']}"})
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"

    # Another process writes the row (here raw SQL, so this process's own writes' hook is not involved)
    # and publishes its notice: the subscriber drops the row and the next read sees the change.
    with session_scope() as session:
        session.execute(update(Job).where(col(Job.id) == api["job_id"]).values(stage="reading chapter 9"))
        session.commit()
    assert client.get(path).json()["stage"] != "reading chapter 9"  # no notice yet: the row is kept
    redis.Redis.from_url(REDIS).publish(events.channel(api["prefix"]), events.message(events.JOB, api["job_id"]))
    _wait(lambda: client.get(path).json()["stage"] == "reading chapter 9", 5, "the notice did not drop the row")
    assert len(api["reads"]) == 2


def test_a_write_of_this_process_is_seen_by_the_very_next_read(api: dict[str, Any]) -> None:
    client: TestClient = api["client"]
    path = f"/v1/jobs/{api['job_id']}"
    assert client.get(path).json()["status"] == "queued"
    assert client.get(path).json()["status"] == "queued"
    canceled = client.post(f"{path}/cancel")
    assert canceled.json()["status"] == "canceled"
    assert client.get(path).json()["status"] == "canceled"  # before any notice could travel through Redis
    assert len(api["reads"]) == 2
