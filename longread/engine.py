"""The reading engine: the CLI, the API and the workers all call these functions.

Each takes a database session and returns stored rows; progress goes to a callback, and LLM calls,
tokens and cost are accumulated in a `Usage` the caller may watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from longread.agents import registry
from longread.agents.base import AnswerDraft, ProgressFn, no_progress
from longread.agents.citations import check_citations
from longread.agents.memwalker.tree import build_tree as build_summary_tree
from longread.agents.planner import Plan, plan_question, scan_model
from longread.agents.router import Route
from longread.agents.segments import ensure_segments
from longread.conversation import conversation_context, recent_turns, standalone_question
from longread.ingest import document_id, read_document
from longread.ingest.loaders import read_path
from longread.llm import LLMClient, Usage
from longread.llm.usage import Budget, BudgetExceeded
from longread.storage import speeds
from longread.storage.cache import stored_client
from longread.storage.models import LOCAL_TENANT, Answer, Document, Job, Tree
from longread.tokens import token_counter_for


def _document_key(tenant_id: str, content_hash: str) -> str:
    """The local tenant's ids are the bare content hash; other tenants get their own ids."""
    return content_hash if tenant_id == LOCAL_TENANT else document_id(f"{tenant_id}:{content_hash}")


def store_text(
    session: Session,
    *,
    filename: str,
    text: str,
    tenant_id: str = LOCAL_TENANT,
    page_starts: list[int] | None = None,
) -> tuple[Document, bool]:
    """Store normalised text as a document; the same content for the same tenant returns the stored one.

    `page_starts` (a PDF's, from `ingest.read_document`) lets citations name the page they quote.
    """
    content_hash = document_id(text)
    key = _document_key(tenant_id, content_hash)
    existing = session.get(Document, key)
    if existing is not None:
        return existing, False
    document = Document(
        id=key,
        tenant_id=tenant_id,
        filename=filename,
        content_hash=content_hash,
        text=text,
        page_starts=page_starts,
        n_chars=len(text),
        n_tokens=token_counter_for("cl100k").count(text),
    )
    session.add(document)
    session.commit()
    return document, True


def ingest_bytes(
    session: Session, *, filename: str, data: bytes, tenant_id: str = LOCAL_TENANT
) -> tuple[Document, bool]:
    """Parse and store a file; raises IngestError (and stores nothing) when it cannot be read."""
    loaded = read_document(filename, data)
    return store_text(session, filename=filename, text=loaded.text, tenant_id=tenant_id, page_starts=loaded.page_starts)


def ingest_file(session: Session, path: Path, tenant_id: str = LOCAL_TENANT) -> tuple[Document, bool]:
    loaded = read_path(path)
    return store_text(
        session, filename=path.name, text=loaded.text, tenant_id=tenant_id, page_starts=loaded.page_starts
    )


def build_tree(
    session: Session,
    document: Document,
    *,
    model: str | None = None,
    progress: ProgressFn | None = None,
    usage: Usage | None = None,
) -> Tree:
    client = stored_client(model, usage, tenant_id=document.tenant_id)
    return build_summary_tree(session, document, client, progress=progress or no_progress)


def route_question(
    session: Session,
    document: Document,
    question: str,
    strategy: str,
    client: LLMClient,
    *,
    answer_with: str | None = None,
    caps: Budget | None = None,
    stay_local: bool | None = None,
) -> Plan:
    """The strategy a question will be read with, why, and the estimates behind it (`auto` plans here)."""
    return plan_question(
        session,
        document,
        question,
        client,
        strategy=strategy,
        answer_with=answer_with,
        caps=caps,
        stay_local=stay_local,
    )


def _read(reader: registry.Reader, request: registry.ReadRequest) -> tuple[AnswerDraft, str | None]:
    """The reader's draft, or, when a cap stopped it, the last partial draft it noted and the reason."""
    try:
        return reader(request), None
    except BudgetExceeded as exc:
        request.session.rollback()
        strategy = request.partial.strategy if request.partial else ""
        draft = request.partial or AnswerDraft(
            answer=f"Reading stopped before any answer: {exc.reason}.", strategy=strategy
        )
        return draft, exc.reason


def _record_speeds(session: Session, usage: Usage, draft: AnswerDraft) -> None:
    """Add this run's call timings (and the attention reader's scan) to the measured speeds the planner uses."""
    speeds.record_calls(session, usage.samples)
    for step in draft.trace:
        if step.get("stage") == "attention summary" and step.get("tokens") and step.get("seconds"):
            speeds.record_scan(session, scan_model(), int(step["tokens"]), float(step["seconds"]))


def _budget_client(model: str | None, usage: Usage | None, document: Document, caps: Budget | None) -> LLMClient:
    client = stored_client(model, usage, tenant_id=document.tenant_id)
    if caps is not None and caps.capped:
        client.usage.budget = caps
    return client


