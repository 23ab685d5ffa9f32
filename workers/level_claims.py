"""A tree level's missing nodes as one shared work list that the level's node tasks pull from.

One Celery task per node cost more CPU than the node's own work: the task's message, the pool's
hand-off and acknowledgement, the tracer, the chord counter and a lease, about as much again as the
node's SQL. A level therefore sends a few tasks (no more than can call the provider at once), and each
takes positions off a Redis list until it is empty. Whichever task is free takes the next node, so the
level still finishes when ⌈nodes / workers⌉ calls have run back to back, and a duplicate or redelivered
task finds the list empty and costs nothing.

A position taken by a task that then dies is not lost for good: the level's chord body dispatches
every node that is still not stored. Without Redis (or when it fails mid-level) a task works through
the share of the positions it was sent with; nodes are upserted by key, so a share that overlaps
what another task did repeats no stored node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import redis

from longread.config import get_settings
from longread.workers.leases import redis_client

log = logging.getLogger(__name__)

LIST_TTL_S = 7 * 24 * 3600
"""A level's list outlives any build that could still be reading it, then goes with its key."""


def _key(job_id: str, attempt: int, level: int) -> str:
    return f"{get_settings().REDIS_KEY_PREFIX}longread:tree-level:{job_id}:{attempt}:{level}"


def offer(job_id: str, attempt: int, level: int, positions: list[int]) -> bool:
    """Put the level's missing positions on its list (replacing any earlier list of this attempt and level).

    False when no list could be written; the tasks then work through their own shares.
    """
    client = redis_client()
    if client is None or not positions:
        return False
    key = _key(job_id, attempt, level)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.rpush(key, *positions)
        pipe.expire(key, LIST_TTL_S)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not list the nodes of level %s of job %s; each task takes its own share", level, job_id)
        return False
    return True


def claims(job_id: str, attempt: int, level: int, share: Iterable[int], *, listed: bool) -> Iterator[int]:
    """The positions this task should summarise, one at a time, as it asks for them.

    With the level `listed` (`offer` wrote its list) they come off the list until it is empty; otherwise,
    or once Redis stops answering, from this task's own `share`.
    """
    client = redis_client() if listed else None
    if client is not None:
        key = _key(job_id, attempt, level)
        try:
            while (position := client.lpop(key)) is not None:
                yield int(position)  # type: ignore[arg-type]  # sync client: bytes
            return
        except redis.RedisError:
            log.warning("the node list of level %s of job %s is unreachable; taking this task's share", level, job_id)
    yield from share
