"""Notices that a job changed, for the API's event streams: published by whoever writes the job.

`storage.jobs` calls `job_changed` after every committed change a page shows (claim, progress, usage,
cancel, finish), and `storage.answer_stream` calls `answer_written` after each relayed piece of answer
text. What carries the notice is installed by the process with `use_publisher`: the workers and the
API install a Redis pub/sub publisher (`redis_publisher`), which the API's subscriber fans out to its
open streams. Storage itself knows no broker: a publisher is any object with `publish(channel, message)`.
Without one, nothing is sent and the streams fall back to reading the row on a timer.

A notice carries no state, only `<kind>:<job id>`: the reader reads the row once per notice, and a lost
notice only delays a page until the next fallback read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

JOB = "job"
ANSWER = "answer"

Publisher = Callable[[str, str], None]
"""Sends one notice: (kind, job id)."""

_publisher: Publisher | None = None
_listeners: list[Publisher] = []


class SupportsPublish(Protocol):
    def publish(self, channel: str, message: str) -> object: ...


def channel(prefix: str) -> str:
    """The one pub/sub channel of a deployment (its Redis key prefix keeps test runs apart)."""
    return f"{prefix}longread:job-events"


def message(kind: str, job_id: str) -> str:
    return f"{kind}:{job_id}"


def parse(raw: str | bytes) -> tuple[str, str] | None:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    kind, _, job_id = text.partition(":")
    return (kind, job_id) if kind in (JOB, ANSWER) and job_id else None


def use_publisher(publisher: Publisher | None) -> None:
    """Install this process's publisher (None removes it)."""
    global _publisher
    _publisher = publisher


def add_listener(listener: Publisher) -> None:
    """Also tell `listener` of this process's own notices, synchronously and before they are published
    (the API's job-row cache drops a row its own write changed before any reader can ask again)."""
    if listener not in _listeners:
        _listeners.append(listener)


def redis_publisher(client: SupportsPublish, prefix: str) -> Publisher:
    """A publisher on a Redis client the caller owns (storage imports no Redis code)."""
    name = channel(prefix)

    def publish(kind: str, job_id: str) -> None:
        client.publish(name, message(kind, job_id))

    return publish


def _send(kind: str, job_id: str) -> None:
    for listener in _listeners:
        try:
            listener(kind, job_id)
        except Exception as exc:  # a listener's failure must not fail the write that was committed
            log.debug("a listener of %s notices failed: %s", kind, type(exc).__name__)
    publisher = _publisher
    if publisher is None:
        return
    try:
        publisher(kind, job_id)
    except Exception as exc:  # a notice is an optimisation: the row is written, streams poll it anyway
        log.debug("could not publish %s notice of job %s: %s", kind, job_id, type(exc).__name__)


def job_changed(job_id: str) -> None:
    _send(JOB, job_id)


def answer_written(job_id: str) -> None:
    _send(ANSWER, job_id)
