"""A worker killed in the middle of a tree build; a fresh worker finishes the job exactly."""

from __future__ import annotations

import random

import httpx
import pytest
from sqlmodel import select

from tests.service.conftest import SLOW_MODEL, needle_document, upload, wait_for, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def test_killed_worker_tree_build_is_resumed_without_gaps_or_duplicates(client: httpx.Client, workers) -> None:  # type: ignore[no-untyped-def]
    from longread.agents.memwalker.tree import level_sizes
    from longread.storage.db import session_scope
    from longread.storage.models import Tree, TreeNode, TreeStatus

    body = upload(client, needle_document(random.randint(10_000, 99_999), paragraphs=30)).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    job_id = client.post(f"/v1/documents/{body['document_id']}/summaries", json={"model": SLOW_MODEL}).json()["id"]
    running = wait_for(
        lambda: (j := client.get(f"/v1/jobs/{job_id}").json())["done"] >= 6 and j, 90, "the build to be under way"
    )
    assert running["status"] == "running" and running["done"] < running["total"]

    for name in list(workers.procs):
        workers.kill(name)
    killed_at = client.get(f"/v1/jobs/{job_id}").json()
    assert killed_at["status"] == "running" and killed_at["done"] < killed_at["total"]

    workers.start()
    job = wait_job(client, job_id, timeout=150)
    assert job["status"] == "succeeded", job
    assert job["attempts"] >= 2  # claimed again after the heartbeat went stale

    with session_scope() as session:
        tree = session.exec(select(Tree).where(Tree.document_id == body["document_id"], Tree.model == SLOW_MODEL)).one()
        nodes = list(session.exec(select(TreeNode).where(TreeNode.tree_id == tree.id)))
        n_leaves = sum(1 for node in nodes if node.level == 0)
        sizes = level_sizes(n_leaves, tree.fanout)
        keys = [(node.level, node.position) for node in nodes]
        assert tree.status is TreeStatus.READY
        assert len(keys) == len(set(keys)) == sum(sizes)
        assert sorted(keys) == [(level, p) for level, size in enumerate(sizes) for p in range(size)]
        # Every parent points at a complete, contiguous run of children.
        for node in nodes:
            if node.level > 0:
                assert node.child_start is not None and node.child_end is not None
                assert 0 <= node.child_start < node.child_end <= sizes[node.level - 1]
    # A resumed build pays for each node about once: finished nodes were not summarised again.
    assert job["llm_calls"] <= sum(sizes) + 6, job
    answer = client.get(f"/v1/answers/{job['result_id']}").json()
    assert answer["kind"] == "summary" and answer["answer"]


def test_queued_job_whose_message_was_lost_is_sent_again(client: httpx.Client) -> None:
    from longread.storage.db import session_scope
    from longread.storage.models import Document, Job, JobKind

    body = upload(client, needle_document(random.randint(10_000, 99_999))).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    with session_scope() as session:
        document = session.get(Document, body["document_id"])
        assert document is not None
        # A job row whose broker message never arrived (as after a Redis restart without persistence).
        job = Job(tenant_id=document.tenant_id, kind=JobKind.INGEST, document_id=document.id)
        session.add(job)
        session.commit()
        job_id = job.id
    finished = wait_job(client, job_id, timeout=60)
    assert finished["status"] == "succeeded" and finished["attempts"] == 1
    assert "resent_at" in finished["params"]
