"""The reading engine: the CLI, the API and the workers all call these functions.

Each takes a database session and returns stored rows; progress goes to a callback, and LLM calls,
tokens and cost are accumulated in a `Usage` the caller may watch.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlmodel import Session, select

from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.citations import check_citations
from longread.agents.memwalker.navigate import navigate
from longread.agents.memwalker.tree import build_tree as build_summary_tree
from longread.agents.memwalker.tree import get_node, tree_level_sizes, words_to_tokens
from longread.agents.router import STRATEGIES, Route, choose_strategy, local_model_available
from longread.agents.segments import ensure_segments
from longread.ingest import document_id, load_document
from longread.ingest.loaders import load_path
from longread.llm import LLMClient, Usage
from longread.storage.models import LOCAL_TENANT, Answer, Document, Job, Tree, TreeNode
from longread.tokens import token_counter_for

ROOT_SUMMARY_WORDS = 400


def _document_key(tenant_id: str, content_hash: str) -> str:
    """The local tenant's ids are the bare content hash; other tenants get their own ids."""
    return content_hash if tenant_id == LOCAL_TENANT else document_id(f"{tenant_id}:{content_hash}")


def store_text(session: Session, *, filename: str, text: str, tenant_id: str = LOCAL_TENANT) -> tuple[Document, bool]:
    """Store normalised text as a document; the same content for the same tenant returns the stored one."""
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
    return store_text(session, filename=filename, text=load_document(filename, data), tenant_id=tenant_id)


def ingest_file(session: Session, path: Path, tenant_id: str = LOCAL_TENANT) -> tuple[Document, bool]:
    return store_text(session, filename=path.name, text=load_path(path), tenant_id=tenant_id)


def build_tree(
    session: Session,
    document: Document,
    *,
    model: str | None = None,
    progress: ProgressFn | None = None,
    usage: Usage | None = None,
) -> Tree:
    client = LLMClient(model, usage)
    return build_summary_tree(session, document, client, progress=progress or no_progress)


def route_question(document: Document, question: str, strategy: str, client: LLMClient) -> Route:
    """The strategy a question will be read with, and why (`auto` decides here)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy '{strategy}' (choose from {', '.join(STRATEGIES)})")
    if strategy != "auto":
        return Route(strategy, "chosen by the caller")
    n_tokens = client.counter.count(document.text) if client.model.startswith("local/") else document.n_tokens
    return choose_strategy(question, n_tokens, client.context_window, local_available=local_model_available())


def _read(
    session: Session,
    document: Document,
    question: str,
    route: Route,
    client: LLMClient,
    progress: ProgressFn,
    answer_with: str | None,
) -> AnswerDraft:
    if route.strategy == "tree":
        tree = build_summary_tree(session, document, client, progress=progress)
        return navigate(session, tree, document, question, client, progress=progress)
    if route.strategy == "chain":
        from longread.agents.chain import run_chain

        return run_chain(session, document, question, client, progress=progress)
    segments = ensure_segments(session, document, client.model)
    if route.strategy == "attention":
        from longread.agents.attention.strategy import read_with_attention

        return read_with_attention(
            document.text,
            question,
            segments=segments,
            answer_model=answer_with or client.model,
            usage=client.usage,
            progress=progress,
        )
    from longread.agents.baselines import answer_full

    return answer_full(document.text, question, segments=segments, client=client)


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
) -> Answer:
    segments = ensure_segments(session, document, client.model, segment_tokens=draft.segment_tokens)
    checked = check_citations(draft, document.text, segments, question)
    usage = client.usage
    answer = Answer(
        tenant_id=document.tenant_id,
        document_id=document.id,
        job_id=job.id if job else None,
        kind=kind,
        question=question,
        strategy=route.strategy,
        strategy_reason=route.reason,
        model=client.model,
        answer=checked.answer,
        citations=checked.citations,
        dropped_citations=checked.dropped,
        trace=draft.trace,
        llm_calls=usage.calls,
        cached_calls=usage.cached_calls,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost_usd,
        latency_s=round(time.monotonic() - started, 3),
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
) -> Answer:
    """Answer a question about a stored document and store the answer with its checked citations."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    started = time.monotonic()
    client = LLMClient(model, usage)
    route = route_question(document, question, strategy, client)
    draft = _read(session, document, question, route, client, progress or no_progress, answer_with)
    return _store_answer(
        session, document, draft, question=question, kind="answer", route=route, client=client, started=started, job=job
    )


def _tree_summary(session: Session, document: Document, client: LLMClient, progress: ProgressFn) -> AnswerDraft:
    """Summarise from the tree's top: the root's children (or the lone leaf) with the passages they span."""
    tree = build_summary_tree(session, document, client, progress=progress)
    sizes = tree_level_sizes(session, tree)
    top_level = max(0, len(sizes) - 2)
    parts = []
    for position in range(sizes[top_level]):
        node = get_node(session, tree.id, top_level, position)
        assert node is not None
        first, last = _segment_span(session, tree, node)
        parts.append({"labels": f"S{first}–S{last}" if first != last else f"S{first}", "summary": node.summary})
    progress("writing the summary", 0, 1)
    completion = client.complete(
        "tree_root_summary", parts=parts, max_words=ROOT_SUMMARY_WORDS, max_tokens=words_to_tokens(ROOT_SUMMARY_WORDS)
    )
    segments = ensure_segments(session, document, client.model)
    read = [Evidence(s.index, s.start, s.end) for s in segments]
    trace = [{"levels": len(sizes), "nodes": sum(sizes), "top_level": top_level, "parts": len(parts)}]
    return AnswerDraft(answer=completion.text, strategy="tree", read=read, trace=trace)


def _segment_span(session: Session, tree: Tree, node: TreeNode) -> tuple[int, int]:
    """First and last segment index under a node (level-0 positions are segment indexes)."""
    level = node.level
    first, last = node.position, node.position
    while level > 0:
        lo = get_node(session, tree.id, level, first)
        hi = get_node(session, tree.id, level, last)
        assert lo is not None and hi is not None and lo.child_start is not None and hi.child_end is not None
        first, last = lo.child_start, hi.child_end - 1
        level -= 1
    return first, last


def summarize(
    session: Session,
    document: Document,
    *,
    strategy: str = "tree",
    model: str | None = None,
    progress: ProgressFn | None = None,
    job: Job | None = None,
    usage: Usage | None = None,
) -> Answer:
    """Whole-document summary: from the summary tree's top, or the chain of agents without a query."""
    if strategy not in {"tree", "chain", "auto"}:
        raise ValueError(f"summaries use the tree or chain strategy, not '{strategy}'")
    started = time.monotonic()
    client = LLMClient(model, usage)
    progress = progress or no_progress
    if strategy == "chain":
        from longread.agents.chain import run_chain

        route = Route("chain", "chosen by the caller")
        draft = run_chain(session, document, None, client, progress=progress)
    else:
        route = Route("tree", "chosen by the caller" if strategy == "tree" else "summaries reuse the summary tree")
        draft = _tree_summary(session, document, client, progress)
    return _store_answer(
        session, document, draft, question=None, kind="summary", route=route, client=client, started=started, job=job
    )


def find_document(session: Session, key: str, tenant_id: str = LOCAL_TENANT) -> Document | None:
    """A document by id or unique id prefix, within a tenant."""
    document = session.get(Document, key)
    if document is not None and document.tenant_id == tenant_id:
        return document
    matches = list(
        session.exec(select(Document).where(Document.tenant_id == tenant_id, Document.id.startswith(key)).limit(2))  # type: ignore[attr-defined]
    )
    return matches[0] if len(matches) == 1 else None
