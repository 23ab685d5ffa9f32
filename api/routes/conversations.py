"""A document's reading room: its running jobs (so a page can re-attach), and its conversations.

A conversation is a thread of questions about one document or one collection. Each question names its
thread (a new one starts when it names none); the worker reads follow-ups with the thread's recent turns,
and the thread exports as Markdown with its citations (a collection's name the document they quote).
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
from longread.api.schemas import AnswerOut, CollectionAnswerOut, ConversationDetail, ConversationOut, JobOut
from longread.api.security import Principal
from longread.api.service import owned_collection, owned_document
from longread.conversation import NoSuchThread, OtherSubject, join_thread
from longread.storage.models import Answer, Collection, CollectionAnswer, Conversation, Document, Job, JobStatus

router = APIRouter(tags=["conversations"])

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.INTERRUPTED)
_BRACKET = re.compile(r"\[((?:\s*S\d+\s*[,;]?)+)\]")
_NUMBERED = re.compile(r"\[((?:\s*\d+\s*[,;]?)+)\]")


def owned_conversation(session: Session, principal: Principal, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.tenant_id != principal.tenant_id:
        raise not_found("conversation", conversation_id)
    return conversation


def thread_for_question(
    session: Session,
    principal: Principal,
    subject: Document | Collection,
    conversation_id: str | None,
    question: str,
) -> Conversation:
    """The thread a new question joins: the named one (of this document or collection), or a new one
    titled by the question."""
    is_collection = isinstance(subject, Collection)
    try:
        return join_thread(
            session,
            conversation_id,
            question,
            tenant_id=principal.tenant_id,
            document_id=None if is_collection else subject.id,
            collection_id=subject.id if is_collection else None,
        )
    except NoSuchThread:
        raise not_found("conversation", str(conversation_id)) from None
    except OtherSubject as exc:
        raise ApiError(422, "conversation_mismatch", str(exc)) from None


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
        collection_id=conversation.collection_id,
        title=conversation.title,
        turns=turns,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


def _threads(session: Session, principal: Principal, about: Document | Collection, limit: int) -> list[ConversationOut]:
    """The threads about one document or collection with their turn counts, most recently continued first."""
    table: type[Answer] | type[CollectionAnswer] = CollectionAnswer if isinstance(about, Collection) else Answer
    owner = Conversation.collection_id if isinstance(about, Collection) else Conversation.document_id
    turns = (
        select(table.conversation_id, func.count().label("n"))
        .where(col(table.conversation_id).is_not(None))
        .group_by(col(table.conversation_id))
        .subquery()
    )
    rows = session.exec(
        select(Conversation, func.coalesce(turns.c.n, 0))
        .outerjoin(turns, turns.c.conversation_id == Conversation.id)
        .where(owner == about.id, Conversation.tenant_id == principal.tenant_id)
        .order_by(col(Conversation.updated_at).desc())
        .limit(limit)
    ).all()
    return [_conversation_out(conversation, int(n)) for conversation, n in rows]


@router.get("/v1/documents/{document_id}/conversations", response_model=list[ConversationOut])
@releases_session
def list_conversations(
    document_id: str, session: SessionDep, principal: CurrentPrincipal, limit: int = Query(20, ge=1, le=100)
) -> list[ConversationOut]:
    """A document's threads, most recently continued first."""
    return _threads(session, principal, owned_document(session, principal, document_id), limit)


@router.get("/v1/collections/{collection_id}/conversations", response_model=list[ConversationOut])
@releases_session
def list_collection_conversations(
    collection_id: str, session: SessionDep, principal: CurrentPrincipal, limit: int = Query(20, ge=1, le=100)
) -> list[ConversationOut]:
    """A collection's threads (questions asked across its documents), most recently continued first."""
    return _threads(session, principal, owned_collection(session, principal, collection_id), limit)


def _turns(session: Session, conversation: Conversation) -> list[Answer] | list[CollectionAnswer]:
    if conversation.collection_id is not None:
        query = (
            select(CollectionAnswer)
            .where(CollectionAnswer.conversation_id == conversation.id)
            .order_by(col(CollectionAnswer.created_at))
        )
        return list(session.exec(query))
    return list(
        session.exec(select(Answer).where(Answer.conversation_id == conversation.id).order_by(col(Answer.created_at)))
    )


def _answer_out(answer: Answer | CollectionAnswer) -> AnswerOut | CollectionAnswerOut:
    return CollectionAnswerOut.of(answer) if isinstance(answer, CollectionAnswer) else AnswerOut.of(answer)


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationDetail)
@releases_session
def get_conversation(conversation_id: str, session: SessionDep, principal: CurrentPrincipal) -> ConversationDetail:
    """A thread with its answers, oldest first (continue it by asking with its `conversation_id`)."""
    conversation = owned_conversation(session, principal, conversation_id)
    answers = _turns(session, conversation)
    out = _conversation_out(conversation, len(answers))
    return ConversationDetail(**out.model_dump(), items=[_answer_out(answer) for answer in answers])


def _markdown_answer(answer: Answer | CollectionAnswer) -> list[str]:
    """The answer with its citation marks as numbered references, then those references with their quotes.

    A document's answer marks passages by label ([S3]); a collection's by citation number ([2]), and each
    of its references names the document it quotes."""
    numbers: dict[str, list[int]] = {}
    for citation in answer.citations:
        key = str(citation["n"]) if isinstance(answer, CollectionAnswer) else str(citation["label"])
        numbers.setdefault(key, []).append(int(citation["n"]))

    def refs(match: re.Match[str]) -> str:
        cited = [n for key in re.findall(r"S?\d+", match.group(1)) for n in numbers.get(key, [])]
        return "".join(f"[^{n}]" for n in cited) if cited else match.group(0)

    marks = _NUMBERED if isinstance(answer, CollectionAnswer) else _BRACKET
    lines = [marks.sub(refs, answer.answer).strip(), ""]
    lines.append(f"*{answer.strategy}, {answer.model}*")
    lines.append("")
    for citation in answer.citations:
        quote = " ".join(str(citation["quote"]).split())
        source = f"*{citation['filename']}*, " if citation.get("filename") else ""
        page = f"page {citation['page']}, " if citation.get("page") is not None else ""
        lines.append(
            f"[^{citation['n']}]: “{quote}” ({source}{page}passage {citation['label']}, "
            f"characters {citation['start']}–{citation['end']})"
        )
    return lines


def conversation_markdown(
    conversation: Conversation, subject: Document | Collection, answers: list[Answer] | list[CollectionAnswer]
) -> str:
    about = (
        f"Across the collection *{subject.name}*."
        if isinstance(subject, Collection)
        else f"About *{subject.filename}*."
    )
    lines: list[Any] = [f"# {conversation.title or 'Conversation'}", "", about, ""]
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
    subject: Document | Collection = (
        owned_collection(session, principal, conversation.collection_id)
        if conversation.collection_id is not None
        else owned_document(session, principal, str(conversation.document_id))
    )
    text = conversation_markdown(conversation, subject, _turns(session, conversation))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", conversation.title)[:60].strip("-") or "conversation"
    return PlainTextResponse(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.md"'},
    )
