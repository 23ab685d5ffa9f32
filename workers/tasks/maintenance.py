"""Periodic upkeep: resume running jobs whose worker died; re-send queued jobs whose message was lost."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready
from sqlalchemy import update
from sqlmodel import Session, col, select

from longread.storage import jobs
from longread.storage.db import rows_changed, session_scope
from longread.storage.models import Job, JobStatus
from longread.workers import leases
from longread.workers.celery_app import app
from longread.workers.dispatch import enqueue

log = logging.getLogger(__name__)


def sweep() -> list[str]:
    """Interrupt and re-enqueue every stale running job; returns their ids.

    `interrupt` is a conditional update, so with several sweepers each job is re-sent once. The
    re-sent entry task claims the interrupted job and resumes from its persisted steps. A job stale
    for longer than JOB_STALL_LIMIT_S (an outage of its workers or of the database that long) fails
    with `job_stalled` instead.
    """
    resumed = []
    with session_scope() as session:
        for job in jobs.stale_jobs(session):
            if jobs.stalled_too_long(job):
                if jobs.fail_stalled(session, job.id):
                    log.warning("job %s stopped beating longer than the stall limit; failing it", job.id)
                continue
            if jobs.interrupt(session, job.id):
                log.warning("job %s stopped beating; resuming it", job.id)
                # Expired leases are parts lost with the same dead worker: this resume covers them, and
                # left behind they would interrupt the resumed attempt once more.
                leases.take_expired(job.id)
                enqueue(session, job)
                resumed.append(job.id)
        resumed.extend(_resume_lost_parts(session))
        # A message lost by the broker (a Redis without persistence restarted) would leave its job
        # queued forever; send such a job once more. The first message to arrive claims it.
        for job in jobs.unclaimed_jobs(session):
            log.warning("job %s is still queued; sending it again", job.id)
            jobs.mark_resent(session, job)
            enqueue(session, job)
            resumed.append(job.id)
    return resumed


def _resume_lost_parts(session: Session) -> list[str]:
    """Resume running jobs that lost a part (a tree node) with a killed worker.

    The job's heartbeat would not go stale: the other parts keep it fresh while the lost one never
    ends, and its chord would wait for it until the broker's visibility timeout.
    """
    resumed = []
    for job in list(session.exec(select(Job).where(Job.status == JobStatus.RUNNING))):
        lost = leases.take_expired(job.id)
        if not lost:
            continue
        result = session.execute(
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == JobStatus.RUNNING)
            .values(status=JobStatus.INTERRUPTED, stage="interrupted")
        )
        session.commit()
        if rows_changed(result):
            log.warning("job %s lost %s with its worker; resuming it", job.id, ", ".join(lost))
            enqueue(session, job)
            resumed.append(job.id)
    return resumed


@app.task(name="longread.workers.tasks.maintenance.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> list[str]:
    return sweep()


@worker_ready.connect
def _sweep_on_start(**_kwargs: Any) -> None:
    """A worker that has just become ready looks at once for jobs a dead worker left behind.

    It sweeps in its own main process: a sweep message would wait behind the work already queued (a tree
    level's node tasks), while a job whose worker died during the restart is already stale.
    """
    threading.Thread(target=_sweep_quietly, name="start-up-sweep", daemon=True).start()


def _sweep_quietly() -> None:
    try:
        resumed = sweep()
    except Exception:  # the schedule sweeps again within SWEEP_INTERVAL_S
        log.warning("the start-up sweep failed")
        return
    if resumed:
        log.info("start-up sweep resumed %d job(s)", len(resumed))
