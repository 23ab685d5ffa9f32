"""A document's reading room: its running jobs (so a page can re-attach), and its conversations.

A conversation is a thread of questions about one document. Each question names its thread (a new
one starts when it names none); the worker reads follow-ups with the thread's recent turns, and the
thread exports as Markdown with its citations.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

from longread.api.deps import CurrentPrincipal, SessionDep, releases_session
from longread.api.errors import ApiError, not_found
from longread.api.schemas import AnswerOut, ConversationDetail, ConversationOut, JobOut
from longread.api.security import Principal
from longread.api.service import owned_document
from longread.storage.models import Answer, Conversation, Document, Job, JobStatus, utcnow

router = APIRouter(tags=["conversations"])

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.INTERRUPTED)
TITLE_CHARS = 120
_BRACKET = re.compile(r"\[((?:\s*S\d+\s*[,;]?)+)\]")


def owned_conversation(session: Session, principal: Principal, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.tenant_id != principal.tenant_id:
        raise not_found("conversation", conversation_id)
    return conversation


def thread_for_question(
    session: Session, principal: Principal, document: Document, conversation_id: str | None, question: str
) -> Conversation:
    """The thread a new question joins: the named one (of this document), or a new one titled by it."""
    if conversation_id is not None:
        conversation = owned_conversation(session, principal, conversation_id)
        if conversation.document_id != document.id:
            raise ApiError(422, "conversation_mismatch", f"conversation '{conversation_id}' is about another document")
        conversation.updated_at = utcnow()
    else:
        title = " ".join(question.split())
        title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
        conversation = Conversation(tenant_id=principal.tenant_id, document_id=document.id, title=title)
    session.add(conversation)
    session.commit()
    session.refresh(conversation)
    return conversation


def _statuses(status: str) -> list[JobStatus]:
    """`active` (queued, running or interrupted: what a page re-attaches to), or comma-separated statuses."""
    chosen: list[JobStatus] = []
    for name in (part.strip() for part in status.split(",") if part.strip()):
        if name == "active":
            chosen.extend(ACTIVE)
            continue
        try:
            chosen.append(JobStatus(name))
        except ValueError as exc:
            known = ", ".join(["active", *(s.value for s in JobStatus)])
            raise ApiError(422, "bad_status", f"unknown job status '{name}' (choose from {known})") from exc
    return chosen


@router.get("/v1/documents/{document_id}/jobs", response_model=list[JobOut])
@releases_session
def document_jobs(
    document_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    status: str = Query("active", description="`active` (queued, running, interrupted) or statuses, comma-separated"),
    limit: int = Query(20, ge=1, le=100),
) -> list[JobOut]:
    """A document's jobs in one status set, oldest first: a page re-attaches to each on load."""
    document = owned_document(session, principal, document_id)
    query = (
        select(Job)
        .where(Job.document_id == document.id, Job.tenant_id == principal.tenant_id)
        .where(col(Job.status).in_(_statuses(status)))
        .order_by(col(Job.created_at))
        .limit(limit)
    )
    return [JobOut.of(job) for job in session.exec(query)]


def _conversation_out(conversation: Conversation, turns: int) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        document_id=conversation.document_id,
        title=conversation.title,
        turns=turns,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


@router.get("/v1/documents/{document_id}/conversations", response_model=list[ConversationOut])
@releases_session
def list_conversations(
    document_id: str, session: SessionDep, principal: CurrentPrincipal, limit: int = Query(20, ge=1, le=100)
) -> list[ConversationOut]:
    """A document's threads, most recently continued first."""
    document = owned_document(session, principal, document_id)
    turns = (
        select(Answer.conversation_id, func.count().label("n"))
        .where(col(Answer.conversation_id).is_not(None))
        .group_by(col(Answer.conversation_id))
        .subquery()
    )
    rows = session.exec(
        select(Conversation, func.coalesce(turns.c.n, 0))
        .outerjoin(turns, turns.c.conversation_id == Conversation.id)
        .where(Conversation.document_id == document.id, Conversation.tenant_id == principal.tenant_id)
        .order_by(col(Conversation.updated_at).desc())
        .limit(limit)
    ).all()
    return [_conversation_out(conversation, int(n)) for conversation, n in rows]


def _turns(session: Session, conversation: Conversation) -> list[Answer]:
    query = select(Answer).where(Answer.conversation_id == conversation.id).order_by(col(Answer.created_at))
    return list(session.exec(query))


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationDetail)
@releases_session
def get_conversation(conversation_id: str, session: SessionDep, principal: CurrentPrincipal) -> ConversationDetail:
    """A thread with its answers, oldest first (continue it by asking with its `conversation_id`)."""
    conversation = owned_conversation(session, principal, conversation_id)
    answers = _turns(session, conversation)
    out = _conversation_out(conversation, len(answers))
    return ConversationDetail(**out.model_dump(), items=[AnswerOut.of(answer) for answer in answers])


def _markdown_answer(answer: Answer) -> list[str]:
    """The answer with its [S3] labels as numbered references, then those references with their quotes."""
    numbers: dict[str, list[int]] = {}
    for citation in answer.citations:
        numbers.setdefault(str(citation["label"]), []).append(int(citation["n"]))

    def refs(match: re.Match[str]) -> str:
        cited = [n for label in re.findall(r"S\d+", match.group(1)) for n in numbers.get(label, [])]
        return "".join(f"[^{n}]" for n in cited) if cited else match.group(0)

    lines = [_BRACKET.sub(refs, answer.answer).strip(), ""]
    lines.append(f"*{answer.strategy}, {answer.model}*")
    lines.append("")
    for citation in answer.citations:
        quote = " ".join(str(citation["quote"]).split())
        page = f"page {citation['page']}, " if citation.get("page") is not None else ""
        lines.append(
            f"[^{citation['n']}]: “{quote}” ({page}passage {citation['label']}, "
            f"characters {citation['start']}–{citation['end']})"
        )
    return lines


def conversation_markdown(conversation: Conversation, document: Document, answers: list[Answer]) -> str:
    lines: list[Any] = [f"# {conversation.title or 'Conversation'}", "", f"About *{document.filename}*.", ""]
    for answer in answers:
        # Each turn's footnotes are numbered from 1: prefix them with the turn so they stay unique.
        turn = len([line for line in lines if str(line).startswith("## ")]) + 1
        lines.append(f"## {answer.question or 'Summary'}")
        lines.append("")
        lines.extend(line.replace("[^", f"[^{turn}.") for line in _markdown_answer(answer))
        lines.append("")
    return "\n".join(str(line) for line in lines).rstrip() + "\n"


@router.get("/v1/conversations/{conversation_id}/export", response_class=PlainTextResponse)
@releases_session
def export_conversation(conversation_id: str, session: SessionDep, principal: CurrentPrincipal) -> PlainTextResponse:
    """The thread as Markdown: each question, its answer with numbered citations, and the quoted evidence."""
    conversation = owned_conversation(session, principal, conversation_id)
    document = owned_document(session, principal, conversation.document_id)
    text = conversation_markdown(conversation, document, _turns(session, conversation))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", conversation.title)[:60].strip("-") or "conversation"
    return PlainTextResponse(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.md"'},
    )
