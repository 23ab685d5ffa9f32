"""What the routes share: tenant-scoped lookups, model checks, and job creation + enqueue."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, col, select

from longread import collection_reading
from longread.api.errors import ApiError, not_found
from longread.api.security import Principal
from longread.config import get_settings
from longread.failures import sanitise
from longread.storage import jobs
from longread.storage.collections import find_collection
from longread.storage.models import Answer, Collection, Document, Job, JobKind, JobStatus
from longread.workers.dispatch import enqueue

log = logging.getLogger(__name__)


def owned_document(session: Session, principal: Principal, document_id: str) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.tenant_id != principal.tenant_id:
        raise not_found("document", document_id)
    return document


def owned_collection(session: Session, principal: Principal, key: str) -> Collection:
    """The tenant's collection by id or name; another tenant's is not found, like a missing one."""
    collection = find_collection(session, key, tenant_id=principal.tenant_id)
    if collection is None:
        raise not_found("collection", key)
    return collection


def owned_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != principal.tenant_id:
        raise not_found("job", job_id)
    return job


def owned_answer(session: Session, principal: Principal, answer_id: str) -> Answer:
    answer = session.get(Answer, answer_id)
    if answer is None or answer.tenant_id != principal.tenant_id:
        raise not_found("answer", answer_id)
    return answer


def resolve_model(requested: str | None) -> str:
    """Requests may only name configured models: a model string selects code (scripted/local)."""
    settings = get_settings()
    if requested is None or requested == settings.LLM:
        return settings.LLM
    if requested in settings.ALLOWED_MODELS:
        return requested
    # The configured model strings are not listed: they name providers, deployments and local paths.
    raise ApiError(422, "unknown_model", "that model is not offered here; leave 'model' unset for the default")


def submit(
    session: Session, principal: Principal, *, kind: JobKind, document_id: str | None, params: dict[str, Any]
) -> Job:
    """Create the job row, then enqueue it; a broker outage fails the job instead of leaving it queued."""
    job = jobs.create_job(session, tenant_id=principal.tenant_id, kind=kind, document_id=document_id, params=params)
    try:
        enqueue(session, job)
    except Exception as exc:
        log.error("could not enqueue job %s: %s: %s", job.id, type(exc).__name__, sanitise(str(exc)))
        jobs.finish(session, job.id, JobStatus.FAILED, error="broker unavailable")
        raise ApiError(503, "broker_unavailable", "the job queue is unreachable; try again shortly") from exc
    session.refresh(job)
    return job


def latest_job(session: Session, document_id: str, kind: JobKind) -> Job | None:
    query = (
        select(Job)
        .where(Job.document_id == document_id, Job.kind == kind)
        .order_by(col(Job.created_at).desc())
        .limit(1)
    )
    return session.exec(query).first()


def index_joined(session: Session, principal: Principal, document_ids: list[str]) -> list[Job]:
    """An index job for each document that joined a collection without a retrieval index yet.

    Indexes are built as documents join, so the collection's first question finds them built and a
    document added to a built collection costs its own index only."""
    params = {"model": get_settings().LLM}
    return [
        submit(session, principal, kind=JobKind.BUILD_INDEX, document_id=document_id, params=params)
        for document_id in collection_reading.unindexed(session, document_ids)
    ]
