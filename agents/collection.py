"""The summary tree and the chain over a collection; citations name their document.

**Tree.** Each document keeps its own stored summary tree (`memwalker.tree.build_tree`, built only when
missing, so a collection costs only the documents never summarised). A collection root is built from
the document roots: with at most `TREE_FANOUT` documents the root's children are the document roots
themselves; with more, runs of document roots are summarised into collection nodes (`tree_node_summary`,
through the completion cache) until one level fits under the root. The MemWalker walk then goes down
from the collection root into a document's tree and on to its leaves, backtracking across documents.

**Chain.** Documents are read in a stated order (the collection's, or one the request gives); each
document is cut into chunks as the single-document chain cuts it, and one communication unit is carried
from the last chunk of a document into the first of the next. A manager answers from the last unit.

**Map-reduce.** A question about the whole collection (`router.is_aggregation`) with no stated order is
read per document instead: each document by its own chain (`chain.run_chain`, its steps stored and
reused as for a single document), then one manager call over the per-document answers, each headed by its
document. Nothing is carried between documents, so a long collection does not squeeze every document's
evidence through one unit.

**Labels.** A passage is shown to the model as `[S<n>]` with `n` numbered across the collection (each
document's segments follow the previous document's), so a label names one passage of one document. The
answer's labels are mapped back to (document, segment), checked against what was read document by
document (`citations.check_citations`), and renumbered `[1]`, `[2]`... in the order of the citations,
each of which names its document. Only one document's text is in memory at a time: leaves are read with
`document_slice`, and a document is released once its citations are checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.chain import (
    EMPTY_UNIT,
    TRACE_NOTES_CHARS,
    ChainPlan,
    plan_chain,
    render_worker,
)
from longread.agents.citations import check_citations, cited_labels
from longread.agents.memwalker.navigate import (
    Decision,
    LeafAnswerStream,
    WorkingMemory,
    copied_from,
    parse_decision,
)
from longread.agents.memwalker.tree import (
    NODE_SUMMARY_WORDS,
    build_tree,
    child_range,
    get_node,
    stored_tree,
    tree_level_sizes,
    words_to_tokens,
)
from longread.agents.segments import document_slice, ensure_segments
from longread.agents.shortlist.collection import CollectionDraft
from longread.config import get_settings
from longread.llm import LLMClient
from longread.llm.prompts import COMPLETION
from longread.storage.models import Document, Tree, TreeNode, TreeStatus

_BRACKET = re.compile(r"\[((?:\s*(?:and\s+|&\s*)?[Ss]\s?\d+\s*[,;]?)+)\]")
_LABEL = re.compile(r"[Ss]\s?(\d+)")


# ------------------------------------------------------------------------------------------ labels


@dataclass(frozen=True)
class Span:
    """One document's place in the collection's passage numbering."""

    document_id: str
    filename: str
    offset: int
    count: int
    segment_tokens: int | None = None


@dataclass
class Labels:
    """Collection-wide passage labels: document k's segment i is `[S<offset_k + i>]`."""

    spans: list[Span] = field(default_factory=list)

    def add(self, document_id: str, filename: str, count: int, segment_tokens: int | None = None) -> Span:
        offset = self.spans[-1].offset + self.spans[-1].count if self.spans else 0
        span = Span(document_id, filename, offset, count, segment_tokens)
        self.spans.append(span)
        return span

    def locate(self, label: int) -> tuple[Span, int] | None:
        for span in self.spans:
            if span.offset <= label < span.offset + span.count:
                return span, label - span.offset
        return None


def _local_answer(answer: str, labels: Labels, document_id: str) -> str:
    """The answer with this document's labels turned into its own segment numbers, others removed."""

    def replace(match: re.Match[str]) -> str:
        kept = []
        for label in _LABEL.finditer(match.group(1)):
            found = labels.locate(int(label.group(1)))
            if found is not None and found[0].document_id == document_id:
                kept.append(f"S{found[1]}")
        return "[" + ", ".join(kept) + "]" if kept else ""

    return _BRACKET.sub(replace, answer)


