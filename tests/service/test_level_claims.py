"""A tree level's node list: the level's tasks, in separate processes, share its positions exactly once."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest

from longread.testing.processes import free_port
from tests.service.conftest import REDIS_URL

pytestmark = pytest.mark.service


def _use_redis(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    from longread.config import get_settings

    prefix = f"test-claims-{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("LONGREAD_REDIS_URL", url)
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", prefix)
    get_settings.cache_clear()
    return prefix


def _pull(job_id: str, share: list[int], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from longread.workers.level_claims import claims

    taken = []
    for position in claims(job_id, 1, 0, share, listed=True):
        taken.append(position)
        time.sleep(0.002)  # a node's work, so the other process gets its turns
    out.put(taken)


def test_tasks_in_separate_processes_take_every_position_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.workers.level_claims import offer

    _use_redis(monkeypatch, REDIS_URL)
    job_id, positions = uuid.uuid4().hex, list(range(300))
    assert offer(job_id, 1, 0, positions)
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    # Each task's share is deliberately wrong: with the list written, a task takes what the list gives.
    procs = [multiprocessing.Process(target=_pull, args=(job_id, [0], out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    taken = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    assert sorted(p for part in taken for p in part) == positions  # each exactly once
    assert all(part for part in taken), "a task got no node although the list was long"
    # A task that arrives after the level is done (a duplicate or redelivered message) takes nothing.
    assert list(_claims(job_id, [5, 6])) == []


def _claims(job_id: str, share: list[int]) -> list[int]:
    from longread.workers.level_claims import claims

    return list(claims(job_id, 1, 0, share, listed=True))


def test_a_new_offer_of_the_same_level_replaces_the_old_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.workers.level_claims import claims, offer

    _use_redis(monkeypatch, REDIS_URL)
    job_id = uuid.uuid4().hex
    offer(job_id, 2, 1, [0, 1, 2, 3])
    first = claims(job_id, 2, 1, [], listed=True)
    assert next(first) == 0
    offer(job_id, 2, 1, [1, 3])  # the level re-dispatched what is still missing
    assert list(first) == [1, 3]
    assert list(claims(job_id, 3, 1, [7], listed=True)) == []  # another attempt's list is its own


def test_without_a_list_each_task_takes_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.workers.level_claims import claims, offer

    _use_redis(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    job_id = uuid.uuid4().hex
    assert not offer(job_id, 1, 0, [0, 1, 2, 3])
    assert list(claims(job_id, 1, 0, [1, 3], listed=False)) == [1, 3]
    # Listed, but Redis stopped answering: the task still does its share rather than nothing.
    assert list(claims(job_id, 1, 0, [0, 2], listed=True)) == [0, 2]


def test_a_level_sends_no_more_tasks_than_the_provider_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.config import get_settings
    from longread.workers.dispatch import tree_level_tasks

    monkeypatch.setenv("LONGREAD_LLM_MAX_CONCURRENCY", "4")
    get_settings.cache_clear()
    assert [tree_level_tasks(n) for n in (1, 3, 4, 211)] == [1, 3, 4, 4]
