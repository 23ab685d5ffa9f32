"""Putting work on its queue: the one place that sends a task.

The API and the sweeper enqueue a job's entry task here; the tasks hand a job on to its next step
(a chain step, a tree level, the answer) here too, by task name. Sending by name is what keeps the
task modules from importing each other: `answers` starts trees and chains, and they come back to
`answers` only through this module.
"""

from __future__ import annotations

from celery import chord, group
from sqlalchemy import update
from sqlmodel import Session, col

from longread.config import get_settings
from longread.storage.models import Job, JobKind
from longread.workers import level_claims
from longread.workers.celery_app import app, queue_for
from longread.workers.embedded import redis_url

__all__ = ["continue_job_with", "dispatch_tree_level", "enqueue", "job_model", "job_queue", "redis_url"]

ENTRY_TASKS = {
    JobKind.INGEST: "longread.workers.tasks.ingest.ingest_task",
    JobKind.BUILD_TREE: "longread.workers.tasks.tree.build_tree_task",
    JobKind.ASK: "longread.workers.tasks.answers.ask_task",
    JobKind.SUMMARIZE: "longread.workers.tasks.answers.summarize_task",
    JobKind.ASK_COLLECTION: "longread.workers.tasks.answers.ask_collection_task",
    JobKind.SUMMARIZE_COLLECTION: "longread.workers.tasks.answers.summarize_collection_task",
    JobKind.BUILD_INDEX: "longread.workers.tasks.indexes.build_index_task",
}
CHAIN_STEP_TASK = "longread.workers.tasks.chain.chain_step_task"
ANSWER_TASK = "longread.workers.tasks.answers.answer_task"
TREE_NODES_TASK = "longread.workers.tasks.tree.summarize_nodes_task"
TREE_LEVEL_DONE_TASK = "longread.workers.tasks.tree.tree_level_done"


def job_model(job: Job) -> str:
    """The model a job reads with: its own parameter, else the configured default."""
    return str(job.params.get("model") or get_settings().LLM)


def job_queue(job: Job) -> str:
    """The queue of the strategy the job was planned with (`queue_strategy`: an `auto` follow-up's guess)."""
    return queue_for(job_model(job), job.params.get("queue_strategy") or job.params.get("strategy"))


def enqueue(session: Session, job: Job) -> str:
    """Send the job's entry task (its only argument is the job id) and remember the Celery id."""
    result = app.send_task(ENTRY_TASKS[job.kind], args=(job.id,), queue=job_queue(job))
    session.execute(update(Job).where(col(Job.id) == job.id).values(celery_task_id=result.id))
    session.commit()
    return str(result.id)


def continue_job_with(task_name: str, job: Job) -> None:
    """Hand a claimed job on to its next task; (job id, attempt) lets a stale attempt's task do nothing."""
    app.send_task(task_name, args=(job.id, job.attempts), queue=queue_for(job_model(job)))


def tree_level_tasks(n_nodes: int) -> int:
    """How many node tasks a tree level sends: no more than may call the provider at once
    (`LLM_MAX_CONCURRENCY`, a cap shared by every worker), and no more than it has nodes."""
    return max(1, min(n_nodes, get_settings().LLM_MAX_CONCURRENCY))


def dispatch_tree_level(job: Job, tree_id: str, model: str, level: int, positions: list[int]) -> None:
    """A few tasks per tree level that pull its missing nodes off a shared list (`level_claims`);
    the chord's body starts the next level."""
    queue = queue_for(model)
    n_tasks = tree_level_tasks(len(positions))
    listed = level_claims.offer(job.id, job.attempts, level, positions)
    header = group(
        app.signature(
            TREE_NODES_TASK, args=(job.id, tree_id, level, positions[start::n_tasks], job.attempts, listed)
        ).set(queue=queue)
        for start in range(n_tasks)
    )
    # Immutable: a chord passes its header's results to a mutable body as an extra first argument.
    body = app.signature(TREE_LEVEL_DONE_TASK, args=(job.id, tree_id, level, job.attempts), immutable=True)
    body = body.set(queue=queue)
    chord(header, body).apply_async()
