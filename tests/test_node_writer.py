"""A level task's node writer: it stores each node with its usage one write behind, and a failed write stops the task."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from longread import engine
from longread.llm import Usage
from longread.storage import jobs
from longread.storage.models import Job, JobKind, TreeNode
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"


def _row(tree_id: str, position: int) -> dict:
    return {
        "tree_id": tree_id, "level": 0, "position": position, "parent_position": 0, "child_start": None,
        "child_end": None, "segment_index": position, "start": 0, "end": 10, "summary": f"node {position}",
        "n_tokens": 2,
    }  # fmt: skip


def test_nodes_and_usage_are_stored_one_write_behind(session) -> None:
    from longread.agents.memwalker.tree import prepare_tree
    from longread.workers.node_writer import NodeWriter

    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {}))
    tree = prepare_tree(session, document, MODEL)
    job = jobs.create_job(session, tenant_id=document.tenant_id, kind=JobKind.BUILD_TREE, document_id=document.id)
    tree_id, job_id = tree.id, job.id
    spent = Usage(calls=1, prompt_tokens=100, completion_tokens=10, cost_usd=0.5)
    with NodeWriter(job_id, tree_id) as writer:
        assert writer.write(_row(tree_id, 0), spent) is None  # nothing was in flight
        previous = writer.write(_row(tree_id, 1), spent)
        assert previous is not None and previous.prompt_tokens == 100 and previous.cost_usd == pytest.approx(0.5)
        writer.write(_row(tree_id, 0) | {"summary": "a duplicate"}, Usage())  # a duplicate delivery's node
    session.expire_all()
    stored = session.exec(select(TreeNode).where(TreeNode.tree_id == tree_id).order_by(TreeNode.position)).all()
    assert [(n.position, n.summary) for n in stored] == [(0, "node 0"), (1, "node 1")]
    row = session.get(Job, job_id)
    assert row is not None and row.llm_calls == 2 and row.prompt_tokens == 200 and row.completion_tokens == 20


def test_a_failed_write_is_raised_to_the_task(session) -> None:
    from longread.workers.node_writer import NodeWriter

    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {}))
    job = jobs.create_job(session, tenant_id=document.tenant_id, kind=JobKind.BUILD_TREE, document_id=document.id)
    with pytest.raises(Exception):  # noqa: B017, PT011  # the driver's IntegrityError: no such tree
        with NodeWriter(job.id, "no-such-tree") as writer:
            writer.write(_row("no-such-tree", 0), Usage())
            writer.write(_row("no-such-tree", 1), Usage())
    assert session.exec(select(func.count()).select_from(TreeNode)).one() == 0
