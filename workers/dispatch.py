"""Putting a job on its queue. The API and the sweeper enqueue through here, by job kind."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from longread.config import get_settings
from longread.storage.models import Job, JobKind
from longread.workers.celery_app import app, queue_for

ENTRY_TASKS = {
    JobKind.INGEST: "longread.workers.tasks.ingest.ingest_task",
    JobKind.BUILD_TREE: "longread.workers.tasks.tree.build_tree_task",
    JobKind.ASK: "longread.workers.tasks.answers.ask_task",
    JobKind.SUMMARIZE: "longread.workers.tasks.answers.summarize_task",
}


def job_queue(job: Job) -> str:
    return queue_for(job.params.get("model") or get_settings().LLM, job.params.get("strategy"))


def enqueue(session: Session, job: Job) -> str:
    """Send the job's entry task (its only argument is the job id) and remember the Celery id."""
    result = app.send_task(ENTRY_TASKS[job.kind], args=(job.id,), queue=job_queue(job))
    session.execute(update(Job).where(col(Job.id) == job.id).values(celery_task_id=result.id))
    session.commit()
    return result.id
