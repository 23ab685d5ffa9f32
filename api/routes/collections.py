"""Collections: named sets of a tenant's documents, questions asked across all of them at once, and summaries.

The same jobs, events, caps and dry runs as a single document's questions; another tenant's
collection (or document) is a 404, like a missing one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from longread import collection_reading
from longread.agents import registry
from longread.api.deps import CurrentPrincipal, SessionDep, releases_session
from longread.api.errors import ApiError
from longread.api.routes.conversations import thread_for_question
from longread.api.schemas import (
    CollectionAnswerOut,
    CollectionDetail,
    CollectionDocumentOut,
    CollectionIn,
    CollectionJobOut,
    CollectionOut,
    CollectionPlanOut,
    CollectionQuestionIn,
    CollectionSummaryIn,
    CollectionSummaryPlanOut,
    IndexJobOut,
    JobOut,
    MembersIn,
)
from longread.api.security import Principal
from longread.api.service import index_joined, owned_collection, resolve_model, submit
from longread.conversation import recent_turns
from longread.llm.usage import Budget
from longread.storage import collections, jobs
from longread.storage.db import session_scope
from longread.storage.models import Collection, CollectionAnswer, Job, JobKind

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def _detail(session: Session, collection: Collection, indexing: list[Job] | None = None) -> CollectionDetail:
    listed = collections.members(session, collection.id)
    return CollectionDetail(
        id=collection.id,
        name=collection.name,
        n_documents=len(listed),
        created_at=jobs.as_utc(collection.created_at),
        documents=[
            CollectionDocumentOut(document_id=m.document_id, filename=m.filename, n_tokens=m.n_tokens) for m in listed
        ],
        indexing=[IndexJobOut(document_id=str(j.document_id), job_id=j.id) for j in indexing or []],
    )


def _refused(exc: collections.CollectionError) -> ApiError:
    # A document of another tenant reads as missing, like the document routes' 404.
    code = 404 if exc.code == "document_not_found" else 409 if exc.code == "collection_exists" else 422
    return ApiError(code, "not_found" if code == 404 else exc.code, str(exc))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CollectionDetail)
@releases_session
def create_collection(body: CollectionIn, session: SessionDep, principal: CurrentPrincipal) -> CollectionDetail:
    """Create a collection, optionally with its first documents (ids of the tenant's documents).

    Each document without a retrieval index gets an index job (listed in `indexing`)."""
    try:
        created = collections.create_collection(session, body.name, body.document_ids, tenant_id=principal.tenant_id)
    except collections.CollectionError as exc:
        session.rollback()
        raise _refused(exc) from None
    return _detail(session, created, index_joined(session, principal, collections.member_ids(session, created.id)))


@router.get("", response_model=list[CollectionOut])
@releases_session
def list_collections(session: SessionDep, principal: CurrentPrincipal) -> list[CollectionOut]:
    """The tenant's collections by name, with how many documents each holds."""
    return [
        CollectionOut(id=c.id, name=c.name, n_documents=n, created_at=jobs.as_utc(c.created_at))
        for c, n in collections.list_collections(session, tenant_id=principal.tenant_id)
    ]


@router.get("/{collection_id}", response_model=CollectionDetail)
@releases_session
def get_collection(collection_id: str, session: SessionDep, principal: CurrentPrincipal) -> CollectionDetail:
    """A collection (by id or name) and its documents."""
    return _detail(session, owned_collection(session, principal, collection_id))


@router.delete("/{collection_id}", status_code=status.HTTP_204_NO_CONTENT)
@releases_session
def delete_collection(collection_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Delete a collection and its answers; its documents stay."""
    collections.delete_collection(session, owned_collection(session, principal, collection_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{collection_id}/documents", response_model=CollectionDetail)
@releases_session
def add_documents(
    collection_id: str, body: MembersIn, session: SessionDep, principal: CurrentPrincipal
) -> CollectionDetail:
    """Add documents; already members are skipped. A joining document without a retrieval index gets an
    index job (listed in `indexing`): only the new documents' indexes are built, never the members'."""
    collection = owned_collection(session, principal, collection_id)
    before = set(collections.member_ids(session, collection.id))
    try:
        collections.add_documents(session, collection, body.document_ids)
    except collections.CollectionError as exc:
        session.rollback()
        raise _refused(exc) from None
    joined = [d for d in collections.member_ids(session, collection.id) if d not in before]
    return _detail(session, collection, index_joined(session, principal, joined))


@router.delete("/{collection_id}/documents/{document_id}", response_model=CollectionDetail)
@releases_session
def remove_document(
    collection_id: str, document_id: str, session: SessionDep, principal: CurrentPrincipal
) -> CollectionDetail:
    """Remove a document from the collection (the document stays stored; its retrieval index goes when it
    is in no other collection)."""
    collection = owned_collection(session, principal, collection_id)
    if not collections.remove_documents(session, collection, [document_id]):
        raise ApiError(404, "not_found", f"no document '{document_id}' in this collection")
    return _detail(session, collection)


@router.get("/{collection_id}/answers", response_model=list[CollectionAnswerOut])
@releases_session
def list_answers(
    collection_id: str, session: SessionDep, principal: CurrentPrincipal, limit: int = Query(20, ge=1, le=100)
) -> list[CollectionAnswerOut]:
    """Answers stored for the collection, newest first."""
    collection = owned_collection(session, principal, collection_id)
    rows = session.exec(
        select(CollectionAnswer)
        .where(CollectionAnswer.collection_id == collection.id)
        .order_by(col(CollectionAnswer.created_at).desc())
        .limit(limit)
    )
    return [CollectionAnswerOut.of(a) for a in rows]


def _submit(collection_id: str, body: CollectionQuestionIn, principal: Principal) -> JobOut:
    with session_scope() as session:
        collection = owned_collection(session, principal, collection_id)
        return JobOut.of(collection_question_job(session, principal, collection, body))


def collection_question_job(
    session: Session, principal: Principal, collection: Collection, body: CollectionQuestionIn
) -> Job:
    """Queue a question across a collection in its thread (the named one, or a new one); REST and MCP share it."""
    listed = collections.members(session, collection.id)
    if not listed:
        raise ApiError(422, "empty_collection", "the collection has no documents; add some first")
    try:
        order = collection_reading.reading_order(listed, body.order) if body.order else None
    except ValueError:
        raise ApiError(422, "order_not_members", "the order names documents that are not in the collection") from None
    question = body.question.strip()
    # A question joins the named thread of this collection, or starts one: follow-ups read its turns.
    thread = thread_for_question(session, principal, collection, body.conversation_id, question)
    model = resolve_model(body.model)
    # auto resolves here, so the job goes to the queue of the reader that will run it
    planned = collection_reading.resolve_strategy(session, collection, question, body.strategy, model, None)
    # ...except for a follow-up ("and his sister?"): the worker plans again with it rewritten to stand
    # alone; the queue is the best guess from the words it has.
    follow_up = body.strategy == registry.AUTO and bool(recent_turns(session, thread.id, limit=1))
    params: dict[str, Any] = {
        "collection_id": collection.id,
        "question": question,
        "strategy": registry.AUTO if follow_up else planned,
        "queue_strategy": planned,
        "model": model,
        "conversation_id": thread.id,
    } | body.caps_params()
    if order is not None:
        params["order"] = order
    return submit(session, principal, kind=JobKind.ASK_COLLECTION, document_id=None, params=params)


def _plan(collection_id: str, body: CollectionQuestionIn, principal: Principal) -> CollectionPlanOut:
    with session_scope() as session:
        collection = owned_collection(session, principal, collection_id)
        model = resolve_model(body.model)
        capped = Budget(max_cost_usd=body.max_cost_usd, max_seconds=body.max_seconds, max_tokens=body.max_tokens)
        if body.order:
            try:
                collection_reading.reading_order(collections.members(session, collection.id), body.order)
            except ValueError:
                raise ApiError(
                    422, "order_not_members", "the order names documents that are not in the collection"
                ) from None
        planned = collection_reading.plan_collection(
            session,
            collection,
            body.strategy,
            model,
            question=body.question,
            caps=capped if capped.capped else None,
            order=body.order,
        )
        return CollectionPlanOut(**planned)


def _finished(job_id: str) -> CollectionJobOut | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.status not in jobs.TERMINAL:
            return None
        answer = session.get(CollectionAnswer, job.result_id) if job.result_id else None
        return CollectionJobOut(
            **JobOut.of(job).model_dump(), answer=CollectionAnswerOut.of(answer) if answer else None
        )


@router.post(
    "/{collection_id}/questions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CollectionJobOut | CollectionPlanOut,
    responses={200: {"description": "the answer (finished within `wait`), or the estimate of a dry run"}},
)
async def ask_collection(
    collection_id: str,
    body: CollectionQuestionIn,
    response: Response,
    principal: CurrentPrincipal,
    wait: float = Query(0, ge=0, le=30, description="hold the request up to this many seconds for the answer"),
) -> CollectionJobOut | CollectionPlanOut:
    """Ask across every document of the collection; 202 with the job, or 200 with the answer within `wait`.

    Citations name their document (id and filename). With `"dry_run": true`: 200 with the estimate.
    """
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
        return await run_in_threadpool(_plan, collection_id, body, principal)
    job = await run_in_threadpool(_submit, collection_id, body, principal)
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        finished = await run_in_threadpool(_finished, job.id)
        if finished is not None:
            response.status_code = status.HTTP_200_OK
            return finished
    return CollectionJobOut(**job.model_dump())


def _submit_summary(collection_id: str, body: CollectionSummaryIn, principal: Principal) -> JobOut:
    with session_scope() as session:
        collection = owned_collection(session, principal, collection_id)
        if not collections.member_ids(session, collection.id):
            raise ApiError(422, "empty_collection", "the collection has no documents; add some first")
        params = {
            "collection_id": collection.id,
            "strategy": body.strategy.value,
            "model": resolve_model(body.model),
        } | body.caps_params()
        job = submit(session, principal, kind=JobKind.SUMMARIZE_COLLECTION, document_id=None, params=params)
        return JobOut.of(job)


def _plan_summary(collection_id: str, body: CollectionSummaryIn, principal: Principal) -> CollectionSummaryPlanOut:
    with session_scope() as session:
        collection = owned_collection(session, principal, collection_id)
        model = resolve_model(body.model)
        estimate = collection_reading.plan_collection_summary(session, collection, body.strategy.value, model)
        return CollectionSummaryPlanOut(**estimate)


@router.post(
    "/{collection_id}/summaries",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CollectionJobOut | CollectionSummaryPlanOut,
    responses={200: {"description": "the summary (finished within `wait`), or the estimate of a dry run"}},
)
async def summarize_collection(
    collection_id: str,
    response: Response,
    principal: CurrentPrincipal,
    body: CollectionSummaryIn | None = None,
    wait: float = Query(0, ge=0, le=30, description="hold the request up to this many seconds for the summary"),
) -> CollectionJobOut | CollectionSummaryPlanOut:
    """Summarise every document of the collection and the whole; 202 with the job, or 200 within `wait`.

    The result (`kind` summary) carries one summary per document (`summaries`, each also stored as that
    document's own summary) and the overall summary as its text. With `"dry_run": true`: 200 with the estimate.
    """
    body = body or CollectionSummaryIn()
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
        return await run_in_threadpool(_plan_summary, collection_id, body, principal)
    job = await run_in_threadpool(_submit_summary, collection_id, body, principal)
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        finished = await run_in_threadpool(_finished, job.id)
        if finished is not None:
            response.status_code = status.HTTP_200_OK
            return finished
    return CollectionJobOut(**job.model_dump())
