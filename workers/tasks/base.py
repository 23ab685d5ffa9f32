"""The shared shape of a job task: claim the row, keep it beating, record success, cancel or failure."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlmodel import Session

from longread.agents.base import JobCanceled
from longread.failures import describe_failure
from longread.storage import jobs
from longread.storage.db import session_scope
from longread.storage.models import Job, JobStatus

log = logging.getLogger(__name__)

Body = Callable[[Session, Job], str | None]
"""Runs the job's work; returns the result id, or None when it handed off to other tasks."""

PENDING = "pending"


def execute(session: Session, job: Job, body: Body) -> str:
    """Run a claimed job's body and move the row to its terminal state (unless the body handed off)."""
    try:
        with jobs.heartbeat(job.id):
            result_id = body(session, job)
    except JobCanceled:
        session.rollback()
        jobs.finish(session, job.id, JobStatus.CANCELED)
        return JobStatus.CANCELED.value
    except Exception as exc:
        log.exception("job %s failed", job.id)
        session.rollback()
        failure = describe_failure(exc)  # the log above keeps the exception; the row gets a safe sentence
        jobs.finish(session, job.id, JobStatus.FAILED, error=failure.message, error_code=failure.code)
        return JobStatus.FAILED.value
    if result_id is None:
        return PENDING
    jobs.finish(session, job.id, JobStatus.SUCCEEDED, result_id=result_id)
    return JobStatus.SUCCEEDED.value


def run_job(job_id: str, task_id: str | None, body: Body) -> str:
    """Entry point of a job: claim it (a duplicate or stale message finds it taken) and execute."""
    with session_scope() as session:
        job = jobs.claim(session, job_id, task_id)
        if job is None:
            log.info("job %s not claimable (finished, canceled or running elsewhere)", job_id)
            return "skipped"
        return execute(session, job, body)


def continue_job(job_id: str, attempt: int, body: Body) -> str:
    """A later step of a job already claimed by attempt `attempt`; stale attempts do nothing."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.status is not JobStatus.RUNNING or job.attempts != attempt:
            return "skipped"
        if job.cancel_requested:
            jobs.finish(session, job_id, JobStatus.CANCELED)
            return JobStatus.CANCELED.value
        return execute(session, job, body)
