"""Job-row state transitions: the database, not Celery, is where the API and UI read job state.

A job moves queued → running → succeeded | failed | canceled. A running job whose heartbeat is
older than `JOB_HEARTBEAT_TIMEOUT_S` belonged to a worker that died; the sweeper marks it
interrupted and enqueues it again, and the work resumes from what was persisted (tree nodes,
chain steps). Every transition is a conditional UPDATE so two workers can never both claim a job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Update, bindparam, func, or_, update
from sqlmodel import Session, col, select

from longread.config import get_settings
from longread.llm import Usage
from longread.progress import JobCanceled, ProgressFn
from longread.storage.db import rows_changed, session_scope
from longread.storage.events import job_changed
from longread.storage.models import Job, JobKind, JobStatus, TreeNode, table_of, utcnow
from longread.ticker import ticker

log = logging.getLogger(__name__)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.INTERRUPTED)
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
PROGRESS_MIN_INTERVAL_S = 0.25


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def create_job(
    session: Session,
    *,
    tenant_id: str,
    kind: JobKind,
    document_id: str | None,
    params: dict[str, Any] | None = None,
) -> Job:
    job = Job(tenant_id=tenant_id, kind=kind, document_id=document_id, params=params or {})
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


def _stale_before() -> datetime:
    return utcnow() - timedelta(seconds=get_settings().JOB_HEARTBEAT_TIMEOUT_S)


def claim(session: Session, job_id: str, task_id: str | None) -> Job | None:
    """Take a job to run it; None when it is finished, canceled, or alive in another worker.

    A redelivered or duplicated message therefore does no harm: it finds the job claimed.
    """
    now = utcnow()
    claimable = or_(
        col(Job.status).in_([JobStatus.QUEUED, JobStatus.INTERRUPTED]),
        (col(Job.status) == JobStatus.RUNNING) & (col(Job.heartbeat_at) < _stale_before()),
    )
    result = session.execute(
        update(Job)
        .where(col(Job.id) == job_id, claimable, col(Job.cancel_requested).is_(False))
        .values(
            status=JobStatus.RUNNING,
            celery_task_id=task_id,
            attempts=Job.attempts + 1,
            heartbeat_at=now,
            error=None,
            error_code=None,
        )
    )
    session.commit()
    job = session.get(Job, job_id)
    if job is None:
        return None
    session.refresh(job)
    if rows_changed(result) == 1:
        if job.started_at is None:
            job.started_at = now
            session.add(job)
            session.commit()
        job_changed(job_id)
        return job
    if job.cancel_requested and job.status not in TERMINAL:
        finish(session, job_id, JobStatus.CANCELED)
    return None


def beat(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(col(Job.id) == job_id).values(heartbeat_at=utcnow()))
    session.commit()


@contextmanager
def heartbeat(job_id: str, interval_s: float | None = None) -> Iterator[None]:
    """Beat the job row while the block runs, so a long LLM call doesn't look dead.

    The beats come from the process's ticker thread: a tree level runs hundreds of short node tasks
    a second, and a thread of their own per block cost more than the beats it would rarely send.
    """
    interval = interval_s or max(get_settings().JOB_HEARTBEAT_TIMEOUT_S / 4, 0.5)

    def run() -> None:
        try:
            with session_scope() as session:
                beat(session, job_id)
        except Exception:  # a busy database must not kill the task; the next beat retries
            log.warning("heartbeat for job %s failed", job_id, exc_info=True)

    with ticker("heartbeats").every(interval, run):
        yield


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.execute(select(Job.cancel_requested).where(Job.id == job_id)).scalar())


def set_progress(session: Session, job_id: str, *, stage: str, done: int, total: int) -> None:
    session.execute(
        update(Job).where(col(Job.id) == job_id).values(stage=stage, done=done, total=total, heartbeat_at=utcnow())
    )
    session.commit()
    job_changed(job_id)


def progress_callback(session: Session, job: Job, usage: Usage | None = None) -> ProgressFn:
    """The ProgressFn handed to the engine: writes the job row (throttled) and honours cancel.

    It also mirrors the running `usage` into the row, so calls and cost grow while the job runs.
    It uses the engine's own session: on SQLite a second connection would wait on the engine's
    open write transaction, in the very thread that holds it.
    """
    job_id = job.id
    base = counters(job)
    last: dict[str, Any] = {"at": 0.0, "stage": None}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == last["stage"] and done < total and now - last["at"] < PROGRESS_MIN_INTERVAL_S:
            return
        last["at"], last["stage"] = now, stage
        values: dict[str, Any] = {"stage": stage, "done": done, "total": total, "heartbeat_at": utcnow()}
        if usage is not None:
            values.update(_job_counters(base + usage), **_last_retry(usage))
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))
        session.commit()
        job_changed(job_id)
        if cancel_requested(session, job_id):
            raise JobCanceled(job_id)

    return progress


def _job_counters(usage: Usage) -> dict[str, Any]:
    """A job row's usage columns: the stored-row counters plus the provider retries behind them."""
    return {**usage.as_dict(), "llm_retries": usage.retries}


