"""The summary tree built across workers: one chord per level, a few tasks per level that pull its nodes.

Each level's nodes depend only on the level below, so a level is a Celery group whose chord body
starts the next level. Nodes are upserted by (tree, level, position) and a level only dispatches
the nodes still missing, so a job resumed after a worker died redoes no finished node, and a
duplicate delivery of a node task costs nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from longread.agents.memwalker.tree import finish_tree, level_nodes, prepare_tree, summarize_node, tree_level_sizes
from longread.agents.segments import SegmentTexts
from longread.config import get_settings
from longread.failures import describe_failure
from longread.llm import Usage
from longread.llm.usage import BudgetExceeded
from longread.storage import jobs
from longread.storage.cache import stored_client
from longread.storage.db import session_scope
from longread.storage.models import Document, Job, JobKind, JobStatus, Tree, TreeNode, TreeStatus
from longread.workers import leases, level_claims
from longread.workers.budget import exhausted, remaining_caps
from longread.workers.celery_app import app
from longread.workers.dispatch import (
    ANSWER_TASK,
    TREE_LEVEL_DONE_TASK,
    TREE_NODES_TASK,
    continue_job_with,
    dispatch_tree_level,
    job_model,
)
from longread.workers.node_writer import NodeWriter
from longread.workers.tasks.base import continue_job, run_job

log = logging.getLogger(__name__)


def _stage(level: int, n_levels: int) -> str:
    return f"summarising level {level + 1} of {n_levels}"


def node_count(session: Session, tree_id: str) -> int:
    query = select(func.count()).select_from(TreeNode).where(TreeNode.tree_id == tree_id)
    return int(session.exec(query).one())


def start_build(session: Session, job: Job, tree: Tree) -> str | None:
    """Dispatch the first level that still misses nodes; when none does, finish the tree.

    A job that reached a budget cap dispatches nothing more: it goes on to its answer, which stops at once
    and stores why.
    """
    if tree.status is not TreeStatus.READY and exhausted(job) is not None and job.kind is not JobKind.BUILD_TREE:
        return after_tree(session, job, tree)
    if tree.status is not TreeStatus.READY:
        sizes = tree_level_sizes(session, tree)
        done = node_count(session, tree.id)
        for level, size in enumerate(sizes):
            have = {node.position for node in level_nodes(session, tree.id, level)}
            todo = [position for position in range(size) if position not in have]
            if todo:
                jobs.set_progress(session, job.id, stage=_stage(level, len(sizes)), done=done, total=sum(sizes))
                dispatch_tree_level(job, tree.id, tree.model, level, todo)
                return None
        tree = finish_tree(session, tree)
    return after_tree(session, job, tree)


def after_tree(session: Session, job: Job, tree: Tree) -> str | None:
    """A tree job ends here; a question or summary over the tree goes on to its answer task."""
    if job.kind is JobKind.BUILD_TREE:
        return tree.id
    continue_job_with(ANSWER_TASK, job)
    return None


@app.task(bind=True, name="longread.workers.tasks.tree.build_tree_task")
def build_tree_task(self, job_id: str) -> str:
    """Entry task of a tree job (also what the sweeper re-sends to resume one)."""

    def body(session: Session, job: Job) -> str | None:
        document = session.get(Document, job.document_id)
        if document is None:
            raise LookupError(f"document {job.document_id} no longer exists")
        return start_build(session, job, prepare_tree(session, document, job_model(job)))

    return run_job(job_id, self.request.id, body)


@app.task(name=TREE_NODES_TASK)
def summarize_nodes_task(
    job_id: str, tree_id: str, level: int, share: list[int], attempt: int, listed: bool = False
) -> str:
    """Summarise nodes of one level until the level's list is empty (`level_claims`).

    Failures mark the job failed and return, so the chord body still runs. The job's state after each
    node comes back with its usage update, so a node costs no read of the job: the task stops at once
    when the job ended, was canceled or spent its budget.
    """
    with session_scope() as session:
        # The job and the tree in one read (an outer join: a deleted tree still finds the job).
        row = session.exec(select(Job, Tree).outerjoin(Tree, col(Tree.id) == tree_id).where(Job.id == job_id)).first()
        job, tree = row if row is not None else (None, None)
        if job is None or job.status in jobs.TERMINAL:
            return "skipped"
        if tree is None:
            jobs.finish(session, job_id, JobStatus.FAILED, error="the summary tree was deleted", error_code="not_found")
            return JobStatus.FAILED.value
        session.expunge(job)  # a copy the loop keeps current from each usage update's returned row
        deadline = time.monotonic() + get_settings().TASK_TIME_LIMIT_S / 2
        segments = SegmentTexts(session, tree.document_id, tree.scheme) if level == 0 else None
        summarised = 0
        try:
            with jobs.heartbeat(job_id), leases.lease(job_id, f"level {level}"), NodeWriter(job_id, tree_id) as writer:
                for position in level_claims.claims(job_id, attempt, level, share, listed=listed):
                    outcome = _summarize_one(session, job, tree, level, position, segments, writer)
                    if outcome is not None:
                        return outcome
                    summarised += 1
                    if time.monotonic() > deadline:  # the rest go to the other tasks or the level's re-dispatch
                        break
        # A node's write (or the level's list) failed; a call's own failure is handled per node.
        except Exception as exc:
            log.exception("storing a node of level %s of tree %s failed", level, tree_id)
            failure = describe_failure(exc)
            jobs.finish(session, job_id, JobStatus.FAILED, error=failure.message, error_code=failure.code)
            return JobStatus.FAILED.value
        return f"{level}: {summarised} nodes"


def _summarize_one(
    session: Session,
    job: Job,
    tree: Tree,
    level: int,
    position: int,
    segments: SegmentTexts | None,
    writer: NodeWriter,
) -> str | None:
    """One node of a level task's loop; None to go on, else why the loop stops (the task's result).

    `job` is the task's copy of the row, kept current from each write's returned tally plus the usage
    still being written, so a cap is checked against everything spent so far.
    """
    if job.status in jobs.TERMINAL:
        return "skipped"
    if job.cancel_requested:
        jobs.finish(session, job.id, JobStatus.CANCELED)
        return JobStatus.CANCELED.value
    usage = Usage(budget=remaining_caps(job))
    rows: list[dict[str, Any]] = []
    try:
        client = stored_client(tree.model, usage, tenant_id=job.tenant_id)
        summarize_node(session, tree, level, position, client, segments, write=rows.append)
    except BudgetExceeded:  # the level's chord body sees the cap and goes on to the answer
        session.rollback()
        writer.wait()
        jobs.add_usage(session, job.id, usage)
        return "budget"
    except Exception as exc:
        log.exception("node (%s, %s) of tree %s failed", level, position, tree.id)
        session.rollback()
        writer.wait()
        jobs.add_usage(session, job.id, usage)
        failure = describe_failure(exc)  # the log above keeps the exception; the row gets a safe sentence
        jobs.finish(session, job.id, JobStatus.FAILED, error=failure.message, error_code=failure.code)
        return JobStatus.FAILED.value
    # The node, the usage with the heartbeat and `done`, and the speed sums: one transaction, written
    # while the next node's call runs.
    tally = writer.write(rows[0] if rows else None, usage)
    if tally is not None:
        tally.copy_to(job)
    job.cost_usd += usage.cost_usd
    job.prompt_tokens += usage.prompt_tokens
    job.completion_tokens += usage.completion_tokens
    return None


@app.task(name=TREE_LEVEL_DONE_TASK)
def tree_level_done(job_id: str, tree_id: str, level: int, attempt: int) -> str:
    """Chord body: the level is complete, so start the next one (or finish the tree)."""

    def body(session: Session, job: Job) -> str | None:
        tree = session.get(Tree, tree_id)
        if tree is None:
            raise LookupError(f"tree {tree_id} no longer exists")
        log.info("tree %s level %s done (job %s)", tree_id, level, job_id)
        return start_build(session, job, tree)

    return continue_job(job_id, attempt, body)
