"""Asking and summarising a collection: the engine's entry for reading many documents at once.

A question is read by `agents.shortlist.collection` (shortlist, bm25, dense) or by `agents.collection`
(the summary tree over a collection root, the chain across documents in order); this stores the answer (`CollectionAnswer`, with
citations that name their documents) and accounts its model calls the same way as a single document's.
A summary is one per document (the single document's summary, its tree reused) and one overall, written
from those; documents are read one at a time, so only one document's text is in memory at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from sqlmodel import Session, col, select

from longread import engine
from longread.agents import registry
from longread.agents.base import ProgressFn, no_progress
from longread.agents.citations import answer_fields, with_pages
from longread.agents.collection import chain_collection, map_reduce_collection, navigate_collection
from longread.agents.memwalker.summary import ROOT_SUMMARY_WORDS
from longread.agents.memwalker.tree import words_to_tokens
from longread.agents.planner import Plan, plan_collection_question
from longread.agents.router import is_aggregation
from longread.agents.shortlist.collection import METHODS, CollectionDraft, Reranker, index_documents, read_collection
from longread.agents.shortlist.index import EMBED_MODEL
from longread.conversation import conversation_context, recent_turns, standalone_question
from longread.llm import LLMClient, Usage
from longread.llm.usage import Budget, BudgetExceeded
from longread.storage import speeds
from longread.storage.cache import stored_client
from longread.storage.collections import Member, member_ids, members
from longread.storage.models import Collection, CollectionAnswer, Document, Job, RetrievalIndex

READERS = (*METHODS, "tree", "chain")
"""The strategies that read a collection."""
STRATEGIES = ("auto", *READERS)
"""What a collection question may be read with; `auto` is the planner's choice (`resolve_strategy`)."""


def check_strategy(strategy: str) -> str:
    """The method a collection strategy name reads with (`auto` stands for the shortlist until the planner
    resolves it for a question, `resolve_strategy`); unknown names are a ValueError."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} for a collection; choose one of: {', '.join(STRATEGIES)}")
    return "shortlist" if strategy == "auto" else strategy


def reading_order(listed: list[Member], order: list[str] | None) -> list[str]:
    """The members' ids in the stated order: those `order` names (by id or filename) first, as given, then
    the rest in the collection's order. A name that is no member's is a ValueError."""
    ids = [m.document_id for m in listed]
    if not order:
        return ids
    by_name: dict[str, str] = {}
    for member in listed:
        by_name.setdefault(member.filename, member.document_id)
    named = [d if d in set(ids) else by_name.get(d) for d in order]
    strangers = [d for d, found in zip(order, named, strict=True) if found is None]
    if strangers:
        raise ValueError(f"the order names documents that are not in the collection: {', '.join(strangers[:5])}")
    first = list(dict.fromkeys(d for d in named if d is not None))
    return first + [d for d in ids if d not in set(first)]


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
    order: list[str] | None = None,
    on_answer_text: Callable[[str], None] | None = None,
    conversation_id: str | None = None,
) -> CollectionAnswer:
    """Answer a question over every document of a collection and store the answer.

    `order` (document ids or filenames) is the order the chain reads the documents in; the collection's
    order otherwise. `on_answer_text` receives the final answering call's text as the model writes it.
    A question in a conversation (`conversation_id`, a thread about this collection) is read as a
    follow-up of its recent turns as for one document (longread.conversation): planning, retrieval and
    navigation use it rewritten to stand alone, the answering prompts see the turns."""
    method = check_strategy(strategy)
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    listed = members(session, collection.id)
    if not listed:
        raise ValueError(f"the collection {collection.name!r} has no documents")
    document_ids = reading_order(listed, order)
    started = time.monotonic()
    client = stored_client(model, usage, tenant_id=collection.tenant_id)
    client.on_answer_text = on_answer_text
    turns = recent_turns(session, conversation_id) if conversation_id else []
    reading = standalone_question(client, turns, question) if turns else question
    context = conversation_context(turns)
    if strategy == registry.AUTO:
        method = resolve_strategy(session, collection, reading, strategy, client.model, answer_with)
    if caps is not None and caps.capped:
        client.usage.budget = caps
    stopped: str | None = None
    try:
        report = progress or no_progress
        if method == "tree":
            draft = navigate_collection(session, document_ids, reading, client, progress=report, conversation=context)
        elif method == "chain" and not order and is_aggregation(reading):
            draft = map_reduce_collection(session, document_ids, reading, client, progress=report, conversation=context)
        elif method == "chain":
            draft = chain_collection(session, document_ids, reading, client, progress=report, conversation=context)
        else:
            draft = read_collection(
                session,
                document_ids,
                reading,
                client,
                method=method,
                answer_with=answer_with,
                progress=report,
                reranker=reranker,
                conversation=context,
            )
    except BudgetExceeded as exc:
        session.rollback()
        stopped = exc.reason
        draft = CollectionDraft(f"Reading stopped before any answer: {exc.reason}.", method, "stopped by a cap")
    if turns:
        draft.trace.insert(0, {"stage": "follow-up", "turns": len(turns), "question": reading})
    speeds.record_calls(session, client.usage.samples)
    answer = CollectionAnswer(
        tenant_id=collection.tenant_id,
        collection_id=collection.id,
        job_id=job.id if job else None,
        conversation_id=conversation_id,
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


def index_members(
    session: Session, document_ids: list[str], *, model: str | None = None, progress: ProgressFn | None = None
) -> list[dict[str, Any]]:
    """Build the retrieval index of documents joining a collection, as its questions will read them.

    No model call: the model only fixes the segmentation (its token counter). A document already
    indexed costs a lookup, so adding one document to a built collection builds that document's only."""
    return index_documents(session, document_ids, LLMClient(model, use_cache=False), progress or no_progress)