def _last_retry(usage: Usage) -> dict[str, Any]:
    """The latest retried failure's columns; empty when `usage` retried nothing (the row keeps its own)."""
    failure = usage.last_retry
    if failure is None:
        return {}
    return {"llm_last_retry_code": failure.code, "llm_last_retry_error": failure.message}


def counters(job: Job) -> Usage:
    """The usage counters a job had when this attempt started."""
    return Usage.of(job)


def set_usage(session: Session, job: Job, base: Usage, usage: Usage) -> None:
    """The job's counters: what earlier attempts spent (`base`) plus this attempt's usage so far."""
    values = {**_job_counters(base + usage), **_last_retry(usage)}
    session.execute(update(Job).where(col(Job.id) == job.id).values(**values))
    session.commit()
    job_changed(job.id)


_progress_written: dict[str, float] = {}


def _progress_due(job_id: str) -> bool:
    """At most one progress write and notice per job per `PROGRESS_MIN_INTERVAL_S` from this process."""
    now = time.monotonic()
    if now - _progress_written.get(job_id, float("-inf")) < PROGRESS_MIN_INTERVAL_S:
        return False
    if len(_progress_written) > 10_000:  # finished jobs' entries; a cleared one only allows one more write
        _progress_written.clear()
    _progress_written[job_id] = now
    return True


class JobTally(NamedTuple):
    """What a usage update leaves in the job row: enough for a task that does many calls in a row to
    know whether to go on (the job ended or was canceled) and what budget is left, without reading it."""

    status: JobStatus
    cancel_requested: bool
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int

    def copy_to(self, job: Job) -> None:
        """Bring a task's detached copy of the job row up to this state (status, cancel flag, spend)."""
        job.status, job.cancel_requested = self.status, self.cancel_requested
        job.cost_usd, job.prompt_tokens, job.completion_tokens = (
            self.cost_usd,
            self.prompt_tokens,
            self.completion_tokens,
        )


_COUNTERS = tuple(_job_counters(Usage()))
"""The job columns a usage adds to, as `_job_counters` names them."""


@lru_cache(maxsize=4)
def _usage_statement(with_retry: bool, recount_tree: bool) -> Update:
    """The increment UPDATE, built once per shape: a node task runs it hundreds of times a second, and
    building the expression each time cost more CPU than the database spent executing it."""
    table = table_of(Job)
    values: dict[str, Any] = {name: table.c[name] + bindparam(f"add_{name}") for name in _COUNTERS}
    values["heartbeat_at"] = bindparam("now")
    if with_retry:
        values["llm_last_retry_code"] = bindparam("retry_code")
        values["llm_last_retry_error"] = bindparam("retry_error")
    if recount_tree:
        nodes = table_of(TreeNode)
        values["done"] = (
            select(func.count()).select_from(nodes).where(nodes.c.tree_id == bindparam("tree_id")).scalar_subquery()
        )
    statement = update(table).where(table.c.id == bindparam("job_id")).values(values)
    return statement.returning(*(table.c[name] for name in JobTally._fields))


def add_usage(session: Session, job_id: str, usage: Usage, *, done_of_tree: str | None = None) -> JobTally | None:
    """Atomic increments: many node tasks of one job add their calls concurrently.

    The counters are added on every call (budgets read them), but `done` (recounted from the stored
    nodes of `done_of_tree`, so a duplicate delivery cannot inflate it) and the change notice go out at
    most a few times a second per job and worker process: a tree level's nodes finish many times a
    second, and the level's end sets the progress anyway. Returns the row's state after the update
    (None when the job no longer exists).
    """
    params: dict[str, Any] = {f"add_{name}": amount for name, amount in _job_counters(usage).items()}
    params |= {"job_id": job_id, "now": utcnow()}
    retry = _last_retry(usage)
    if retry:
        params |= {"retry_code": retry["llm_last_retry_code"], "retry_error": retry["llm_last_retry_error"]}
    due = _progress_due(job_id)
    recount = done_of_tree is not None and due
    if recount:
        params["tree_id"] = done_of_tree
    row = session.execute(_usage_statement(bool(retry), recount), params).first()
    session.commit()
    if due:
        job_changed(job_id)
    if row is None:
        return None
    status, cancel, cost, prompt, completion = row
    return JobTally(JobStatus(status), bool(cancel), float(cost), int(prompt), int(completion))


