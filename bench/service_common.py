"""Shared harness for the service benchmarks: a scratch PostgreSQL database, a Redis DB, processes.

The benchmarks run the real deployment shape (uvicorn, Celery worker processes, Redis, PostgreSQL)
on this machine; only the LLM is a scripted double with a fixed latency.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longread.storage.models import Job

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/12"

WORDS = (
    "the council river harbour merchant winter ledger bridge festival archive northern valley lantern "
    "engineer orchard treaty voyage garrison chapel quarry weaver market signal tower meadow granary"
).split()


def synthetic_text(n_tokens: int, seed: int = 0) -> str:
    """Sentences of common words, about 1.3 tokens per word, in paragraphs of eight sentences."""
    rng = random.Random(seed)
    sentences, words = [], 0
    while words * 1.3 < n_tokens:
        length = rng.randint(10, 22)
        sentence = " ".join(rng.choice(WORDS) for _ in range(length))
        sentences.append(sentence.capitalize() + ".")
        words += length
    return "\n\n".join(" ".join(sentences[i : i + 8]) for i in range(0, len(sentences), 8))


@contextmanager
def scratch_environment(extra: dict[str, str]) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and Redis DB, exported to this process and its children."""
    import psycopg
    import redis

    name = f"longread_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix = f"{name}:"
    data = Path(os.path.join("/tmp", name))
    data.mkdir(parents=True, exist_ok=True)
    values = {
        "LONGREAD_DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}",
        "LONGREAD_REDIS_URL": REDIS_URL,
        "LONGREAD_REDIS_KEY_PREFIX": prefix,
        "LONGREAD_DATA_DIR": str(data),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        # The service benchmarks read with scripted or HTTP models: a worker need not load the local one.
        "LONGREAD_LOCAL_MODEL_PRELOAD": "false",
        "PYTHONPATH": str(REPO),
        **extra,
    }
    os.environ.update(values)
    from longread.config import get_settings

    get_settings.cache_clear()
    from longread.storage.db import init_db

    init_db()
    try:
        yield dict(os.environ)
    finally:
        from longread.storage.db import get_engine

        get_engine().dispose()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def worker_command(concurrency: int, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "longread.workers.celery_app", "worker", "-Q", "default,local",
        "-c", str(concurrency), "-n", name, "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


@contextmanager
def running_worker(concurrency: int, name: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker process named `name` with a pool of `concurrency`, once it answers a ping."""
    from longread.testing.processes import wait_for
    from longread.workers.celery_app import app

    with process(worker_command(concurrency, name), env, log) as worker:
        wait_for(lambda: app.control.ping(destination=[name], timeout=0.5), 90, "worker")
        yield worker


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and every live descendant (a prefork pool's children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # it exited meanwhile
            continue
    return total


def machine_busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy (every process: workers, PostgreSQL, Redis, this one)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def store_synthetic_document(n_tokens: int, model: str) -> tuple[str, int, int]:
    """A synthetic document of about `n_tokens` tokens stored in the scratch database and segmented for
    `model`: its id, its tokens and its number of segments."""
    from longread import engine
    from longread.agents.segments import ensure_segments
    from longread.storage.db import session_scope

    with session_scope() as session:
        document, _ = engine.store_text(session, filename="bench.txt", text=synthetic_text(n_tokens))
        segments = ensure_segments(session, document, model)
        return document.id, document.n_tokens, len(segments)


def build_tree(document_id: str, model: str, interval: float) -> tuple[Job, float]:
    """A BUILD_TREE job for the document with `model`, run by the workers to its end (polled every
    `interval` seconds): the finished job row and the wall seconds from its enqueue."""
    import time

    from longread.storage import jobs
    from longread.storage.db import session_scope
    from longread.storage.models import Document, Job, JobKind
    from longread.testing.processes import wait_for
    from longread.workers.dispatch import enqueue

    with session_scope() as session:
        document = session.get(Document, document_id)
        assert document is not None
        job = jobs.create_job(
            session, tenant_id=document.tenant_id, kind=JobKind.BUILD_TREE, document_id=document_id,
            params={"model": model},
        )  # fmt: skip
        started = time.monotonic()
        enqueue(session, job)
        job_id = job.id

    def finished() -> Job | None:
        with session_scope() as session:
            row = session.get(Job, job_id)
            return row if row is not None and row.status in jobs.TERMINAL else None

    done = wait_for(finished, 3600, "the tree job", interval=interval)
    return done, time.monotonic() - started


def drop_tree(tree_id: str | None) -> None:
    """Delete a built tree and its nodes, so the next build of the document starts from scratch."""
    from sqlalchemy import delete

    from longread.storage.db import session_scope
    from longread.storage.models import Tree, TreeNode

    if not tree_id:
        return
    with session_scope() as session:
        session.execute(delete(TreeNode).where(TreeNode.tree_id == tree_id))
        session.execute(delete(Tree).where(Tree.id == tree_id))
        session.commit()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
