"""Per-key request rate limit: a fixed one-minute window counted in Redis, shared by API replicas."""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

import redis

from longread.workers.dispatch import redis_url

log = logging.getLogger(__name__)


# INCR and set the window's expiry on its first hit, in one round trip (EVALSHA once the script is loaded).
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2)


@lru_cache(maxsize=4)
def _counter(url: str) -> Any:
    """The registered script (redis-py's `Script` is untyped); it reloads itself after a Redis restart."""
    return _client(url).register_script(_COUNT)


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
        count = int(_counter(url)(keys=[name], args=[120]))
    except redis.RedisError:
        log.warning("rate-limit counter unavailable; allowing request", exc_info=True)
        return None
    if count > limit:
        return max(1, int((window + 1) * 60 - now) + 1)
    return None