def finish(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    result_id: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
) -> bool:
    """Move a job to a terminal state once; False when it was already terminal.

    `error` reaches API clients and the page as is: a `longread.failures` message, never `str(exc)`.
    """
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "heartbeat_at": utcnow()}
    if status is JobStatus.SUCCEEDED:
        values["stage"] = "done"
        values["done"] = Job.total
    else:
        values["stage"] = status.value
    if result_id is not None:
        values["result_id"] = result_id
    if error is not None:
        values["error"] = error[:4000]
        values["error_code"] = error_code or "job_failed"
    result = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status).not_in(TERMINAL)).values(**values)
    )
    session.commit()
    changed = bool(rows_changed(result))
    if changed:
        job_changed(job_id)
    return changed


def request_cancel(session: Session, job: Job) -> Job:
    """Flag the job; a queued one is canceled at once, a running one stops at its next step."""
    if job.status in TERMINAL:
        return job
    session.execute(update(Job).where(col(Job.id) == job.id).values(cancel_requested=True))
    session.commit()
    job_changed(job.id)
    if job.status in (JobStatus.QUEUED, JobStatus.INTERRUPTED):
        finish(session, job.id, JobStatus.CANCELED)
    session.refresh(job)
    return job


def stale_jobs(session: Session) -> list[Job]:
    """Running jobs whose worker stopped beating (queued jobs are waiting, not stuck)."""
    query = select(Job).where(Job.status == JobStatus.RUNNING, col(Job.heartbeat_at) < _stale_before())
    return list(session.exec(query))


def unclaimed_jobs(session: Session) -> list[Job]:
    """Queued jobs older than QUEUED_RESEND_AFTER_S that were never claimed nor re-sent yet."""
    cutoff = utcnow() - timedelta(seconds=get_settings().QUEUED_RESEND_AFTER_S)
    query = select(Job).where(Job.status == JobStatus.QUEUED, Job.attempts == 0, col(Job.created_at) < cutoff)
    return [job for job in session.exec(query) if not job.params.get("resent_at")]


def mark_resent(session: Session, job: Job) -> None:
    job.params = {**job.params, "resent_at": utcnow().isoformat()}
    session.add(job)
    session.commit()


def stalled_too_long(job: Job) -> bool:
    """The job has not beaten for JOB_STALL_LIMIT_S: resuming it now would answer long after anyone waits."""
    beat = as_utc(job.heartbeat_at)
    return beat is not None and utcnow() - beat > timedelta(seconds=get_settings().JOB_STALL_LIMIT_S)


def fail_stalled(session: Session, job_id: str) -> bool:
    """Running-and-stalled → failed with `job_stalled`, once (a conditional update, like `interrupt`)."""
    limit = get_settings().JOB_STALL_LIMIT_S
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.status) == JobStatus.RUNNING,
            col(Job.heartbeat_at) < now - timedelta(seconds=limit),
        )
        .values(
            status=JobStatus.FAILED,
            stage=JobStatus.FAILED.value,
            finished_at=now,
            error=f"the job stopped for more than {limit} s (its workers or the database were unavailable); "
            "submit it again",
            error_code="job_stalled",
        )
        .execution_options(synchronize_session=False)  # SQLite's rows in the session hold naive times
    )
    session.commit()
    changed = bool(rows_changed(result))
    if changed:
        job_changed(job_id)
    return changed


def interrupt(session: Session, job_id: str) -> bool:
    """Running-and-stale → interrupted, once, so exactly one sweeper re-enqueues it."""
    result = session.execute(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.status) == JobStatus.RUNNING,
            col(Job.heartbeat_at) < _stale_before(),
        )
        .values(status=JobStatus.INTERRUPTED, stage="interrupted")
    )
    session.commit()
    changed = bool(rows_changed(result))
    if changed:
        job_changed(job_id)
    return changed


STEP_LIMIT_STAGES = frozenset({"navigating"})
"""Stages whose done/total counts steps against a limit (a tree walk may end at any step): no ETA from them."""


def eta_seconds(job: Job) -> float | None:
    """Linear estimate from the elapsed time and the done/total counters.

    None while the counters are a step limit rather than work to do: "24 steps" is a cap, not a size.
    """
    started = as_utc(job.started_at)
    if job.status is not JobStatus.RUNNING or started is None or job.done <= 0 or job.total <= 0:
        return None
    if job.stage in STEP_LIMIT_STAGES:
        return None
    elapsed = (utcnow() - started).total_seconds()
    return round(elapsed * (job.total - job.done) / job.done, 1)
