"""Asking a collection: the engine's entry for questions over many documents at once.

The reading itself is `agents.shortlist.collection`; this stores the answer (`CollectionAnswer`, with
citations that name their documents) and accounts its model calls the same way as a single document's.
"""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session

from longread.agents.base import ProgressFn, no_progress
from longread.agents.shortlist.collection import METHODS, CollectionDraft, Reranker, read_collection
from longread.llm import Usage
from longread.llm.usage import Budget, BudgetExceeded
from longread.storage import speeds
from longread.storage.cache import stored_client
from longread.storage.collections import member_ids
from longread.storage.models import Collection, CollectionAnswer, Job

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
        "citations": answer.citations,
        "dropped_citations": answer.dropped_citations,
        "trace": answer.trace,
        **Usage.of(answer).as_dict(),
        "latency_s": answer.latency_s,
        "stopped_reason": answer.stopped_reason,
    }
