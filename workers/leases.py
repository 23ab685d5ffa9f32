"""Leases of the tasks working on a job in parallel, so a part lost with its worker is noticed quickly.

A job's heartbeat says whether anything is still working on it. During a tree level's fan-out that
is not enough: when a worker is killed outright (SIGKILL, the OOM killer, a lost machine) the node
tasks it was running are neither finished nor acknowledged, the other workers keep the job's
heartbeat fresh with the level's remaining nodes, and the level's chord then waits for the lost
nodes until Redis redelivers them after the visibility timeout (over an hour).

Each task of a level therefore holds a lease: a field in a Redis hash per job whose value is the time it
expires, renewed every quarter of JOB_HEARTBEAT_TIMEOUT_S while the task runs and removed when it
ends. A field left behind with a past expiry belongs to a task whose process died; the sweeper then
resumes the job at once (the resumed attempt re-dispatches the nodes that are not stored).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from longread.config import get_settings
from longread.ticker import ticker
from longread.workers.embedded import redis_url

log = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis | None:
    """The workers' Redis connection (None when no broker URL is set), shared by leases and level lists."""
    url = redis_url(start=False)
    if url is None:
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[url]


def _key(job_id: str) -> str:
    return f"{get_settings().REDIS_KEY_PREFIX}longread:leases:{job_id}"


def _ttl_s() -> float:
    return float(get_settings().JOB_HEARTBEAT_TIMEOUT_S)


@contextmanager
def lease(job_id: str, what: str) -> Iterator[None]:
    """Hold a lease on part `what` of job `job_id` while the block runs (renewed by the process's ticker).

    Taking and renewing is one round trip (HSET and EXPIRE in a pipeline), releasing another.
    Broker trouble never fails the task: without Redis the job's heartbeat still covers it.
    """
    client = redis_client()
    if client is None:
        yield
        return
    key, field, ttl = _key(job_id), f"{what}#{uuid.uuid4().hex[:8]}", _ttl_s()

    def renew() -> None:
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hset(key, field, f"{time.time() + ttl:.3f}")
            pipe.expire(key, int(ttl * 20) + 60)
            pipe.execute()
        except redis.RedisError:
            log.warning("could not renew the lease of %s on job %s", what, job_id)

    renew()
    try:
        with ticker("leases").every(ttl / 4, renew):
            yield
    finally:
        try:
            client.hdel(key, field)
        except redis.RedisError:
            log.warning("could not release the lease of %s on job %s", what, job_id)


def take_expired(job_id: str) -> list[str]:
    """Parts of the job whose lease ran out (their process died); they are removed as they are returned."""
    client = redis_client()
    if client is None:
        return []
    key, now = _key(job_id), time.time()
    try:
        leases: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]  # sync client, bytes replies
        expired = [name.decode() for name, until in leases.items() if float(until) < now]
        if expired:
            client.hdel(key, *expired)
    except redis.RedisError:
        log.warning("could not read the leases of job %s", job_id)
        return []
    return [name.split("#", 1)[0] for name in expired]
