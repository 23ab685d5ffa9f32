"""Reading a collection: passages ranked across every document, one re-rank, one answer.

Each document's retrieval index (`index.ensure_index`) is built once and stored, so a collection costs
only the documents not read before. Documents are visited one at a time: a document's text is loaded,
its `depth` best passages by BM25 and by dense similarity are kept (with their text), and the document
is released before the next, so the whole collection is never in memory at once. The kept passages are
ranked across the collection:

- `shortlist`: the collection-wide BM25 and dense rankings fused by reciprocal rank, the first
  `SHORTLIST_SIZE` read once by the local model, ordered by the question's attention (as for one document);
- `bm25` / `dense`: one ranking alone, no local model.

Cosine similarities compare across documents; BM25 scores are computed with each document's own term
statistics, which rank fusion tolerates since it uses ranks only. The best passages within
`EVIDENCE_TOKENS` are the evidence for one answer (a hosted model cites numbered passages; the local base
model chooses a phrase of the evidence, as for one document). Citations are checked per document against
what was read and name their document.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from longread.agents import selection
from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.baselines import Unit
from longread.agents.citations import check_citations
from longread.agents.segments import ensure_segments
from longread.agents.shortlist.fusion import reciprocal_rank_fusion
from longread.agents.shortlist.index import ensure_index
from longread.agents.shortlist.strategy import answer_locally, cited_by_phrase, knobs
from longread.storage.models import Document

if TYPE_CHECKING:
    from sqlmodel import Session

    from longread.llm import LLMClient

METHODS = ("shortlist", "bm25", "dense")
"""How a collection's passages are ranked: fusion re-ranked by attention, or one retrieval ranking."""
_HOSTED_PROMPT = "collection_answer_hosted"
_CITATION = re.compile(r"\[(\d{1,3})\]")

Reranker = Callable[[str, Sequence[str]], list[float]]
"""Scores passages for a question, one score per passage (higher is better)."""


@dataclass
class Hit:
    """A passage of one document of the collection, and how the rankings placed it."""

    document_id: str
    filename: str
    passage: int
    unit: Unit
    text: str
    bm25: float | None = None
    dense: float | None = None
    bm25_rank: int | None = None
    dense_rank: int | None = None
    fused_rank: int = 0
    attention: float | None = None
    rank: int = 0


@dataclass
class CollectionDraft:
    """The answer over a collection, its checked citations (each naming its document) and trace."""

    answer: str
    strategy: str
    strategy_reason: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    document_ids: list[str] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)


def attention_reranker(question: str, passages: Sequence[str]) -> list[float]:
    """The local model's ICR scores (agents.shortlist.rerank), loaded on first use."""
    from longread.agents.shortlist.rerank import rerank

    return rerank(question, passages, layers=knobs().layers).scores


def index_documents(
    session: Session, document_ids: Sequence[str], client: LLMClient, progress: ProgressFn = no_progress
) -> list[dict[str, Any]]:
    """Build (or find) each document's retrieval index as a question over a collection will read it.

    Run as documents join a collection, so a question finds every index built; a document whose index
    is stored costs only the lookup. One document's text is in memory at a time. Returns, per document,
    whether its index was built now and in how many seconds.
    """
    unit_tokens = knobs().unit_tokens
    done: list[dict[str, Any]] = []
    for n, document_id in enumerate(document_ids):
        progress("index", n, len(document_ids))
        document = session.get(Document, document_id)
        if document is None:
            continue
        segments = ensure_segments(session, document, client.model)
        index = ensure_index(session, document, segments, client.counter, unit_tokens)
        done.append(
            {
                "document_id": document.id,
                "passages": len(index.passages),
                "built": index.built_seconds > 0,
                "seconds": round(index.built_seconds, 3),
            }
        )
        session.expunge(document)
        del document, index
    progress("index", len(document_ids), len(document_ids))
    return done


