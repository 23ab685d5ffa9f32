"""A worker dies mid-job (SIGKILL of its whole process group, or SIGTERM to it as systemd sends):
the job finishes on a live worker within 30 s of one being available, with default settings; each
tree node exists once; no model call that had finished is paid for again.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.faults.conftest import paid_twice
from tests.service.conftest import Workers, needle_document, upload, wait_for, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]

RECOVERY_BOUND_S = 30


def _ingested(client: httpx.Client, paragraphs: int) -> str:
    body = upload(client, needle_document(random.randint(10_000, 99_999), paragraphs=paragraphs)).json()
    assert wait_job(client, body["job_id"], timeout=60)["status"] == "succeeded"
    return str(body["document_id"])


def _under_way(client: httpx.Client, job_id: str, min_done: int) -> dict[str, Any]:
    def going() -> dict[str, Any] | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] == "running" and job["done"] >= min_done else None

    return wait_for(going, 90, "the job to be under way", interval=0.2)  # type: ignore[no-any-return]


def _assert_tree_exact(document_id: str) -> int:
    from longread.agents.memwalker.tree import level_sizes
    from longread.storage.db import session_scope
    from longread.storage.models import Tree, TreeNode, TreeStatus

    with session_scope() as session:
        tree = session.exec(select(Tree).where(Tree.document_id == document_id)).one()
        nodes = list(session.exec(select(TreeNode).where(TreeNode.tree_id == tree.id)))
        sizes = level_sizes(sum(1 for n in nodes if n.level == 0), tree.fanout)
        keys = [(n.level, n.position) for n in nodes]
        assert tree.status is TreeStatus.READY
        assert len(keys) == len(set(keys)) == sum(sizes), "a tree node is missing or duplicated"
        assert sorted(keys) == [(level, p) for level, size in enumerate(sizes) for p in range(size)]
        return sum(sizes)


def _signal_group(workers: Workers, name: str, sig: signal.Signals) -> None:
    proc = workers.procs.pop(name)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_tree_build_survives_its_only_worker_dying(
    fault_client: httpx.Client,
    fault_workers: Workers,
    fault_env: dict[str, str],
    record: Callable[..., None],
    how: str,
) -> None:
    """The only worker dies; a new one starts; the job is claimed again and finishes, exactly."""
    fault_workers.ensure()
    document_id = _ingested(fault_client, paragraphs=30)
    job_id = fault_client.post(f"/v1/documents/{document_id}/summaries", json={"strategy": "tree"}).json()["id"]
    _under_way(fault_client, job_id, min_done=6)

    killed_at = time.time()
    for name in list(fault_workers.procs):
        _signal_group(fault_workers, name, getattr(signal, how))
    before = fault_client.get(f"/v1/jobs/{job_id}").json()
    assert before["status"] in ("running", "interrupted") and before["done"] < before["total"], before

    fault_workers.start()
    ready = time.monotonic()
    job = wait_job(fault_client, job_id, timeout=RECOVERY_BOUND_S + 60)
    finished_after = time.monotonic() - ready
    assert job["status"] == "succeeded", job
    nodes = _assert_tree_exact(document_id)
    repeats = paid_twice(Path(fault_env["LONGREAD_TEST_CALL_LOG"]), killed_at - 1.0)
    record(
        "worker",
        f"tree build, only worker {how} (process group)",
        handled=not repeats and finished_after <= RECOVERY_BOUND_S,
        recovered_s=round(finished_after, 1),
        attempts=job["attempts"],
        nodes=nodes,
        paid_twice=len(repeats),
    )
    assert not repeats, f"{len(repeats)} finished calls were paid for again"
    assert finished_after <= RECOVERY_BOUND_S, f"finished {finished_after:.1f}s after a live worker was available"


def test_tree_build_moves_to_a_live_worker_when_one_gets_sigterm(
    fault_client: httpx.Client,
    fault_workers: Workers,
    fault_env: dict[str, str],
    record: Callable[..., None],
) -> None:
    """Two workers; SIGTERM to one's whole process group: the other finishes the job."""
    fault_workers.ensure()
    while len(fault_workers.procs) < 2:
        fault_workers.start()
    document_id = _ingested(fault_client, paragraphs=30)
    job_id = fault_client.post(f"/v1/documents/{document_id}/summaries", json={"strategy": "tree"}).json()["id"]
    _under_way(fault_client, job_id, min_done=6)

    victim = next(iter(fault_workers.procs))
    killed_at = time.time()
    started = time.monotonic()
    _signal_group(fault_workers, victim, signal.SIGTERM)
    job = wait_job(fault_client, job_id, timeout=RECOVERY_BOUND_S + 60)
    finished_after = time.monotonic() - started
    assert job["status"] == "succeeded", job
    nodes = _assert_tree_exact(document_id)
    repeats = paid_twice(Path(fault_env["LONGREAD_TEST_CALL_LOG"]), killed_at - 1.0)
    record(
        "worker",
        "tree build, one of two workers SIGTERM (process group)",
        handled=not repeats and finished_after <= RECOVERY_BOUND_S,
        recovered_s=round(finished_after, 1),
        attempts=job["attempts"],
        nodes=nodes,
        paid_twice=len(repeats),
    )
    assert not repeats
    assert finished_after <= RECOVERY_BOUND_S


def test_chain_of_agents_survives_its_worker_being_killed(
    fault_client: httpx.Client,
    fault_workers: Workers,
    fault_env: dict[str, str],
    record: Callable[..., None],
) -> None:
    """A chain step is running when the worker dies: the chain resumes from its stored steps."""
    fault_workers.ensure()
    document_id = _ingested(fault_client, paragraphs=60)
    job_id = fault_client.post(f"/v1/documents/{document_id}/summaries", json={"strategy": "chain"}).json()["id"]
    _under_way(fault_client, job_id, min_done=2)

    killed_at = time.time()
    for name in list(fault_workers.procs):
        _signal_group(fault_workers, name, signal.SIGKILL)
    fault_workers.start()
    ready = time.monotonic()
    job = wait_job(fault_client, job_id, timeout=RECOVERY_BOUND_S + 60)
    finished_after = time.monotonic() - ready
    assert job["status"] == "succeeded", job
    repeats = paid_twice(Path(fault_env["LONGREAD_TEST_CALL_LOG"]), killed_at - 1.0)
    record(
        "worker",
        "chain of agents, only worker SIGKILL (process group)",
        handled=not repeats and finished_after <= RECOVERY_BOUND_S,
        recovered_s=round(finished_after, 1),
        attempts=job["attempts"],
        paid_twice=len(repeats),
    )
    assert not repeats
    assert finished_after <= RECOVERY_BOUND_S
