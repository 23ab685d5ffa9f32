"""The broker or the database goes away while a tree build runs, then comes back.

- Redis: a private `redis-server` (no persistence, on its own loopback port) is killed with SIGKILL
  mid-build and started again empty, as a crashed Redis without persistence comes back. The queued
  and unacknowledged messages, the chord counters and the node leases are gone; the job still
  finishes, each tree node exists once and no finished model call is paid twice.
- PostgreSQL: the workers reach the database through a TCP proxy that the test cuts mid-build
  (the machine's PostgreSQL itself is never stopped). An outage shorter than the stated limit
  (`JOB_STALL_LIMIT_S`) ends with the job finished; a longer one with the job failed as `job_stalled`,
  a sentence naming the limit. The API, which reaches the database directly, answers throughout.

Each stack (API, one worker with its beat, and for Redis the server) is private to its test, so
no other worker of the fault tier takes its tasks. Default recovery settings throughout.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from longread.testing.processes import free_port, wait_for
from tests.faults.conftest import paid_twice
from tests.faults.proxy import Proxy
from tests.faults.test_worker_crash import _assert_tree_exact, _under_way
from tests.service.conftest import REPO, Workers, _client, _new_key, needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]

OUTAGE_S = 5
LONG_OUTAGE_S = 25
STALL_LIMIT_S = 20
RESUME_BOUND_S = 25
"""From the service's return to the job running again (claimed anew, or finished): the heartbeat timeout
(15 s) and a sweep (5 s), with slack. The rest of the build takes what it takes (about 20 s here)."""


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(up, 15, "the private redis-server")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def _api(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "the API")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextmanager
def _stack(
    fault_env: dict[str, str], folder: Path, api: dict[str, str], workers: dict[str, str]
) -> Iterator[tuple[httpx.Client, Workers]]:
    """An API and one worker of their own (a private Redis key prefix or server), with these overrides.

    The worker logs its model calls to a file of its own: a call that finished during a database
    outage could not be kept and is paid again, which must not count against another test. This
    process takes the API's settings too: the worker's readiness ping goes through its broker.
    """
    from longread.config import get_settings

    workers = {"LONGREAD_TEST_CALL_LOG": str(folder / "calls.log"), **workers}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in api.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        pool = Workers({**fault_env, **api, **workers}, folder)
        try:
            pool.start()
            with _api({**fault_env, **api}, folder / "api.log") as url, _client(url, _new_key("outage")) as client:
                yield client, pool
        finally:
            pool.stop_all()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _alone(fault_workers: Workers) -> None:
    """The fault tier's shared workers stop first: they reach the same database, and their sweeper would
    resume this test's stalled job through the shared broker, out of reach of the outage under test."""
    fault_workers.stop_all()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_a_tree_build_finishes_after_redis_is_killed_and_restarted_empty(
    fault_env: dict[str, str], tmp_path: Path, record: Callable[..., None]
) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with _stack(fault_env, tmp_path, {"LONGREAD_REDIS_URL": server.url}, {}) as (client, _workers):
            document_id, job_id = _tree_build_under_way(client)
            attempts = client.get(f"/v1/jobs/{job_id}").json()["attempts"]
            killed_at = time.time()
            server.kill()
            time.sleep(OUTAGE_S)
            server.start()
            back = time.monotonic()
            resumed_s = _resumed(client, job_id, attempts)
            job = wait_job(client, job_id, timeout=90)
            finished_s = time.monotonic() - back
            assert job["status"] == "succeeded", job
            nodes = _assert_tree_exact(document_id)
            log = (tmp_path / "worker-1.log").read_text(errors="replace")
            assert "Traceback (most recent call last)" not in log and '  File "' not in log  # one line each
    finally:
        server.kill()
    repeats = paid_twice(tmp_path / "calls.log", killed_at - 1.0)
    record(
        "broker",
        f"tree build, Redis killed (SIGKILL) and restarted empty after {OUTAGE_S} s",
        handled=not repeats and resumed_s <= RESUME_BOUND_S,
        resumed_s=round(resumed_s, 1),
        finished_s=round(finished_s, 1),
        attempts=job["attempts"],
        nodes=nodes,
        paid_twice=len(repeats),
    )
    assert not repeats, f"{len(repeats)} finished calls were paid for again"
    assert resumed_s <= RESUME_BOUND_S, f"resumed {resumed_s:.1f}s after Redis was back"


