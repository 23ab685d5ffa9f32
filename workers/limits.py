"""A concurrency cap per model provider, shared by every worker process through Redis.

N workers each allowed `LLM_MAX_CONCURRENCY` calls would multiply a provider's rate-limit errors by
N; the cap here is global. A slot is a member of a sorted set scored by its lease expiry, so a
holder that dies (SIGKILL, OOM) frees its slot when the lease runs out instead of leaking it.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import redis

from longread.config import get_settings

# Drop expired leases, then take a slot if fewer than `limit` are held. Atomic on the server.
_ACQUIRE = """
local key, token, limit, now, lease = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + lease, token)
  redis.call('PEXPIRE', key, math.ceil(lease * 1000) + 1000)
  return 1
end
return 0
"""


class SlotTimeout(TimeoutError):
    """No provider slot freed up within the wait limit."""


def provider_of(model: str) -> str:
    """`openai/gpt-4o-mini` → `openai`; a bare model name is its own provider."""
    return model.split("/", 1)[0] if "/" in model else model


_clients: dict[str, redis.Redis] = {}


def _client(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@contextmanager
def redis_slot(
    client: redis.Redis,
    key: str,
    *,
    limit: int,
    lease_s: float,
    wait_s: float,
    poll_s: float = 0.05,
) -> Iterator[None]:
    """Hold one of `limit` slots named `key` for the duration of the block."""
    token = uuid.uuid4().hex
    acquire = client.register_script(_ACQUIRE)
    deadline = time.monotonic() + wait_s
    while not acquire(keys=[key], args=[token, limit, _server_time(client), lease_s]):
        if time.monotonic() > deadline:
            raise SlotTimeout(f"no free slot for {key} after {wait_s:.0f}s")
        # Jitter so waiting workers don't retry in lockstep.
        time.sleep(poll_s * (0.5 + random.random()))
    try:
        yield
    finally:
        client.zrem(key, token)


def provider_slot(model: str) -> AbstractContextManager[None]:
    """Context manager that holds a provider slot; a no-op when no Redis URL is configured.

    The LLM client wraps each provider call in it. The local in-process model is not capped here:
    each local worker process runs one call at a time anyway.
    """
    settings = get_settings()
    if not settings.REDIS_URL or model.startswith("local/"):
        return nullcontext()
    lease = settings.LLM_TIMEOUT_S * (settings.LLM_NUM_RETRIES + 1) + 30
    return redis_slot(
        _client(settings.REDIS_URL),
        f"{settings.REDIS_KEY_PREFIX}longread:slots:{provider_of(model)}",
        limit=settings.LLM_MAX_CONCURRENCY,
        lease_s=lease,
        wait_s=lease,
    )
