"""Follow-up questions: what a question asked within a conversation gets from the turns before it.

Two things, both from prompt files: retrieval and navigation read with the question rewritten to stand
on its own (`followup_question`: "why did he?" becomes "why did Anders Holm build the lighthouse?"),
and the answering prompts get the recent turns through their `conversation` placeholder
(`conversation_turns`), so the answer can refer back to them. A first question gets neither: its
prompts are exactly those of a question asked alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from longread.llm import LLMClient
from longread.llm.prompts import render_prompt
from longread.storage.models import LOCAL_TENANT, Answer, CollectionAnswer, Conversation, utcnow

RECENT_TURNS = 3
TITLE_CHARS = 120
ANSWER_CHARS = 600
REWRITE_TOKENS = 96
_LABELS = re.compile(r"\s*\[(?:\s*S?\d+\s*[,;]?)+\]")


def new_thread(
    session: Session,
    question: str,
    *,
    tenant_id: str = LOCAL_TENANT,
    document_id: str | None = None,
    collection_id: str | None = None,
) -> Conversation:
    """A new thread about one document or one collection, titled by its first question, stored."""
    if (document_id is None) == (collection_id is None):
        raise ValueError("a thread is about one document or one collection")
    title = " ".join(question.split())
    title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    thread = Conversation(tenant_id=tenant_id, document_id=document_id, collection_id=collection_id, title=title)
    session.add(thread)
    session.commit()
    session.refresh(thread)
    return thread


class NoSuchThread(ValueError):
    """The named conversation does not exist for this tenant."""


class OtherSubject(ValueError):
    """The named conversation is about another document or collection."""


def join_thread(
    session: Session,
    conversation_id: str | None,
    question: str,
    *,
    tenant_id: str = LOCAL_TENANT,
    document_id: str | None = None,
    collection_id: str | None = None,
) -> Conversation:
    """The thread a question joins: the named one (of this same document or collection), or a new one.

    Raises NoSuchThread for an id this tenant has no conversation under, OtherSubject for one about
    something else; the caller turns them into its own kind of refusal (HTTP 404/422, a CLI exit).
    """
    if conversation_id is None:
        return new_thread(session, question, tenant_id=tenant_id, document_id=document_id, collection_id=collection_id)
    thread = session.get(Conversation, conversation_id)
    if thread is None or thread.tenant_id != tenant_id:
        raise NoSuchThread(f"{conversation_id}: no such conversation")
    if (thread.document_id, thread.collection_id) != (document_id, collection_id):
        kind = "collection" if collection_id is not None else "document"
        raise OtherSubject(f"conversation '{conversation_id}' is about another {kind}")
    thread.updated_at = utcnow()
    session.add(thread)
    session.commit()
    session.refresh(thread)
    return thread


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


def recent_turns(session: Session, conversation_id: str, limit: int = RECENT_TURNS) -> list[Turn]:
    """The last `limit` answered questions of a thread, oldest first, answers without citation labels.

    A thread about a document holds `Answer` rows, one about a collection `CollectionAnswer` rows; both
    are read, so one function serves either. Labels ([S3], or a collection answer's [2]) are dropped:
    they name passages of the earlier reading, which the new prompt does not show.
    """
    rows: list[tuple[datetime, str, str]] = []
    for table in (Answer, CollectionAnswer):
        query = (
            select(table.created_at, table.question, table.answer)
            .where(table.conversation_id == conversation_id, col(table.question).is_not(None), table.question != "")
            .order_by(col(table.created_at).desc())
            .limit(limit)
        )
        rows.extend((created, str(question), answer) for created, question, answer in session.exec(query))
    rows.sort(key=lambda row: row[0])
    turns = []
    for _, question, answer in rows[-limit:]:
        text = " ".join(_LABELS.sub("", answer).split())
        turns.append(Turn(question, text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"))
    return turns


def conversation_context(turns: list[Turn]) -> str:
    """What answering prompts show in their `conversation` placeholder ("" for a first question)."""
    return render_prompt("conversation_turns", turns=turns) if turns else ""


def standalone_question(client: LLMClient, turns: list[Turn], question: str) -> str:
    """The follow-up rewritten with the turns before it; the question itself when there are none.

    A reply that is empty or runs on (a model that answers instead of rewriting) falls back to the
    follow-up after the latest earlier question, which still carries its names into retrieval.
    """
    if not turns:
        return question
    reply = client.complete("followup_question", max_tokens=REWRITE_TOKENS, turns=turns, question=question).text
    line = next((part.strip() for part in reply.strip().splitlines() if part.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.I).strip().strip('"')
    if not line or len(line) > 4 * len(question) + 200:
        return f"{turns[-1].question} {question}"
    return line