@contextmanager
def _workers_behind_a_proxy(
    fault_env: dict[str, str], pg_url: str, folder: Path, **workers: str
) -> Iterator[tuple[httpx.Client, Proxy]]:
    """A private stack whose worker reaches PostgreSQL through a proxy the test can cut; the API directly."""
    import redis

    target = urlparse(pg_url)
    proxy = Proxy((target.hostname or "127.0.0.1", target.port or 5432))
    proxied = pg_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    prefix = f"outage-{uuid.uuid4().hex[:8]}:"
    try:
        with _stack(
            fault_env, folder, {"LONGREAD_REDIS_KEY_PREFIX": prefix}, {"LONGREAD_DATABASE_URL": proxied, **workers}
        ) as (client, _pool):
            yield client, proxy
    finally:
        proxy.close()
        shared = redis.Redis.from_url(fault_env["LONGREAD_REDIS_URL"])
        for key in shared.scan_iter(match=f"{prefix}*", count=1000):
            shared.delete(key)


def _resumed(client: httpx.Client, job_id: str, attempts: int) -> float:
    """Seconds until the job is claimed again after `attempts` claims (or has finished)."""
    started = time.monotonic()

    def going() -> bool:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return (job["attempts"] > attempts and job["status"] == "running") or job["status"] == "succeeded"

    wait_for(going, RESUME_BOUND_S + 30, "the job to resume", interval=0.2)
    return time.monotonic() - started


def _tree_build_under_way(client: httpx.Client) -> tuple[str, str]:
    """A tree build of a document no other test has (its own filler: each stack is a new tenant, whose
    completion cache starts empty, so shared paragraphs would look paid twice)."""
    text = needle_document(random.randint(10_000, 99_999), paragraphs=16, seed=random.randint(1, 10**9))
    body = upload(client, text).json()
    assert wait_job(client, body["job_id"], timeout=60)["status"] == "succeeded"
    document_id = str(body["document_id"])
    job_id = client.post(f"/v1/documents/{document_id}/summaries", json={"strategy": "tree"}).json()["id"]
    _under_way(client, job_id, min_done=6)
    return document_id, str(job_id)


def test_a_tree_build_finishes_after_a_short_database_outage(
    fault_env: dict[str, str], pg_url: str, tmp_path: Path, record: Callable[..., None]
) -> None:
    with _workers_behind_a_proxy(fault_env, pg_url, tmp_path) as (client, proxy):
        document_id, job_id = _tree_build_under_way(client)
        cut_at = time.time()
        proxy.cut()
        during = client.get(f"/v1/jobs/{job_id}")  # the API reaches the database directly
        time.sleep(OUTAGE_S)
        proxy.restore()
        back = time.monotonic()
        resumed_s = _resumed(client, job_id, during.json()["attempts"])
        job = wait_job(client, job_id, timeout=90)
        finished_s = time.monotonic() - back
        assert during.status_code == 200 and during.json()["status"] in ("running", "interrupted"), during.text
        assert job["status"] == "succeeded", job
        nodes = _assert_tree_exact(document_id)
    repeats = paid_twice(tmp_path / "calls.log", cut_at - 1.0)
    record(
        "database",
        f"tree build, the workers' database connection cut for {OUTAGE_S} s",
        handled=not repeats and resumed_s <= RESUME_BOUND_S,
        resumed_s=round(resumed_s, 1),
        finished_s=round(finished_s, 1),
        attempts=job["attempts"],
        nodes=nodes,
        paid_twice=len(repeats),
    )
    assert not repeats, f"{len(repeats)} finished calls were paid for again"
    assert resumed_s <= RESUME_BOUND_S, f"resumed {resumed_s:.1f}s after the database was back"


def test_a_database_outage_past_the_stall_limit_fails_the_job_with_a_clear_reason(
    fault_env: dict[str, str], pg_url: str, tmp_path: Path, record: Callable[..., None]
) -> None:
    """JOB_STALL_LIMIT_S (an hour by default) is 20 s for this worker; the outage lasts 25 s."""
    with _workers_behind_a_proxy(fault_env, pg_url, tmp_path, LONGREAD_JOB_STALL_LIMIT_S=str(STALL_LIMIT_S)) as (
        client,
        proxy,
    ):
        _document_id, job_id = _tree_build_under_way(client)
        proxy.cut()
        time.sleep(LONG_OUTAGE_S)
        proxy.restore()
        back = time.monotonic()
        job = wait_job(client, job_id, timeout=30)
        ended_s = time.monotonic() - back
    record(
        "database",
        f"tree build, the workers' database connection cut for {LONG_OUTAGE_S} s (stall limit {STALL_LIMIT_S} s)",
        handled=job["status"] == "failed" and job["error_code"] == "job_stalled",
        seconds=round(ended_s, 1),
        error_code=job.get("error_code"),
        error=job.get("error"),
    )
    assert (job["status"], job["error_code"]) == ("failed", "job_stalled"), job
    assert f"{STALL_LIMIT_S} s" in job["error"] and "psycopg" not in job["error"] and "127.0.0.1" not in job["error"]
