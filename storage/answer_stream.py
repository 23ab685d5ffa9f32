"""A job's answer as the model writes it: relayed from the worker to the API's event stream over Redis.

The worker appends each piece of the final answering call's text to one Redis string per job; the
API's event stream reads what was added since its last look and sends it as `answer` events, so the
page shows the answer growing and a reconnecting page gets the text so far. Each attempt of a job (a
job resumed after its worker died) writes its own string, so a reader starts over when the attempt
changes. It is a preview: the stored answer (with checked citations) replaces it when the job ends.
Without Redis nothing is relayed, and a Redis failure only costs the preview, never the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from longread.config import get_settings
from longread.storage.events import answer_written

log = logging.getLogger(__name__)

TTL_S = 3600


@lru_cache(maxsize=4)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _key(job_id: str, attempt: int) -> tuple[Any, str] | None:
    settings = get_settings()
    if not settings.REDIS_URL:
        return None
    return _client(settings.REDIS_URL), f"{settings.REDIS_KEY_PREFIX}answer-text:{job_id}:{attempt}"


def writer(job_id: str, attempt: int) -> Callable[[str], None]:
    """Append pieces of the answer's text for this attempt of `job_id`."""
    target = _key(job_id, attempt)

    def write(piece: str) -> None:
        if target is None or not piece:
            return
        client, key = target
        try:
            pipe = client.pipeline()
            pipe.append(key, piece.encode("utf-8"))
            pipe.expire(key, TTL_S)
            pipe.execute()
        except Exception:  # the preview is best-effort; the answer itself is stored by the job
            log.warning("could not relay answer text of job %s", job_id, exc_info=True)
            return
        answer_written(job_id)

    return write


def read_from(job_id: str, attempt: int, offset: int) -> tuple[str, int]:
    """The text this attempt appended since byte `offset`, and the new offset ("" when nothing new or no Redis)."""
    target = _key(job_id, attempt)
    if target is None:
        return "", offset
    client, key = target
    try:
        data: bytes = client.getrange(key, offset, -1)
    except Exception:
        log.warning("could not read answer text of job %s", job_id, exc_info=True)
        return "", offset
    if not data:
        return "", offset
    # Appends are whole strings, so a read up to the current end never splits a character.
    return data.decode("utf-8", errors="replace"), offset + len(data)