def _gather(
    session: Session,
    document_ids: Sequence[str],
    question: str,
    client: LLMClient,
    depth: int,
    unit_tokens: int,
    progress: ProgressFn,
    trace: list[dict[str, Any]],
) -> list[Hit]:
    """Each document's best passages by BM25 and by dense similarity, one document in memory at a time."""
    hits: dict[tuple[str, int], Hit] = {}
    for n, document_id in enumerate(document_ids):
        progress("index", n, len(document_ids))
        document = session.get(Document, document_id)
        if document is None:
            continue
        started = time.perf_counter()
        segments = ensure_segments(session, document, client.model)
        index = ensure_index(session, document, segments, client.counter, unit_tokens)
        for kind, ranking in (("bm25", index.lexical(question, depth)), ("dense", index.dense(question, depth))):
            for passage, score in ranking:
                unit = index.passages[passage]
                hit = hits.get((document.id, passage))
                if hit is None:
                    text = document.text[unit.start : unit.end]
                    hit = hits[(document.id, passage)] = Hit(document.id, document.filename, passage, unit, text)
                setattr(hit, kind, score)
        trace.append(
            {
                "stage": "index",
                "document_id": document.id,
                "filename": document.filename,
                "passages": len(index.passages),
                "built": index.built_seconds > 0,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        session.expunge(document)  # its text goes; only the kept passages stay
        del document, index
    progress("index", len(document_ids), len(document_ids))
    return list(hits.values())


def rank_hits(hits: list[Hit], method: str, depth: int, size: int) -> list[Hit]:
    """The collection-wide ranking: by BM25, by dense similarity, or both fused (the first `size`)."""
    by_bm25 = sorted((h for h in hits if h.bm25 is not None), key=lambda h: -(h.bm25 or 0.0))[:depth]
    by_dense = sorted((h for h in hits if h.dense is not None), key=lambda h: -(h.dense or 0.0))[:depth]
    for rank, hit in enumerate(by_bm25, start=1):
        hit.bm25_rank = rank
    for rank, hit in enumerate(by_dense, start=1):
        hit.dense_rank = rank
    if method == "bm25":
        ranked = by_bm25
    elif method == "dense":
        ranked = by_dense
    else:
        ids = {id(h): n for n, h in enumerate(hits)}
        fused = reciprocal_rank_fusion(
            {"bm25": [ids[id(h)] for h in by_bm25], "dense": [ids[id(h)] for h in by_dense]}, limit=size
        )
        ranked = [hits[f.item] for f in fused]
    ranked = ranked[:size]
    for rank, hit in enumerate(ranked, start=1):
        hit.fused_rank = rank
    return ranked


def _answer_hosted(
    client: LLMClient, question: str, evidence: list[Hit], conversation: str = ""
) -> tuple[str, list[int]]:
    passages = [
        {"number": n, "text": " ".join(h.text.split()), "filename": h.filename} for n, h in enumerate(evidence, 1)
    ]
    # The answer streams to `on_answer_text` as it is written.
    completion = client.complete(
        _HOSTED_PROMPT,
        passages=passages,
        question=question,
        conversation=conversation,
        stream_to=client.on_answer_text,
    )
    return completion.text.strip(), [int(n) for n in _CITATION.findall(completion.text)]


def _answer_locally(model: str, question: str, evidence: list[Hit], client: LLMClient) -> str:
    """The base model's phrase choice over the collection's evidence, as the single-document reader answers."""
    answer = answer_locally(model, question, [h.text for h in evidence], client.usage).answer
    if client.on_answer_text is not None and answer:  # a phrase of a few tokens: relayed whole
        client.on_answer_text(answer)
    return answer


def _check(
    session: Session, client: LLMClient, question: str, cited: list[Hit], evidence: list[Hit]
) -> list[dict[str, Any]]:
    """Citations checked document by document against what was read; each names its document."""
    citations: list[dict[str, Any]] = []
    for document_id in dict.fromkeys(h.document_id for h in cited):
        document = session.get(Document, document_id)
        if document is None:
            continue
        segments = ensure_segments(session, document, client.model)
        draft = AnswerDraft(
            answer="",
            strategy="shortlist",
            cited=[
                Evidence(h.unit.segment_index, h.unit.start, h.unit.end) for h in cited if h.document_id == document_id
            ],
            read=[
                Evidence(h.unit.segment_index, h.unit.start, h.unit.end)
                for h in evidence
                if h.document_id == document_id
            ],
        )
        for citation in check_citations(
            draft, document.text, segments, question, page_starts=document.page_starts
        ).citations:
            citations.append({**citation, "document_id": document.id, "filename": document.filename})
        session.expunge(document)
    order: dict[tuple[str, int], int] = {}
    for n, hit in enumerate(cited):
        order.setdefault((hit.document_id, hit.unit.segment_index), n)
    citations.sort(key=lambda c: order.get((c["document_id"], c["segment_index"]), len(order)))
    for n, citation in enumerate(citations, start=1):
        citation["n"] = n
    return citations


def read_collection(
    session: Session,
    document_ids: Sequence[str],
    question: str,
    client: LLMClient,
    *,
    method: str = "shortlist",
    answer_with: str | None = None,
    progress: ProgressFn = no_progress,
    reranker: Reranker | None = None,
    conversation: str = "",
) -> CollectionDraft:
    """Answer a question from the best passages of all the documents, citing them by document.

    `conversation` (a follow-up's recent turns, longread.conversation) goes to the hosted answering prompt;
    `question` is what retrieval and re-ranking read (a follow-up's standalone rewrite)."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    if method not in METHODS:
        raise ValueError(f"a collection is read with one of: {', '.join(METHODS)}")
    k = knobs()
    trace: list[dict[str, Any]] = []
    started = time.perf_counter()
    hits = _gather(session, document_ids, question, client, k.depth, k.unit_tokens, progress, trace)
    reason = {
        "shortlist": f"BM25 + dense shortlist of {k.size} across the collection, re-ranked by the local model's attention",
        "bm25": f"the {k.size} best passages across the collection by BM25",
        "dense": f"the {k.size} best passages across the collection by dense similarity",
    }[method]
    if not hits:
        return CollectionDraft(
            "The documents do not say.", method, reason, document_ids=list(document_ids), trace=trace
        )
    progress("shortlist", 0, 1)
    ranked = rank_hits(hits, method, k.depth, k.size)
    progress("shortlist", 1, 1)
    reranked_s = 0.0
    if method == "shortlist":
        progress("rerank", 0, 1)
        scoring = time.perf_counter()
        scores = (reranker or attention_reranker)(question, [h.text for h in ranked])
        for hit, score in zip(ranked, scores, strict=True):
            hit.attention = score
        ranked.sort(key=lambda h: (-(h.attention or 0.0), h.fused_rank))
        reranked_s = time.perf_counter() - scoring
        progress("rerank", 1, 1)
    for rank, hit in enumerate(ranked, start=1):
        hit.rank = rank
    evidence = selection.within_budget(ranked, k.evidence_tokens, lambda h: h.unit.n_tokens) or ranked[:1]
    progress("answer", 0, 1)
    answering = time.perf_counter()
    answer_model = answer_with or client.model
    unknown = 0
    if answer_model.startswith("local/"):
        answer = _answer_locally(answer_model, question, evidence, client)
        matches = cited_by_phrase_hits(answer, question, evidence)
    else:
        answerer = client if answer_model == client.model else client.with_model(answer_model)
        answer, numbers = _answer_hosted(answerer, question, evidence, conversation)
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= len(evidence)]
        unknown = sum(1 for n in numbers if not 1 <= n <= len(evidence))
        matches = [evidence[n - 1] for n in valid]
    progress("answer", 1, 1)
    citations = _check(session, client, question, matches, evidence)
    answer = _renumber(answer, evidence, citations)
    chosen = {id(h) for h in evidence}
    trace.append(
        {
            "stage": "shortlist",
            "method": method,
            "candidates": [
                {
                    "document_id": h.document_id,
                    "filename": h.filename,
                    "passage": h.passage,
                    "segment": h.unit.segment_index,
                    "start": h.unit.start,
                    "end": h.unit.end,
                    "bm25_rank": h.bm25_rank,
                    "dense_rank": h.dense_rank,
                    "fused_rank": h.fused_rank,
                    "attention": None if h.attention is None else round(h.attention, 5),
                    "rank": h.rank,
                    "evidence": id(h) in chosen,
                }
                for h in ranked
            ],
            "seconds": {"rerank": round(reranked_s, 3), "answer": round(time.perf_counter() - answering, 3)},
            "answer": answer[:500],
        }
    )
    trace.append({"stage": "done", "seconds": round(time.perf_counter() - started, 3)})
    how = f"answered by {answer_model}"
    return CollectionDraft(
        answer=answer,
        strategy=method,
        strategy_reason=f"{reason}, {how}",
        citations=citations,
        dropped=unknown,
        document_ids=list(document_ids),
        trace=trace,
    )


def cited_by_phrase_hits(answer: str, question: str, evidence: list[Hit]) -> list[Hit]:
    """What a base model read (it cites nothing): the evidence holding the answer first, then the rest."""
    joined = "\n\n".join(h.text for h in evidence)
    offsets, at = [], 0
    for hit in evidence:
        offsets.append(at)
        at += len(hit.text) + 2
    # Reuse the single-document rule on a text made of the evidence passages laid end to end.
    from longread.agents.shortlist.strategy import Candidate

    candidates = [
        Candidate(n, Unit(0, offsets[n], offsets[n] + len(h.text), h.unit.n_tokens), h.rank, None, None)
        for n, h in enumerate(evidence)
    ]
    return [evidence[c.passage] for c in cited_by_phrase(joined, answer, question, candidates)]


def _renumber(answer: str, evidence: list[Hit], citations: list[dict[str, Any]]) -> str:
    """Passage numbers in the answer become the numbers of the citations they turned into."""
    by_span = {(c["document_id"], c["start"], c["end"]): c["n"] for c in citations}
    by_segment: dict[tuple[str, int], int] = {}
    for c in citations:
        by_segment.setdefault((c["document_id"], c["segment_index"]), c["n"])

    def replace(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if not 1 <= number <= len(evidence):
            return ""
        hit = evidence[number - 1]
        n = by_span.get((hit.document_id, hit.unit.start, hit.unit.end))
        n = n if n is not None else by_segment.get((hit.document_id, hit.unit.segment_index))
        return f"[{n}]" if n is not None else ""

    return re.sub(r"[ \t]{2,}", " ", _CITATION.sub(replace, answer)).strip()
