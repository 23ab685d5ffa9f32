"""The workers' publisher of job-change notices (`storage.events`): Redis pub/sub on the broker's server."""

from __future__ import annotations

from functools import lru_cache

import redis

from longread.config import get_settings
from longread.storage import events
from longread.workers.embedded import redis_url


@lru_cache(maxsize=4)
def _publisher(url: str, prefix: str) -> events.Publisher:
    return events.redis_publisher(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), prefix)


def publish(kind: str, job_id: str) -> None:
    """Resolved on first use: importing the Celery app must not look for a broker."""
    url = redis_url(start=False)
    if url is not None:
        _publisher(url, get_settings().REDIS_KEY_PREFIX)(kind, job_id)


def install() -> None:
    events.use_publisher(publish)