def unindexed(session: Session, document_ids: list[str]) -> list[str]:
    """Those of the documents with no retrieval index stored yet (what a question would have to build)."""
    indexed = set(
        session.exec(
            select(RetrievalIndex.document_id).where(
                col(RetrievalIndex.document_id).in_(document_ids), RetrievalIndex.embed_model == EMBED_MODEL
            )
        )
    )
    return [d for d in document_ids if d not in indexed]


def _remaining(caps: Budget | None, spent: Usage) -> Budget | None:
    """The job's caps less what its earlier documents spent (the clock runs from the job's start)."""
    if caps is None or not caps.capped:
        return None
    return Budget(
        max_cost_usd=None if caps.max_cost_usd is None else caps.max_cost_usd - spent.cost_usd,
        max_seconds=caps.max_seconds,
        max_tokens=None if caps.max_tokens is None else caps.max_tokens - spent.tokens,
        started=caps.started,
    )


def summarize_collection(
    session: Session,
    collection: Collection,
    *,
    strategy: str = "auto",
    model: str | None = None,
    progress: ProgressFn | None = None,
    job: Job | None = None,
    usage: Usage | None = None,
    caps: Budget | None = None,
) -> CollectionAnswer:
    """A summary of every document of the collection (stored as each document's summary) and one overall.

    Each document is summarised as on its own (`engine.summarize`: its summary tree is built once and
    reused), one at a time, its text released before the next. The overall summary is one call over the
    per-document summaries. A cap reached on a document stops the reading there: the summaries so far
    and the reason are stored.
    """
    registry.check_summary_strategy(strategy)
    document_ids = member_ids(session, collection.id)
    if not document_ids:
        raise ValueError(f"the collection {collection.name!r} has no documents")
    report = progress or no_progress
    started = time.monotonic()
    spent = usage if usage is not None else Usage()
    parts: list[dict[str, Any]] = []
    stopped: str | None = None
    for position, document_id in enumerate(document_ids):
        report("summarising documents", position, len(document_ids))
        document = session.get(Document, document_id)
        if document is None:  # deleted while the job ran: it has left the collection
            continue
        before = cast(dict[str, float], spent.as_dict())
        summary = engine.summarize(
            session,
            document,
            strategy=strategy,
            model=model,
            progress=report,
            job=job,
            usage=spent,
            caps=_remaining(caps, spent) if caps is not None else None,
        )
        # The usage is the job's, shared by every document: each summary row keeps its own part of it.
        for name, value in cast(dict[str, float], spent.as_dict()).items():
            setattr(summary, name, value - before[name])
        session.add(summary)
        session.commit()
        parts.append(
            {
                "document_id": document.id,
                "filename": document.filename,
                "answer_id": summary.id,
                "summary": summary.answer,
                "citations": [
                    {**c, "document_id": document.id, "filename": document.filename} for c in summary.citations
                ],
                "stopped_reason": summary.stopped_reason,
            }
        )
        session.expunge(document)  # its text is not needed again
        if summary.stopped_reason:
            stopped = summary.stopped_reason
            break
    report("summarising documents", len(parts), len(document_ids))
    client = stored_client(model, spent, tenant_id=collection.tenant_id)
    if stopped is None:
        try:
            report("writing the overall summary", 0, 1)
            overall = client.complete(
                "collection_summary",
                parts=[{"filename": p["filename"], "summary": p["summary"]} for p in parts],
                max_words=ROOT_SUMMARY_WORDS,
                max_tokens=words_to_tokens(ROOT_SUMMARY_WORDS),
            ).text.strip()
        except BudgetExceeded as exc:
            stopped = exc.reason
    if stopped is not None:
        overall = f"Reading stopped before the overall summary: {stopped}."
    speeds.record_calls(session, client.usage.samples)
    answer = CollectionAnswer(
        tenant_id=collection.tenant_id,
        collection_id=collection.id,
        job_id=job.id if job else None,
        kind="summary",
        question="",
        strategy="tree" if strategy == registry.AUTO else strategy,
        strategy_reason="one summary per document, then one over those summaries",
        model=client.model,
        answer=overall,
        citations=[],
        document_ids=[p["document_id"] for p in parts],
        summaries=parts,
        trace=[{"stage": "summary", "document_id": p["document_id"], "answer_id": p["answer_id"]} for p in parts],
        **spent.as_dict(),
        latency_s=round(time.monotonic() - started, 3),
        stopped_reason=stopped,
    )
    session.add(answer)
    session.commit()
    return answer


