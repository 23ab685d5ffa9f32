"""A worker's log carries no server path, traceback or secret, from its very first line.

Celery warns before it sets up logging (running as the superuser, for one), and Python prints a
warning with the path of the file that raised it; litellm's handler prints source file names. A real
worker process is started here and what it printed until it was ready is read back.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.service.conftest import REDIS_URL, REPO, WORKER_READY_S, reuse_converted_model

pytestmark = [pytest.mark.service]

SECRET = "sk-worker-log-test-0123456789abcdef"
# An absolute path of two or more parts (not the tail of a URL), a source location, a traceback.
LEAKS = re.compile(r'(?<![\w:/.])/(?:[\w.-]+/)+[\w.-]+|\b[\w.-]+\.py\b|File "|Traceback|line \d+')


def _first_lines(tmp_path: Path) -> list[str]:
    prefix = f"worker-logs-{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "LONGREAD_DATA_DIR": str(tmp_path / "data"),
        "LONGREAD_REDIS_URL": REDIS_URL,
        "LONGREAD_REDIS_KEY_PREFIX": prefix,
        "LONGREAD_LLM": "scripted/longread.testing.doubles.reader",
        "LONGREAD_LLM_API_KEY": SECRET,
        "PYTHONPATH": str(REPO),
    }
    env.pop("LONGREAD_DATABASE_URL", None)
    env.pop("LONGREAD_LOCAL_MODEL_PRELOAD", None)  # the default: what it prints while loading the model counts
    reuse_converted_model(tmp_path / "data")
    log_path = tmp_path / "worker.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "longread.workers.celery_app", "worker", "-B",
        "-s", str(tmp_path / "beat"), "-Q", "default,local", "-c", "1", "-n", f"{prefix}@localhost",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WORKER_READY_S
        while " ready." not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, f"the worker did not report ready in {WORKER_READY_S} s"
            time.sleep(0.2)
        time.sleep(1)  # beat's first lines
        # What it printed up to here; stopping it below may cut short a task beat just sent, which is not startup.
        printed = log_path.read_text(errors="replace")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    return printed.splitlines()


def test_a_worker_prints_no_path_traceback_or_secret_from_its_first_line(tmp_path: Path) -> None:
    lines = _first_lines(tmp_path)
    assert any(" ready." in line for line in lines)
    for line in lines:
        assert not LEAKS.search(line), line
        assert SECRET not in line and str(REPO) not in line and sys.prefix not in line, line
    if os.geteuid() == 0:
        # Celery's superuser warning, printed before its logging is set up, is one line without its file.
        warning = [line for line in lines if "SecurityWarning" in line]
        assert warning == [
            "SecurityWarning: You're running the worker with superuser privileges: this is absolutely not recommended!"
        ]


def test_the_leak_pattern_catches_what_python_prints_for_a_warning() -> None:
    printed = f"{sys.prefix}/lib/python3.11/site-packages/celery/platforms.py:893: SecurityWarning: You're running"
    assert LEAKS.search(printed)
    assert not LEAKS.search("[2026-11-26 22:54:03,765: INFO/MainProcess] Connected to redis://:**@127.0.0.1:6379/13")
