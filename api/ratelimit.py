"""Per-key request rate limit: a fixed one-minute window counted in Redis, shared by API replicas."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis

from longread.workers.dispatch import redis_url

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2)


def hit(key_id: str, limit: int, prefix: str = "") -> int | None:
    """Count one request; returns seconds to wait when over the limit, else None.

    If Redis is unreachable the request is allowed: the limit protects capacity, and refusing
    every request because the counter is down would be the worse outage.
    """
    if limit <= 0:
        return None
    url = redis_url()
    if url is None:
        return None
    now = time.time()
    window = int(now // 60)
    name = f"{prefix}longread:rate:{key_id}:{window}"
    try:
        pipe = _client(url).pipeline()
        pipe.incr(name)
        pipe.expire(name, 120)
        count = int(pipe.execute()[0])
    except redis.RedisError:
        log.warning("rate-limit counter unavailable; allowing request", exc_info=True)
        return None
    if count > limit:
        return max(1, int((window + 1) * 60 - now) + 1)
    return None
