"""Fault tier: real PostgreSQL, Redis, uvicorn and Celery worker processes, with DEFAULT recovery settings.

The service tier shortens heartbeats and sweeps to keep its tests quick; here those settings keep
their defaults, because the claim under test is how fast a default deployment recovers. Everything
runs on loopback; every wait is bounded. Each test records what it measured in the results file
(`FAULT_RESULTS`, JSON lines) that `scripts/fault_report.py` turns into the README's fault matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longread.testing.fault_provider import FaultyProvider
from longread.testing.processes import free_port, wait_for
from tests.service.conftest import REDIS_URL, REPO, Workers, _client, _new_key, reuse_converted_model

MODEL = "scripted/tests.faults.doubles.logged_reply"
HOSTED = "openai/fake-model"  # served by longread.testing.fault_provider.FaultyProvider over loopback HTTP
RESULTS = Path(os.environ.get("LONGREAD_FAULT_RESULTS", REPO / "data" / "fault-results.jsonl"))

pytestmark = [pytest.mark.service, pytest.mark.postgres]


@pytest.fixture(scope="package")
def provider() -> Iterator[FaultyProvider]:
    """The OpenAI-compatible fault server; healthy until a test sets its fault rate."""
    with FaultyProvider(rate=0.0) as server:
        yield server


@pytest.fixture(scope="package")
def fault_env(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory, provider: FaultyProvider
) -> Iterator[dict[str, str]]:
    """Environment of this process, the API and the workers: defaults except test sizes and the doubles."""
    import redis

    from longread.config import get_settings

    prefix = f"fault-{uuid.uuid4().hex[:8]}:"
    data = tmp_path_factory.mktemp("fault-data")
    reuse_converted_model(data)  # workers load the local model before they are ready (the default)
    values = {
        "LONGREAD_DATA_DIR": str(data),
        "LONGREAD_DATABASE_URL": pg_url,
        "LONGREAD_REDIS_URL": REDIS_URL,
        "LONGREAD_REDIS_KEY_PREFIX": prefix,
        "LONGREAD_LLM": MODEL,
        "LONGREAD_SEGMENT_TOKENS": "60",
        "LONGREAD_TREE_FANOUT": "4",
        "LONGREAD_CHAIN_CHUNK_TOKENS": "700",
        "LONGREAD_CHAIN_UNIT_TOKENS": "100",
        "LONGREAD_RATE_LIMIT_PER_MINUTE": "100000",
        "LONGREAD_ANONYMOUS_LOCAL": "false",
        "LONGREAD_TEST_CALL_LOG": str(data / "calls.log"),
        "LONGREAD_ALLOWED_MODELS": f'["{HOSTED}"]',
        "LONGREAD_LLM_API_BASE": provider.url,
        "LONGREAD_LLM_API_KEY": "sk-fault-test-0000000000000000",
        "LONGREAD_LLM_TIMEOUT_S": "2",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(REPO),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        for key in ("LONGREAD_JOB_HEARTBEAT_TIMEOUT_S", "LONGREAD_SWEEP_INTERVAL_S", "LONGREAD_QUEUED_RESEND_AFTER_S"):
            mp.delenv(key, raising=False)  # the defaults are what is under test
        get_settings.cache_clear()
        from longread.storage.db import init_db

        init_db()
        yield dict(os.environ)
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture(scope="package")
def fault_workers(fault_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(fault_env, tmp_path_factory.mktemp("fault-workers"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="package")
def fault_api(fault_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("fault-api") / "api.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=fault_env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the API")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="package")
def fault_client(fault_api: str, fault_env: dict[str, str]) -> Iterator[httpx.Client]:
    with _client(fault_api, _new_key("faults")) as c:
        yield c


@pytest.fixture(scope="package")
def record() -> Callable[..., None]:
    """Append one measured outcome to the results file (read by scripts/fault_report.py)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)

    def write(kind: str, case: str, **fields: Any) -> None:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"kind": kind, "case": case, "at": time.time(), **fields}) + "\n")

    return write


def paid_twice(log_path: Path, finished_before: float) -> list[str]:
    """Prompts whose call finished before `finished_before` and were paid for again afterwards.

    A repeat logged before `finished_before` is not counted: it belongs to whatever ran before the fault.
    """
    seen: dict[str, float] = {}
    repeats = []
    if not log_path.exists():
        return repeats
    for line in log_path.read_text().splitlines():
        at, _pid, digest = line.split()
        if digest in seen and seen[digest] < finished_before <= float(at):
            repeats.append(digest)
        seen.setdefault(digest, float(at))
    return repeats