def plan_collection_summary(session: Session, collection: Collection, strategy: str, model: str) -> dict[str, Any]:
    """What summarising the collection would take, without reading: documents, tokens, and the calls."""
    registry.check_summary_strategy(strategy)
    listed = members(session, collection.id)
    return {
        "collection_id": collection.id,
        "strategy": strategy,
        "model": model,
        "documents": len(listed),
        "document_tokens": sum(m.n_tokens for m in listed),
        "summaries": len(listed),
        "overall_calls": 1 if listed else 0,
    }


def plan_collection(
    session: Session,
    collection: Collection,
    strategy: str,
    model: str,
    *,
    question: str = "",
    answer_with: str | None = None,
    caps: Budget | None = None,
    order: list[str] | None = None,
) -> dict[str, Any]:
    """What asking the collection would take, without reading anything (`agents.planner`): every
    collection strategy's calls, tokens, cost and seconds, per-document figures summed (stored trees
    and indexes already paid), which one `auto` would pick, and the named (or picked) one's figures."""
    check_strategy(strategy)
    listed = members(session, collection.id)
    ids = [m.document_id for m in listed]
    base: dict[str, Any] = {
        "collection_id": collection.id,
        "model": model,
        "documents": len(ids),
        "document_tokens": sum(m.n_tokens for m in listed),
        "documents_to_index": len(unindexed(session, ids)),
    }
    if not ids:
        return base | {"strategy": check_strategy(strategy), "calls": 0, "prompt_tokens": 0, "needs_local_model": False}
    plan = plan_collection_question(
        session,
        reading_order(listed, order),
        question.strip() or "?",
        LLMClient(model),
        strategy=strategy,
        answer_with=answer_with,
        caps=caps,
        ordered=bool(order),
    )
    auto = plan.strategy if strategy == registry.AUTO else None
    chosen = plan.option(plan.strategy)
    assert chosen is not None
    return base | {
        "strategy": plan.strategy,
        "reason": plan.reason,
        "auto_choice": auto or _auto_choice(plan),
        "question_kind": plan.kind,
        "calls": chosen.calls,
        "prompt_tokens": chosen.prompt_tokens,
        "completion_tokens": chosen.completion_tokens,
        "cost_usd": round(chosen.cost_usd, 6),
        "seconds": round(chosen.seconds, 1),
        "needs_local_model": registry.get(plan.strategy).needs_local_model
        or (answer_with or model).startswith("local/"),
        "priced": plan.priced,
        "options": [o.as_dict() for o in plan.options],
    }


def _auto_choice(plan: Plan) -> str:
    """The strategy `auto` would pick, which a plan for a named strategy keeps in its reason."""
    marker = "auto would pick "
    return plan.reason.split(marker, 1)[1].rstrip(")") if marker in plan.reason else plan.strategy


def resolve_strategy(
    session: Session, collection: Collection, question: str, strategy: str, model: str | None, answer_with: str | None
) -> str:
    """The reader a collection question runs with: the named one, or the planner's choice for `auto`."""
    method = check_strategy(strategy)
    if strategy != registry.AUTO:
        return method
    ids = member_ids(session, collection.id)
    if not ids or not question.strip():
        return method
    return plan_collection_question(session, ids, question.strip(), LLMClient(model), answer_with=answer_with).strategy


def collection_answer_payload(answer: CollectionAnswer, collection: Collection) -> dict[str, Any]:
    """A stored collection answer as the CLI's JSON and the API's body show it."""
    return {
        "answer_id": answer.id,
        "kind": answer.kind,
        "collection_id": collection.id,
        "conversation_id": answer.conversation_id,
        "collection": collection.name,
        "document_ids": answer.document_ids,
        **answer_fields(answer),
        "summaries": [{**part, "citations": with_pages(part.get("citations", []))} for part in answer.summaries],
    }
