"""Documents: upload (deduplicated), list, read, delete, text spans; and the jobs that read them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from longread import engine
from longread.api.deps import CurrentPrincipal, SessionDep, releases_session
from longread.api.errors import ApiError, not_found
from longread.api.routes.conversations import thread_for_question
from longread.api.schemas import (
    AnswerOut,
    DocumentDetail,
    DocumentOut,
    DocumentPage,
    JobOut,
    JobWithAnswer,
    PlanOut,
    QuestionIn,
    SummaryIn,
    TextOut,
    UploadOut,
    json_response,
)
from longread.api.security import Principal
from longread.api.service import latest_job, owned_document, resolve_model, submit
from longread.api.uploads import Upload, receive_upload
from longread.config import get_settings
from longread.ingest import IngestError, read_document
from longread.llm import LLMClient
from longread.llm.usage import Budget
from longread.storage import jobs
from longread.storage.db import session_scope
from longread.storage.models import Answer, Conversation, Document, Job, JobKind, Segment, Tree, TreeNode

router = APIRouter(prefix="/v1/documents", tags=["documents"])

MAX_TEXT_SPAN = 200_000
# Offsets are 64-bit integers in SQL; anything past this is no page of a real list and no character
# of a stored text, and must be refused before it reaches the database as an out-of-range value.
MAX_OFFSET = 2**31 - 1
UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _store(upload: Upload, principal: Principal) -> tuple[UploadOut, bool]:
    try:
        loaded = read_document(upload.filename, upload.path.read_bytes())
    except IngestError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    with session_scope() as session:
        try:
            document, created = engine.store_text(
                session,
                filename=upload.filename,
                text=loaded.text,
                tenant_id=principal.tenant_id,
                page_starts=loaded.page_starts,
            )
        except IntegrityError:  # the same content uploaded concurrently: the other request stored it
            session.rollback()
            document, created = engine.store_text(
                session, filename=upload.filename, text=loaded.text, tenant_id=principal.tenant_id
            )
        if not created:
            previous = latest_job(session, document.id, JobKind.INGEST)
            return UploadOut(
                document_id=document.id, job_id=previous.id if previous else None, deduplicated=True
            ), False
        job = submit(session, principal, kind=JobKind.INGEST, document_id=document.id, params={})
        return UploadOut(document_id=document.id, job_id=job.id, deduplicated=False), True


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadOut,
    openapi_extra=UPLOAD_SCHEMA,
    responses={200: {"model": UploadOut, "description": "same content uploaded before"}},
)
async def upload_document(request: Request, response: Response, principal: CurrentPrincipal) -> UploadOut:
    """Upload a document (PDF, DOCX, EPUB, HTML, Markdown, text) as multipart field `file`."""
    settings = get_settings()
    upload = await receive_upload(
        request, limit=settings.UPLOAD_MAX_BYTES, directory=settings.DATA_DIR.resolve() / "uploads"
    )
    try:
        out, created = await run_in_threadpool(_store, upload, principal)
    finally:
        upload.discard()
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("", response_model=DocumentPage)
@releases_session
def list_documents(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    """List your documents, newest first."""
    where = col(Document.tenant_id) == principal.tenant_id
    total = session.exec(select(func.count()).select_from(Document).where(where)).one()
    # Select the columns, not the rows: a row carries the whole text.
    # sqlalchemy's select: sqlmodel's typed overloads stop at four columns.
    rows = session.execute(
        sa_select(
            col(Document.id),
            col(Document.filename),
            col(Document.n_chars),
            col(Document.n_tokens),
            col(Document.created_at),
        )
        .where(where)
        .order_by(col(Document.created_at).desc(), col(Document.id))
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        DocumentOut(id=r[0], filename=r[1], n_chars=r[2], n_tokens=r[3], created_at=jobs.as_utc(r[4])) for r in rows
    ]
    return json_response(DocumentPage(items=items, total=int(total), limit=limit, offset=offset))


@router.get("/{document_id}", response_model=DocumentDetail)
@releases_session
def get_document(document_id: str, session: SessionDep, principal: CurrentPrincipal) -> DocumentDetail:
    """Get a document's metadata and its ingest job."""
    document = owned_document(session, principal, document_id)
    ingest = latest_job(session, document.id, JobKind.INGEST)
    return DocumentDetail(**DocumentOut.of(document).model_dump(), ingest_job_id=ingest.id if ingest else None)


