"""The API's job-event subscriber: it follows the configured channel and catches its streams up on subscribing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis

from longread.api import events as hub_events
from longread.config import get_settings
from longread.storage import events

REDIS = "redis://127.0.0.1:6379/15"


def _use_prefix(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", prefix)
    get_settings.cache_clear()


def test_the_subscriber_follows_a_new_key_prefix_and_every_stream_rereads_its_answer_on_subscribing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Notices go to the channel of the prefix configured now; a subscriber left on the old one would leave
    every open stream waiting. And a notice sent while the subscriber was away is lost, so each
    (re)subscription wakes every stream to reread its answer text."""
    monkeypatch.setenv("LONGREAD_REDIS_URL", REDIS)
    monkeypatch.setattr(hub_events, "REFRESH_S", 3600.0)  # only notices and catch-ups wake a stream here
    first, second = (f"test-{uuid.uuid4().hex[:8]}:" for _ in range(2))
    _use_prefix(monkeypatch, first)
    reads: list[str] = []

    def snapshot(job_id: str) -> dict[str, Any]:
        reads.append(job_id)
        return {"id": job_id, "read": len(reads)}

    client = redis.Redis.from_url(REDIS)
    hub = hub_events.Hub(snapshot)

    def publish(prefix: str, kind: str) -> None:
        client.publish(events.channel(prefix), events.message(kind, "job-1"))

    async def scenario() -> list[tuple[Any, bool]]:
        watch = hub.watch("job-1")
        seen = [await watch.next(15)]  # the catch-up on subscribing
        publish(first, events.JOB)
        seen.append(await watch.next(5))
        _use_prefix(monkeypatch, second)
        seen.append(await watch.next(15))  # the catch-up on subscribing to the new channel
        publish(first, events.JOB)  # the old channel: nobody listens there now
        publish(second, events.JOB)
        seen.append(await watch.next(5))
        started = time.monotonic()
        seen.append(await watch.next(1.5))  # nothing more
        assert time.monotonic() - started >= 1.4
        hub.unwatch(watch)
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        client.close()
    assert seen == [
        (None, True),
        ({"id": "job-1", "read": 1}, False),
        (None, True),
        ({"id": "job-1", "read": 2}, False),
        (None, False),
    ]
