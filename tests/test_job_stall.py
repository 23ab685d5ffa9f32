"""A job stale for longer than JOB_STALL_LIMIT_S fails with `job_stalled`; a merely stale one is left to resume."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session


def _running(session: Session, beat_age_s: float) -> str:
    from longread.storage import jobs
    from longread.storage.models import JobKind, JobStatus, utcnow

    job = jobs.create_job(session, tenant_id="t", kind=JobKind.SUMMARIZE, document_id=None)
    job.status, job.heartbeat_at = JobStatus.RUNNING, utcnow() - timedelta(seconds=beat_age_s)
    session.add(job)
    session.commit()
    return job.id


def test_a_job_stalled_past_the_limit_fails_with_a_clear_reason(session: Session) -> None:
    from longread.api.schemas import JobOut
    from longread.config import get_settings
    from longread.storage import jobs
    from longread.storage.models import Job, JobStatus

    limit = get_settings().JOB_STALL_LIMIT_S
    stalled = _running(session, limit + 60)
    stale = _running(session, get_settings().JOB_HEARTBEAT_TIMEOUT_S + 30)
    found = {job.id: job for job in jobs.stale_jobs(session)}
    assert set(found) == {stalled, stale}
    assert jobs.stalled_too_long(found[stalled]) and not jobs.stalled_too_long(found[stale])
    assert jobs.fail_stalled(session, stalled) and not jobs.fail_stalled(session, stalled)  # once
    assert not jobs.fail_stalled(session, stale)  # stale but within the limit: the sweeper resumes it
    session.expire_all()
    shown = JobOut.of(session.get(Job, stalled))
    assert (shown.status, shown.error_code) == ("failed", "job_stalled")
    assert shown.error and f"{limit} s" in shown.error and shown.finished_at is not None
    assert session.get(Job, stale).status is JobStatus.RUNNING
