"""Real parts: PostgreSQL, Redis (a dedicated DB number), Celery worker processes and uvicorn.

Fixtures are package-scoped: the environment they export must not outlive this package's tests.

The API and the workers run as subprocesses with the same environment, exactly as deployed; the
LLM is a scripted double served through litellm (longread.testing.service_doubles).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longread.testing.factories import document_with_facts
from longread.testing.processes import free_port as _free_port
from longread.testing.processes import wait_for

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"
MODEL = "scripted/longread.testing.service_doubles.reply"
SLOW_MODEL = "scripted/longread.testing.service_doubles.slow_reply"
STREAM_MODEL = "scripted/longread.testing.service_doubles.slow_stream"
UPLOAD_LIMIT = 200_000
HEARTBEAT_TIMEOUT_S = 4

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def needle_document(code: int, *, paragraphs: int = 12, at: int | None = None, seed: int = 0) -> str:
    """Filler paragraphs (no digits) with one planted fact; a fresh `code` makes the content unique."""
    at = paragraphs * 2 // 3 if at is None else at
    return document_with_facts(paragraphs, {at: f"The vault code is {code}."}, seed=seed)


@pytest.fixture(scope="package")
def service_env(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment shared by this process, the API and the workers; a clean database and Redis DB."""
    import redis

    from longread.config import get_settings

    # A key prefix of its own: other runs may share this Redis server (and DB) at the same time.
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    data = tmp_path_factory.mktemp("service-data")
    values = {
        "LONGREAD_DATA_DIR": str(data),
        "LONGREAD_DATABASE_URL": pg_url,
        "LONGREAD_REDIS_URL": REDIS_URL,
        "LONGREAD_REDIS_KEY_PREFIX": prefix,
        "LONGREAD_LLM": MODEL,
        "LONGREAD_ALLOWED_MODELS": f'["{SLOW_MODEL}", "{STREAM_MODEL}"]',
        "LONGREAD_SEGMENT_TOKENS": "60",
        "LONGREAD_TREE_FANOUT": "4",
        "LONGREAD_CHAIN_CHUNK_TOKENS": "700",
        "LONGREAD_CHAIN_UNIT_TOKENS": "100",
        "LONGREAD_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT),
        "LONGREAD_RATE_LIMIT_PER_MINUTE": "100000",
        "LONGREAD_JOB_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
        "LONGREAD_SWEEP_INTERVAL_S": "1",
        "LONGREAD_QUEUED_RESEND_AFTER_S": "3",
        "LONGREAD_ANONYMOUS_LOCAL": "false",
        # Scripted models only: a worker start need not load the local model (the fault tier keeps the default).
        "LONGREAD_LOCAL_MODEL_PRELOAD": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(REPO),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        from longread.storage.db import init_db

        init_db()
        yield dict(os.environ)
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def control_app() -> Any:
    """A Celery client for the current settings (the imported app may carry another suite's broker)."""
    from celery import Celery

    from longread.workers.celery_app import celery_config

    app = Celery("longread-test-control")
    app.conf.update(celery_config())
    return app


def reuse_converted_model(data_dir: Path) -> None:
    """Link the checkout's dequantised copies of the bundled model (`data/models/`), when there are any,
    into a data folder. A worker that serves the local queue loads the local model before it is ready (the
    default): with a copy that takes seconds, without one the first worker dequantises it."""
    cached, models = REPO / "data" / "models", data_dir / "models"
    if not cached.is_dir():
        return
    models.mkdir(parents=True, exist_ok=True)
    for folder in cached.iterdir():
        if folder.is_dir() and ".tmp" not in folder.name and not (models / folder.name).exists():
            (models / folder.name).symlink_to(folder, target_is_directory=True)


WORKER_READY_S = 300
"""A worker that serves the local queue loads the local model before it is ready: from a converted copy in
seconds, but a first load in a fresh data folder dequantises the bundled GGUF (minutes on a busy CPU)."""


class Workers:
    """Celery worker processes (each in its own process group, so a kill takes its pool too)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.count = 0

    def start(self, concurrency: int = 2) -> str:
        self.count += 1
        name = f"w{self.count}-{uuid.uuid4().hex[:6]}@localhost"
        cmd = [
            sys.executable, "-m", "celery", "-A", "longread.workers.celery_app", "worker", "-B",
            "-s", str(self.logs / f"beat-{self.count}"), "-Q", "default,local", "-c", str(concurrency),
            "-n", name, "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        log = open(self.logs / f"worker-{self.count}.log", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        control = control_app()
        wait_for(lambda: control.control.ping(destination=[name], timeout=0.5), WORKER_READY_S, f"worker {name}")
        return name

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool: nothing is acknowledged, nothing cleans up."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def ensure(self) -> None:
        if not any(p.poll() is None for p in self.procs.values()):
            self.start()

    def stop_all(self) -> None:
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()


@pytest.fixture(scope="package")
def workers(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(service_env, tmp_path_factory.mktemp("workers"))
    pool.start()
    yield pool
    pool.stop_all()


@pytest.fixture(scope="package")
def api_url(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = open(tmp_path_factory.mktemp("api") / "api.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=service_env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "the API")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


def _new_key(name: str) -> str:
    from longread.api.security import create_key
    from longread.storage.db import session_scope

    with session_scope() as session:
        plain, _row = create_key(session, name)
    return plain


@pytest.fixture(scope="package")
def key_factory(service_env: dict[str, str]) -> Callable[[str], str]:
    return _new_key


def _client(api_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="package")
def client(api_url: str, workers: Workers, key_factory: Callable[[str], str]) -> Iterator[httpx.Client]:
    with _client(api_url, key_factory("tenant-a")) as c:
        yield c


@pytest.fixture(scope="package")
def other_client(api_url: str, key_factory: Callable[[str], str]) -> Iterator[httpx.Client]:
    with _client(api_url, key_factory("tenant-b")) as c:
        yield c


@pytest.fixture(autouse=True)
def _live_worker(request: pytest.FixtureRequest) -> None:
    """A test that killed the workers must not leave the next one without any."""
    if "workers" in request.fixturenames:
        request.getfixturevalue("workers").ensure()


def upload(client: httpx.Client, text: str, filename: str = "doc.txt") -> httpx.Response:
    return client.post("/v1/documents", files={"file": (filename, text.encode("utf-8"), "text/plain")})


def wait_job(client: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["status"] in {"succeeded", "failed", "canceled"} else None

    return wait_for(finished, timeout, f"job {job_id}", interval=0.3)  # type: ignore[no-any-return]
