"""Asking a collection: the engine's entry for questions over many documents at once.

The reading itself is `agents.shortlist.collection`; this stores the answer (`CollectionAnswer`, with
citations that name their documents) and accounts its model calls the same way as a single document's.
"""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session, col, select

from longread.agents.base import ProgressFn, no_progress
from longread.agents.citations import with_pages
from longread.agents.shortlist.collection import METHODS, CollectionDraft, Reranker, read_collection
from longread.agents.shortlist.index import EMBED_MODEL
from longread.config import get_settings
from longread.llm import Usage
from longread.llm.usage import Budget, BudgetExceeded
from longread.storage import speeds
from longread.storage.cache import stored_client
from longread.storage.collections import member_ids, members
from longread.storage.models import Collection, CollectionAnswer, Job, RetrievalIndex

STRATEGIES = ("auto", *METHODS)
"""What a collection question may be read with; `auto` is the shortlist."""


def check_strategy(strategy: str) -> str:
    """The method a collection strategy name reads with; unknown names are a ValueError."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} for a collection; choose one of: {', '.join(STRATEGIES)}")
    return "shortlist" if strategy == "auto" else strategy


def ask_collection(
    session: Session,
    collection: Collection,
    question: str,
    *,
    strategy: str = "auto",
    model: str | None = None,
    answer_with: str | None = None,
    progress: ProgressFn | None = None,
    job: Job | None = None,
    usage: Usage | None = None,
    caps: Budget | None = None,
    reranker: Reranker | None = None,
) -> CollectionAnswer:
    """Answer a question over every document of a collection and store the answer."""
    method = check_strategy(strategy)
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    document_ids = member_ids(session, collection.id)
    if not document_ids:
        raise ValueError(f"the collection {collection.name!r} has no documents")
    started = time.monotonic()
    client = stored_client(model, usage, tenant_id=collection.tenant_id)
    if caps is not None and caps.capped:
        client.usage.budget = caps
    stopped: str | None = None
    try:
        draft = read_collection(
            session,
            document_ids,
            question,
            client,
            method=method,
            answer_with=answer_with,
            progress=progress or no_progress,
            reranker=reranker,
        )
    except BudgetExceeded as exc:
        session.rollback()
        stopped = exc.reason
        draft = CollectionDraft(f"Reading stopped before any answer: {exc.reason}.", method, "stopped by a cap")
    speeds.record_calls(session, client.usage.samples)
    answer = CollectionAnswer(
        tenant_id=collection.tenant_id,
        collection_id=collection.id,
        job_id=job.id if job else None,
        question=question,
        strategy=draft.strategy,
        strategy_reason=draft.strategy_reason,
        model=client.model,
        answer=draft.answer,
        citations=draft.citations,
        dropped_citations=draft.dropped,
        document_ids=draft.document_ids or document_ids,
        trace=draft.trace,
        **client.usage.as_dict(),
        latency_s=round(time.monotonic() - started, 3),
        stopped_reason=stopped,
    )
    session.add(answer)
    session.commit()
    return answer


_PROMPT_OVERHEAD = 200
"""Tokens of the answering prompt around the evidence (instructions, numbering, document names)."""


def plan_collection(session: Session, collection: Collection, strategy: str, model: str) -> dict[str, Any]:
    """What asking the collection would take, without reading anything: documents, tokens, indexes to
    build, and the one answering call over the evidence budget."""
    method = check_strategy(strategy)
    listed = members(session, collection.id)
    ids = [m.document_id for m in listed]
    indexed = set(
        session.exec(
            select(RetrievalIndex.document_id).where(
                col(RetrievalIndex.document_id).in_(ids), RetrievalIndex.embed_model == EMBED_MODEL
            )
        )
    )
    return {
        "collection_id": collection.id,
        "strategy": method,
        "model": model,
        "documents": len(ids),
        "document_tokens": sum(m.n_tokens for m in listed),
        "documents_to_index": len([d for d in ids if d not in indexed]),
        "calls": 1 if ids else 0,
        "prompt_tokens": get_settings().EVIDENCE_TOKENS + _PROMPT_OVERHEAD if ids else 0,
        "needs_local_model": method == "shortlist" or model.startswith("local/"),
    }


def collection_answer_payload(answer: CollectionAnswer, collection: Collection) -> dict[str, Any]:
    """A stored collection answer as the CLI's JSON and the API's body show it."""
    return {
        "answer_id": answer.id,
        "collection_id": collection.id,
        "collection": collection.name,
        "document_ids": answer.document_ids,
        "question": answer.question,
        "answer": answer.answer,
        "strategy": answer.strategy,
        "strategy_reason": answer.strategy_reason,
        "model": answer.model,
        "citations": with_pages(answer.citations),
        "dropped_citations": answer.dropped_citations,
        "trace": answer.trace,
        **Usage.of(answer).as_dict(),
        "latency_s": answer.latency_s,
        "stopped_reason": answer.stopped_reason,
    }
