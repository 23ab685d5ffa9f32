"""Jobs: state from the database (not Celery), a Server-Sent Events stream of it (pushed), and cancel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import col, select
from sse_starlette.sse import EventSourceResponse

from longread.api import events, job_cache, stream_tokens
from longread.api.deps import CurrentPrincipal, SessionDep, StreamPrincipal, releases_session
from longread.api.errors import not_found
from longread.api.schemas import JobOut, StreamTokenOut
from longread.api.security import Principal
from longread.api.service import owned_job
from longread.llm.answer_text import after_restart
from longread.storage import answer_stream, jobs
from longread.storage.db import session_scope
from longread.storage.models import Job, JobKind

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

POLL_S = 0.25
"""How often a stream reads its job row while no subscriber is connected (no Redis)."""
STALL_S = 10.0
"""A stream that heard nothing for this long (the subscriber's own refresh is every 3 s) reads the row itself."""
PING_S = 15
ANSWERING = frozenset({JobKind.ASK.value, JobKind.ASK_COLLECTION.value})
"""Jobs whose answer streams as it is written (`answer` events)."""


@router.get("", response_model=list[JobOut])
@releases_session
def list_jobs(
    session: SessionDep,
    principal: CurrentPrincipal,
    document_id: str | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> list[JobOut]:
    """Your recent jobs, newest first (optionally for one document)."""
    query = select(Job).where(Job.tenant_id == principal.tenant_id)
    if document_id is not None:
        query = query.where(Job.document_id == document_id)
    return [JobOut.of(job) for job in session.exec(query.order_by(col(Job.created_at).desc()).limit(limit))]


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: str, principal: CurrentPrincipal) -> Response:
    """Status, stage, progress, ETA, LLM calls, tokens and cost of a job."""
    if events.hub(job_row).hears_every_notice():
        cached = job_cache.rows.get(job_id)
        # Many clients asking at once for a row not kept: one read, shared.
        tenant_id, body = (cached.tenant_id, cached.body) if cached is not None else await _shared_read(job_id)
    else:
        tenant_id, body = await run_in_threadpool(_job_body, job_id)
    if tenant_id != principal.tenant_id:
        raise not_found("job", job_id)
    return Response(body, media_type="application/json")


_reads: dict[tuple[asyncio.AbstractEventLoop, str], tuple[float, asyncio.Task[tuple[str, bytes]]]] = {}


async def _shared_read(job_id: str) -> tuple[str, bytes]:
    """Read a job's row into the cache, joining a read of it on this loop that began after its last change."""
    slot = (asyncio.get_running_loop(), job_id)
    under_way = _reads.get(slot)
    if under_way is not None and not job_cache.rows.changed_since(job_id, under_way[0]):
        task = under_way[1]
    else:
        read_at = time.monotonic()
        task = asyncio.ensure_future(_read_into_cache(job_id, read_at))
        _reads[slot] = (read_at, task)
        task.add_done_callback(lambda done: _forget_read(slot, done))
    return await asyncio.shield(task)  # one caller's disconnect must not cancel the others' read


def _forget_read(slot: tuple[asyncio.AbstractEventLoop, str], done: asyncio.Task[tuple[str, bytes]]) -> None:
    if not done.cancelled():
        done.exception()  # its callers saw it (a 404); retrieved here so no caller left means no warning
    under_way = _reads.get(slot)
    if under_way is not None and under_way[1] is done:
        del _reads[slot]


async def _read_into_cache(job_id: str, read_at: float) -> tuple[str, bytes]:
    tenant_id, body = await run_in_threadpool(_job_body, job_id)
    job_cache.rows.put(job_id, tenant_id, body, read_at)
    return tenant_id, body


def _job_body(job_id: str) -> tuple[str, bytes]:
    """The job's tenant and its body as `GET /v1/jobs/{id}` returns it (not found: ApiError 404)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise not_found("job", job_id)
        return job.tenant_id, JobOut.of(job).model_dump_json().encode()


@router.post("/{job_id}/cancel", response_model=JobOut)
@releases_session
def cancel_job(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> JobOut:
    """Cancel a job: a queued one at once, a running one at its next step."""
    return JobOut.of(jobs.request_cancel(session, owned_job(session, principal, job_id)))


def _snapshot(principal: Principal, job_id: str) -> dict[str, Any]:
    with session_scope() as session:
        return JobOut.of(owned_job(session, principal, job_id)).model_dump(mode="json")


def job_row(job_id: str) -> dict[str, Any] | None:
    """The hub's read, shared by every stream of the job (each stream checked its owner when it opened)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        return None if job is None else JobOut.of(job).model_dump(mode="json")


def _changed(previous: dict[str, Any] | None, current: dict[str, Any]) -> bool:
    if previous is None:
        return True
    keys = ("status", "stage", "done", "total", "llm_calls", "cached_calls", "result_id", "error", "attempts")
    return any(previous[k] != current[k] for k in keys)


def _resume_from(request: Request) -> int:
    """The last event id a reconnecting EventSource saw (Last-Event-ID); 0 for a new or foreign stream."""
    last = request.headers.get("last-event-id", "")
    return int(last) if last.isdigit() and len(last) < 12 else 0


async def job_events(request: Request, principal: Principal, job_id: str) -> AsyncIterator[dict[str, Any]]:
    """One `progress` event per change of the job row, then one `end` event at a terminal state.

    While a question is answered, `answer` events carry the text the model has written since the last
    one (`{"text": ..., "restart": bool}`; `restart`: the text so far of a new attempt, or of a new answer
    the reader started over with (a second hop), which replaces what came before; its text may be empty),
    a preview the stored answer replaces at `end`. Questions about a document or a collection stream so.

    Changes are pushed (`api.events`): the stream sleeps until the process's subscriber hands it the
    row it read for a notice or for its periodic refresh, and reads the row itself only when that
    stalls (every `POLL_S` while the subscriber is down). A reconnecting client gets the current row at once and the answer text so far
    (`restart`, replacing its preview); with `Last-Event-ID` the event ids go on from the last it saw.
    """
    sequence = _resume_from(request)
    previous: dict[str, Any] | None = None
    written, attempt, restart = 0, None, True
    hub = events.hub(job_row)
    watch = hub.watch(job_id)  # before the first read, so no change falls between the two
    try:
        current = await run_in_threadpool(_snapshot, principal, job_id)
        while True:
            terminal = current["status"] in {s.value for s in jobs.TERMINAL}
            if current["kind"] in ANSWERING and current["status"] == "running":
                if current["attempts"] != attempt:  # a resumed job writes its answer afresh
                    written, attempt, restart = 0, current["attempts"], True
                text, written = await run_in_threadpool(answer_stream.read_from, job_id, current["attempts"], written)
                text, replaced = after_restart(text)  # a reader that started its answer over
                if text or replaced:
                    sequence += 1
                    data = json.dumps({"text": text, "restart": restart or replaced})
                    yield {"event": "answer", "id": str(sequence), "data": data}
                    restart = False
            if _changed(previous, current) or terminal:
                sequence += 1
                event = "end" if terminal else "progress"
                yield {"event": event, "id": str(sequence), "data": json.dumps(current)}
                previous = current
            if terminal or await request.is_disconnected():
                return
            row, answer_grew = await watch.next(STALL_S if hub.connected.is_set() else POLL_S)
            if row is not None:
                current = row
            elif not answer_grew:  # no notice in time: read the row ourselves
                current = await run_in_threadpool(_snapshot, principal, job_id)
    finally:
        hub.unwatch(watch)


@router.post("/{job_id}/stream-token", response_model=StreamTokenOut)
@releases_session
def stream_token(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> StreamTokenOut:
    """A short-lived token that opens this job's event stream (for browsers, which cannot send headers)."""
    job = owned_job(session, principal, job_id)
    token, expires = stream_tokens.issue(job.id, principal.tenant_id)
    return StreamTokenOut(
        token=token,
        expires_at=datetime.fromtimestamp(expires, UTC),
        events_url=f"/v1/jobs/{job.id}/events?token={token}",
    )


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def stream_job(job_id: str, request: Request, principal: StreamPrincipal) -> EventSourceResponse:
    """Server-Sent Events: `progress` on every change, a final `end` with the terminal state.

    Send the key as a header, or (browsers' EventSource cannot) `?token=` from `POST .../stream-token`.
    """
    await run_in_threadpool(_snapshot, principal, job_id)  # 404 before the stream starts
    return EventSourceResponse(job_events(request, principal, job_id), ping=PING_S)
