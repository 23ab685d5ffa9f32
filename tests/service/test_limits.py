"""The Redis-backed provider cap holds across processes and frees slots of dead holders."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
import redis

from tests.service.conftest import REDIS_URL

pytestmark = pytest.mark.service


def _hold(key: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from longread.workers.limits import redis_slot

    client = redis.Redis.from_url(REDIS_URL)
    with redis_slot(client, key, limit=2, lease_s=30, wait_s=30, poll_s=0.01):
        results.put(("in", time.monotonic()))
        time.sleep(0.3)
        results.put(("out", time.monotonic()))


def test_provider_cap_is_shared_by_processes() -> None:
    key = f"longread:test-slots:{uuid.uuid4().hex}"
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_hold, args=(key, results)) for _ in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=30)
    events = sorted((results.get(timeout=1) for _ in range(12)), key=lambda e: e[1])
    inside, peak = 0, 0
    for kind, _ in events:
        inside += 1 if kind == "in" else -1
        peak = max(peak, inside)
    assert peak == 2
    assert redis.Redis.from_url(REDIS_URL).zcard(key) == 0


def test_slot_of_a_dead_holder_expires() -> None:
    from longread.workers.limits import SlotTimeout, redis_slot

    client = redis.Redis.from_url(REDIS_URL)
    key = f"longread:test-slots:{uuid.uuid4().hex}"
    seconds, micros = client.time()
    client.zadd(key, {"crashed-holder": seconds + micros / 1e6 + 2.0})  # a lease that ends in 2 s
    with pytest.raises(SlotTimeout):
        with redis_slot(client, key, limit=1, lease_s=30, wait_s=0.2):
            pass
    started = time.monotonic()
    with redis_slot(client, key, limit=1, lease_s=30, wait_s=5):
        assert time.monotonic() - started < 4