def cite(
    session: Session,
    client: LLMClient,
    question: str,
    answer: str,
    labels: Labels,
    reads: dict[str, list[Evidence]],
) -> tuple[str, list[dict[str, Any]], int]:
    """(answer with [n] numbers, citations naming their documents, dropped labels).

    Labels of passages that were not read, or that name no document, are dropped. An answer without
    labels is looked up verbatim in the passages read, document by document."""
    spans = {span.document_id: span for span in labels.spans}
    mentioned = cited_labels(answer)
    located = [labels.locate(n) for n in mentioned]
    dropped = sum(1 for found in located if found is None)
    if mentioned:
        order = list(dict.fromkeys(found[0].document_id for found in located if found is not None))
    else:
        order = [document_id for document_id in reads if reads[document_id]]
    citations: list[dict[str, Any]] = []
    first: dict[tuple[str, int], int] = {}
    for document_id in order:
        document = session.get(Document, document_id)
        if document is None:
            continue
        span = spans[document_id]
        segments = ensure_segments(session, document, client.model, segment_tokens=span.segment_tokens)
        draft = AnswerDraft(
            answer=_local_answer(answer, labels, document_id), strategy="", read=reads.get(document_id, [])
        )
        checked = check_citations(draft, document.text, segments, question, page_starts=document.page_starts)
        dropped += checked.dropped
        for citation in checked.citations:
            number = len(citations) + 1
            first.setdefault((document_id, citation["segment_index"]), number)
            citations.append({**citation, "n": number, "document_id": document.id, "filename": document.filename})
        session.expunge(document)

    def renumber(match: re.Match[str]) -> str:
        numbers = []
        for label in _LABEL.finditer(match.group(1)):
            found = labels.locate(int(label.group(1)))
            n = first.get((found[0].document_id, found[1])) if found is not None else None
            if n is not None and n not in numbers:
                numbers.append(n)
        return "".join(f"[{n}]" for n in numbers)

    text = _BRACKET.sub(renumber, answer)
    text = re.sub(r"[ \t]+([.,;:])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip(), citations, dropped


# -------------------------------------------------------------------------------------------- tree


@dataclass
class Branch:
    """A node of the walk: a collection node (children listed) or a node of one document's tree."""

    summary: str
    key: tuple[str, int, int]
    children: list[Branch] | None = None
    tree: Tree | None = None
    node: TreeNode | None = None
    span: Span | None = None


def document_trees(
    session: Session,
    document_ids: Sequence[str],
    client: LLMClient,
    progress: ProgressFn = no_progress,
    trace: list[dict[str, Any]] | None = None,
) -> list[tuple[Document, Tree]]:
    """Each document's summary tree: the stored one when complete, built (or finished) when not.

    One document's text is in memory at a time: a document is released once its tree is ready."""
    trees: list[tuple[Document, Tree]] = []
    for n, document_id in enumerate(document_ids):
        progress("summary trees", n, len(document_ids))
        document = session.get(Document, document_id)
        if document is None:
            continue
        tree = stored_tree(session, document, client.model)
        reused = tree is not None and tree.status == TreeStatus.READY
        if not reused:
            tree = build_tree(session, document, client)
        assert tree is not None
        if trace is not None:
            trace.append({"stage": "tree", "document_id": document.id, "filename": document.filename, "reused": reused})
        session.expunge(document)
        trees.append((document, tree))
    progress("summary trees", len(document_ids), len(document_ids))
    return trees


def collection_root(session: Session, trees: list[tuple[Document, Tree]], client: LLMClient, labels: Labels) -> Branch:
    """The collection root over the document roots (grouped under summaries when they exceed the fanout)."""
    fanout = get_settings().TREE_FANOUT
    level: list[Branch] = []
    for document, tree in trees:
        sizes = tree_level_sizes(session, tree)
        root = get_node(session, tree.id, len(sizes) - 1, 0)
        if root is None:
            continue
        span = labels.add(document.id, document.filename, sizes[0])
        level.append(
            Branch(
                f"(document {document.filename}) {root.summary}",
                (document.id, root.level, 0),
                tree=tree,
                node=root,
                span=span,
            )
        )
    height = 1
    while len(level) > fanout:
        parents = -(-len(level) // fanout)
        grouped: list[Branch] = []
        for position in range(parents):
            start, end = child_range(len(level), parents, position)
            children = level[start:end]
            summary = client.complete(
                "tree_node_summary",
                summaries=[c.summary for c in children],
                max_words=NODE_SUMMARY_WORDS,
                max_tokens=words_to_tokens(NODE_SUMMARY_WORDS),
            ).text.strip()
            names = ", ".join(c.span.filename if c.span else "" for c in children if c.span) or "documents"
            grouped.append(Branch(f"({names}) {summary}" if names else summary, ("", height, position), children))
        level = grouped
        height += 1
    return Branch("the collection", ("", height, 0), level)


def _children(session: Session, branch: Branch) -> list[Branch]:
    if branch.children is not None:
        return branch.children
    node, tree, span = branch.node, branch.tree, branch.span
    assert node is not None and tree is not None and span is not None
    if node.level == 0 or node.child_start is None or node.child_end is None:
        return []
    found = [get_node(session, tree.id, node.level - 1, p) for p in range(node.child_start, node.child_end)]
    return [
        Branch(c.summary, (span.document_id, c.level, c.position), tree=tree, node=c, span=span)
        for c in found
        if c is not None
    ]


def navigate_collection(
    session: Session,
    document_ids: Sequence[str],
    question: str,
    client: LLMClient,
    *,
    progress: ProgressFn = no_progress,
    conversation: str = "",
) -> CollectionDraft:
    """Walk the collection's tree for a question: from the collection root into one document's tree and
    down to a leaf, backtracking across documents; citations name their document."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    settings = get_settings()
    trace: list[dict[str, Any]] = []
    trees = document_trees(session, document_ids, client, progress, trace)
    labels = Labels()
    root = collection_root(session, trees, client, labels)
    reason = f"MemWalker over a collection root above {len(trees)} documents' summary trees (stored trees reused)"
    memory = WorkingMemory(client, settings.NAV_MEMORY_TOKENS)
    reads: dict[str, list[Evidence]] = {}
    ruled_out: set[tuple[str, int, int]] = set()
    path: list[Branch] = [root]
    copied_prompts = client.prompt_style == COMPLETION
    max_steps = settings.NAV_MAX_STEPS
    answer: str | None = None

    def step(entry: dict[str, Any]) -> None:
        trace.append({"stage": "navigate", "step": sum(1 for t in trace if t["stage"] == "navigate") + 1, **entry})

    def revert(branch: Branch, why: str) -> None:
        ruled_out.add(branch.key)
        path.pop()
        step({"node": list(branch.key), "action": "revert", "reasoning": why})

    for n in range(max_steps):
        if not path:
            break
        branch = path[-1]
        progress("navigating", n, max_steps)
        node, span = branch.node, branch.span
        if node is not None and span is not None and node.level == 0:
            label = span.offset + (node.segment_index or 0)
            text = document_slice(session, span.document_id, node.start, node.end)
            # The leaf's answer streams as it is written, as in a document's walk (a base model's once accepted).
            sink = client.on_answer_text
            relay = LeafAnswerStream(sink) if sink is not None and not copied_prompts else None
            completion = client.complete(
                "nav_leaf",
                max_tokens=300,
                stream_to=relay,
                text=text,
                question=question,
                memory=memory.render(),
                segment_index=label,
                conversation=conversation,
            )
            decision = parse_decision(completion.text)
            reads.setdefault(span.document_id, []).append(Evidence(node.segment_index or 0, node.start, node.end))
            if decision.action == "answer" and copied_prompts and not copied_from(decision.answer, text):
                decision = Decision("revert", f"the answer '{decision.answer[:80]}' is not in the passage")
            if decision.action == "answer" and decision.answer:
                step(
                    {
                        "node": list(branch.key),
                        "document_id": span.document_id,
                        "filename": span.filename,
                        "segment": node.segment_index,
                        "action": "answer",
                        "reasoning": decision.reasoning,
                    }
                )
                answer = decision.answer
                if f"S{label}" not in answer:
                    answer = f"{answer} [S{label}]"
                if sink is not None:  # what was not relayed yet: the whole answer, or the label added to it
                    rest = answer[len(decision.answer) :] if relay is not None and relay.sent else answer
                    if rest:
                        sink(rest)
                break
            memory.add(f"[S{label}] of {span.filename} did not answer the question: {decision.reasoning[:300]}")
            revert(branch, decision.reasoning)
            continue
        options = [c for c in _children(session, branch) if c.key not in ruled_out]
        if not options:
            revert(branch, "every child was ruled out")
            continue
        completion = client.complete(
            "nav_triage",
            max_tokens=300,
            question=question,
            memory=memory.render(),
            children=[{"number": i + 1, "summary": c.summary} for i, c in enumerate(options)],
        )
        decision = parse_decision(completion.text)
        entry: dict[str, Any] = {"node": list(branch.key), "reasoning": decision.reasoning}
        if branch.span is not None:
            entry["document_id"], entry["filename"] = branch.span.document_id, branch.span.filename
        if decision.action == "revert" and branch is not root:
            memory.add(f"A section about: {branch.summary[:300]} did not hold the answer.")
            revert(branch, decision.reasoning)
            continue
        if decision.action == "open" and decision.child is not None and 1 <= decision.child <= len(options):
            chosen = options[decision.child - 1]
            entry.update(action="open", child=list(chosen.key))
        else:
            chosen = options[0]
            entry.update(action="open", child=list(chosen.key), invalid=True, model_action=decision.action)
        step(entry)
        if chosen.node is not None and chosen.node.level == 0 and chosen.span is not None:
            memory.add(f"Opening [S{chosen.span.offset + (chosen.node.segment_index or 0)}] of {chosen.span.filename}")
        else:
            memory.add(f"Opened {chosen.summary[:400]}")
        path.append(chosen)
    if answer is None:
        answer = client.complete("nav_final", question=question, memory=memory.render(), conversation=conversation).text
        step({"action": "step_limit" if path else "exhausted", "reasoning": ""})
    text, citations, dropped = cite(session, client, question, answer, labels, reads)
    return CollectionDraft(
        answer=text,
        strategy="tree",
        strategy_reason=reason,
        citations=citations,
        dropped=dropped,
        document_ids=[span.document_id for span in labels.spans],
        trace=trace,
    )


# ------------------------------------------------------------------------------------------- chain


def chain_collection(
    session: Session,
    document_ids: Sequence[str],
    question: str,
    client: LLMClient,
    *,
    progress: ProgressFn = no_progress,
    conversation: str = "",
) -> CollectionDraft:
    """Read the documents in the given order through one chain of workers, the communication unit carried
    from each document into the next; a manager answers from the last unit; citations name their document.

    Each document is chunked as on its own (`chain.plan_chain`); one document's text is in memory at a time."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    labels = Labels()
    plans: list[tuple[str, ChainPlan]] = []
    for document_id in document_ids:
        document = session.get(Document, document_id)
        if document is None:
            continue
        plan = plan_chain(session, document, question, client)
        labels.add(document.id, document.filename, len(plan.segments), plan.segment_tokens)
        plans.append((document.id, plan))
        session.expunge(document)
    total = sum(len(plan.chunks) for _, plan in plans)
    unit = EMPTY_UNIT
    trace: list[dict[str, Any]] = []
    reads: dict[str, list[Evidence]] = {}
    done = 0
    for (document_id, plan), span in zip(plans, labels.spans, strict=True):
        document = session.get(Document, document_id)
        if document is None:
            continue
        for chunk in plan.chunks:
            progress("reading in order", done, total + 1)
            passages = plan.segments[chunk.first : chunk.last + 1]
            text = f"(document {document.filename})\n\n" + "\n\n".join(
                f"[S{span.offset + s.index}] {document.text[s.start : s.end]}" for s in passages
            )
            prompt, raw = render_worker(
                client,
                question,
                step=done + 1,
                total=total,
                chunk=text,
                unit=unit,
                unit_tokens=plan.budget.unit_tokens,
            )
            completion = client.complete_messages(
                [{"role": "user", "content": prompt}], max_tokens=plan.budget.output_tokens, raw=raw
            )
            unit = client.counter.truncate(completion.text, plan.budget.unit_tokens) or unit
            reads.setdefault(document_id, []).extend(Evidence(s.index, s.start, s.end) for s in passages)
            done += 1
            trace.append(
                {
                    "stage": "chain",
                    "step": done,
                    "document_id": document_id,
                    "filename": document.filename,
                    "segments": [chunk.first, chunk.last],
                    "unit_tokens": client.counter.count(unit),
                    "notes": unit[:TRACE_NOTES_CHARS],
                }
            )
        session.expunge(document)
        del document
    progress("writing the answer", total, total + 1)
    completion = client.complete("chain_manager", unit=unit, question=question, conversation=conversation)
    trace.append({"stage": "chain", "step": done + 1, "role": "manager"})
    text, citations, dropped = cite(session, client, question, completion.text, labels, reads)
    order = ", ".join(span.filename for span in labels.spans)
    return CollectionDraft(
        answer=text,
        strategy="chain",
        strategy_reason=f"a chain of workers reading the documents in order ({order}), notes carried across them",
        citations=citations,
        dropped=dropped,
        document_ids=[span.document_id for span in labels.spans],
        trace=trace,
    )


def _global_labels(answer: str, span: Span) -> str:
    """A document's own [S<n>] labels as the collection's numbers."""

    def replace(match: re.Match[str]) -> str:
        kept = [f"S{span.offset + int(label.group(1))}" for label in _LABEL.finditer(match.group(1))]
        return "[" + ", ".join(kept) + "]"

    return _BRACKET.sub(replace, answer)


def map_reduce_collection(
    session: Session,
    document_ids: Sequence[str],
    question: str,
    client: LLMClient,
    *,
    progress: ProgressFn = no_progress,
    conversation: str = "",
) -> CollectionDraft:
    """Each document answered by its own chain, then one manager call over those answers (an aggregation
    question over the whole collection); citations name their document."""
    from longread.agents.chain import run_chain

    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    labels = Labels()
    reads: dict[str, list[Evidence]] = {}
    parts: list[str] = []
    trace: list[dict[str, Any]] = []
    # Only the combining call's answer streams, not each document's own (the chain's manager answers them).
    sink, client.on_answer_text = client.on_answer_text, None
    try:
        for n, document_id in enumerate(document_ids):
            progress("reading each document", n, len(document_ids) + 1)
            document = session.get(Document, document_id)
            if document is None:
                continue
            draft = run_chain(session, document, question, client)
            segments = ensure_segments(session, document, client.model, segment_tokens=draft.segment_tokens)
            span = labels.add(document.id, document.filename, len(segments), draft.segment_tokens)
            reads[document.id] = list(draft.read)
            parts.append(f"(document {document.filename}) {_global_labels(draft.answer.strip(), span)}")
            trace.append(
                {
                    "stage": "map",
                    "document_id": document.id,
                    "filename": document.filename,
                    "workers": sum(1 for step in draft.trace if step.get("role") != "manager"),
                    "answer": draft.answer[:TRACE_NOTES_CHARS],
                }
            )
            session.expunge(document)
            del document
    finally:
        client.on_answer_text = sink
    progress("combining the answers", len(document_ids), len(document_ids) + 1)
    completion = client.complete("chain_manager", unit="\n\n".join(parts), question=question, conversation=conversation)
    trace.append({"stage": "reduce", "documents": len(parts)})
    text, citations, dropped = cite(session, client, question, completion.text, labels, reads)
    return CollectionDraft(
        answer=text,
        strategy="chain",
        strategy_reason=f"map-reduce for a question about the whole collection: each of {len(parts)} documents "
        "read by its own chain, then one answer over theirs",
        citations=citations,
        dropped=dropped,
        document_ids=[span.document_id for span in labels.spans],
        trace=trace,
    )