def _delete_document(session: Session, document: Document) -> None:
    for job in session.exec(select(Job).where(Job.document_id == document.id)):
        jobs.request_cancel(session, job)
    tree_ids = list(session.exec(select(Tree.id).where(Tree.document_id == document.id)))
    if tree_ids:
        session.execute(delete(TreeNode).where(col(TreeNode.tree_id).in_(tree_ids)))
        session.execute(delete(Tree).where(col(Tree.id).in_(tree_ids)))
    session.execute(delete(Segment).where(col(Segment.document_id) == document.id))
    session.execute(delete(Answer).where(col(Answer.document_id) == document.id))
    session.execute(delete(Conversation).where(col(Conversation.document_id) == document.id))
    session.execute(delete(Job).where(col(Job.document_id) == document.id))
    session.execute(delete(Document).where(col(Document.id) == document.id))
    session.commit()


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
@releases_session
def delete_document(document_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Delete a document with its segments, trees, answers and jobs (running jobs are canceled)."""
    _delete_document(session, owned_document(session, principal, document_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{document_id}/text", response_model=TextOut)
@releases_session
def get_text(
    document_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    start: int = Query(0, ge=0, le=MAX_OFFSET),
    end: int | None = Query(None, ge=0, le=MAX_OFFSET, description="exclusive; start + 10,000 when unset"),
) -> Response:
    """A span of the normalised text (citation offsets point into it)."""
    # The owner and length only: the row's whole text is read just for the span, by the database.
    owner = session.exec(select(Document.tenant_id, Document.n_chars).where(Document.id == document_id)).first()
    if owner is None or owner[0] != principal.tenant_id:
        raise not_found("document", document_id)
    n_chars = owner[1]
    end = min(n_chars, start + 10_000) if end is None else end
    if start > end or end > n_chars or end - start > MAX_TEXT_SPAN:
        raise ApiError(400, "bad_range", f"need 0 <= start <= end <= {n_chars} and at most {MAX_TEXT_SPAN} characters")
    text = session.exec(
        select(func.substr(Document.text, start + 1, end - start)).where(Document.id == document_id)
    ).one()
    return json_response(TextOut(document_id=document_id, start=start, end=end, n_chars=n_chars, text=text or ""))


def _submit_question(document_id: str, body: QuestionIn, principal: Principal) -> JobOut:
    with session_scope() as session:
        return JobOut.of(question_job(session, principal, owned_document(session, principal, document_id), body))


def question_job(session: Session, principal: Principal, document: Document, body: QuestionIn) -> Job:
    """Queue a question about a document in its thread (the named one, or a new one); REST and MCP share it."""
    question = body.question.strip()
    model = resolve_model(body.model)
    thread = thread_for_question(session, principal, document, body.conversation_id, question)
    params: dict[str, Any] = {
        "question": question,
        "strategy": body.strategy.value,
        "model": model,
        "conversation_id": thread.id,
    }
    params |= body.caps_params()
    if body.stay_local is not None:
        params["stay_local"] = body.stay_local
    return submit(session, principal, kind=JobKind.ASK, document_id=document.id, params=params)


def _job_with_answer(job_id: str) -> JobWithAnswer | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.status not in jobs.TERMINAL:
            return None
        answer = session.get(Answer, job.result_id) if job.result_id else None
        return JobWithAnswer(**JobOut.of(job).model_dump(), answer=AnswerOut.of(answer) if answer else None)


def _plan_question(document_id: str, body: QuestionIn, principal: Principal) -> PlanOut:
    """The plan a question would be read with: estimates only, no model call, no job, no thread."""
    with session_scope() as session:
        document = owned_document(session, principal, document_id)
        caps = body.caps_params()
        plan = engine.route_question(
            session,
            document,
            body.question.strip(),
            body.strategy.value,
            LLMClient(resolve_model(body.model)),
            caps=Budget(**caps) if caps else None,  # type: ignore[arg-type]  # the keys are Budget's fields
            stay_local=body.stay_local,
        )
        return PlanOut(document_id=document.id, **plan.as_dict())


@router.post(
    "/{document_id}/questions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobWithAnswer | PlanOut,
    responses={200: {"description": "the answer (finished within `wait`), or the plan of a dry run"}},
)
async def ask_question(
    document_id: str,
    body: QuestionIn,
    response: Response,
    principal: CurrentPrincipal,
    wait: float = Query(0, ge=0, le=30, description="hold the request up to this many seconds for the answer"),
) -> JobWithAnswer | PlanOut:
    """Ask a question; 202 with the job, or 200 with the answer when it finished within `wait`.

    With `"dry_run": true`: 200 with the plan (estimated calls, tokens, cost and seconds per strategy, and the
    one auto would pick); no job starts and no model is called.
    """
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
        return await run_in_threadpool(_plan_question, document_id, body, principal)
    job = await run_in_threadpool(_submit_question, document_id, body, principal)
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        finished = await run_in_threadpool(_job_with_answer, job.id)
        if finished is not None:
            response.status_code = status.HTTP_200_OK
            return finished
    return JobWithAnswer(**job.model_dump())


@router.post("/{document_id}/summaries", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
@releases_session
def summarize_document(
    document_id: str, session: SessionDep, principal: CurrentPrincipal, body: SummaryIn | None = None
) -> JobOut:
    """Start a background summary (summary tree or chain of agents); the job's result is an answer id."""
    body = body or SummaryIn()
    document = owned_document(session, principal, document_id)
    params = {"strategy": body.strategy.value, "model": resolve_model(body.model)} | body.caps_params()
    return JobOut.of(submit(session, principal, kind=JobKind.SUMMARIZE, document_id=document.id, params=params))


@router.get("/{document_id}/answers", response_model=list[AnswerOut])
@releases_session
def list_answers(
    document_id: str, session: SessionDep, principal: CurrentPrincipal, limit: int = Query(20, ge=1, le=100)
) -> list[AnswerOut]:
    """Answers and summaries stored for a document, newest first."""
    document = owned_document(session, principal, document_id)
    rows = session.exec(
        select(Answer).where(Answer.document_id == document.id).order_by(col(Answer.created_at).desc()).limit(limit)
    )
    return [AnswerOut.of(answer) for answer in rows]