def _store_answer(
    session: Session,
    document: Document,
    draft: AnswerDraft,
    *,
    question: str | None,
    kind: str,
    route: Route,
    client: LLMClient,
    started: float,
    job: Job | None,
    plan: Plan | None = None,
    stopped_reason: str | None = None,
    conversation_id: str | None = None,
) -> Answer:
    latency = round(time.monotonic() - started, 3)
    _record_speeds(session, client.usage, draft)
    segments = ensure_segments(session, document, client.model, segment_tokens=draft.segment_tokens)
    checked = check_citations(draft, document.text, segments, question, page_starts=document.page_starts)
    answer = Answer(
        tenant_id=document.tenant_id,
        document_id=document.id,
        job_id=job.id if job else None,
        conversation_id=conversation_id,
        kind=kind,
        question=question,
        strategy=route.strategy,
        strategy_reason=route.reason,
        model=client.model,
        answer=checked.answer,
        citations=checked.citations,
        dropped_citations=checked.dropped,
        trace=draft.trace,
        **client.usage.as_dict(),
        latency_s=latency,
        plan=_plan_record(plan, client.usage, latency),
        stopped_reason=stopped_reason,
    )
    session.add(answer)
    session.commit()
    return answer


def ask(
    session: Session,
    document: Document,
    question: str,
    *,
    strategy: str = "auto",
    model: str | None = None,
    progress: ProgressFn | None = None,
    answer_with: str | None = None,
    job: Job | None = None,
    usage: Usage | None = None,
    caps: Budget | None = None,
    stay_local: bool | None = None,
    conversation_id: str | None = None,
    on_answer_text: Callable[[str], None] | None = None,
    standalone: str | None = None,
) -> Answer:
    """Answer a question about a stored document and store the answer with its checked citations.

    `auto` plans first (agents.planner); the plan is stored with the answer. A job that reaches one of
    its `caps` stops cleanly: the answer is the strategy's last partial draft, with `stopped_reason`.
    A question in a conversation is read as a follow-up of its recent turns (longread.conversation):
    planning and reading use it rewritten to stand alone, the answering prompt sees the turns.
    `on_answer_text` receives the final answering call's text as the model writes it. `standalone` is the
    follow-up's rewrite when the caller made it already (a worker that spread a chain over tasks with it).
    """
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    started = time.monotonic()
    client = _budget_client(model, usage, document, caps)
    client.on_answer_text = on_answer_text
    turns = recent_turns(session, conversation_id) if conversation_id else []
    reading = (standalone or standalone_question(client, turns, question)) if turns else question
    plan = route_question(
        session, document, reading, strategy, client, answer_with=answer_with, caps=caps, stay_local=stay_local
    )
    route = Route(plan.strategy, plan.reason)
    context = conversation_context(turns)
    request = registry.ReadRequest(
        session, document, reading, client, progress or no_progress, answer_with, conversation=context
    )
    draft, stopped = _read(registry.get(route.strategy).read, request)
    if turns:
        draft.trace.insert(0, {"stage": "follow-up", "turns": len(turns), "question": reading})
    return _store_answer(
        session,
        document,
        draft,
        question=question,
        kind="answer",
        route=route,
        client=client,
        started=started,
        job=job,
        plan=plan,
        stopped_reason=stopped,
        conversation_id=conversation_id,
    )


def summarize(
    session: Session,
    document: Document,
    *,
    strategy: str = "tree",
    model: str | None = None,
    progress: ProgressFn | None = None,
    job: Job | None = None,
    usage: Usage | None = None,
    caps: Budget | None = None,
) -> Answer:
    """Whole-document summary: from the summary tree's top, the chain of agents without a query, or whole."""
    registry.check_summary_strategy(strategy)
    started = time.monotonic()
    client = _budget_client(model, usage, document, caps)
    if strategy == registry.AUTO:
        route = Route("tree", "summaries reuse the summary tree")
    else:
        route = Route(strategy, "chosen by the caller")
    reader = registry.get(route.strategy).summarise
    assert reader is not None  # check_summary_strategy admits only strategies that summarise
    draft, stopped = _read(reader, registry.ReadRequest(session, document, None, client, progress or no_progress))
    return _store_answer(
        session,
        document,
        draft,
        question=None,
        kind="summary",
        route=route,
        client=client,
        started=started,
        job=job,
        stopped_reason=stopped,
    )


def _plan_record(plan: Plan | None, usage: Usage, latency_s: float) -> dict[str, Any] | None:
    """The plan as stored with the answer, with what the reading actually took beside the estimates."""
    if plan is None:
        return None
    return plan.as_dict() | {
        "actual": {
            "calls": usage.calls,
            "cached_calls": usage.cached_calls,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": round(usage.cost_usd, 6),
            "seconds": latency_s,
        }
    }


def find_document(session: Session, key: str, tenant_id: str = LOCAL_TENANT) -> Document | None:
    """A document by id or unique id prefix, within a tenant."""
    document = session.get(Document, key)
    if document is not None and document.tenant_id == tenant_id:
        return document
    matches = list(
        session.exec(select(Document).where(Document.tenant_id == tenant_id, col(Document.id).startswith(key)).limit(2))
    )
    return matches[0] if len(matches) == 1 else None
