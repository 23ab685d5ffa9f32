"""The shortlist strategy: retrieval shortlists, the local model's attention re-ranks, the best answer.

1. Index (`index`): the document's passages with BM25 and stored dense embeddings, built once.
2. Shortlist (`fusion`): the BM25 and dense rankings, `SHORTLIST_DEPTH` deep each, fused by
   reciprocal rank; the first `SHORTLIST_SIZE` passages are the candidates.
3. Re-rank (`rerank`): one read of the candidates by the local model with the question last; the
   question's calibrated attention orders them (ICR).
4. Answer: the best candidates within `EVIDENCE_TOKENS` are the evidence, shown in document order,
   to the local model's few-shot prompt (a base model copies a phrase) or to a hosted model
   (`--answer-with`, or a hosted `LONGREAD_LLM`) as numbered passages it cites.
5. One more hop when the first answer names what the question depends on but not the fact (a hosted
   model says `Next: <name>`) or finds nothing (a base model says "not stated"; the best passage's
   names then carry the search): the query is expanded once and steps 2–4 run again.

The trace records every candidate's BM25, dense and fused rank and its attention score, and the
seconds each stage took, so a reader can see how the answer was reached.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from longread.agents import selection
from longread.agents.base import AnswerDraft, Evidence
from longread.agents.citations import answer_phrase
from longread.agents.shortlist.fusion import reciprocal_rank_fusion
from longread.agents.shortlist.index import PassageIndex, ensure_index
from longread.config import get_settings
from longread.llm.answer_text import RESTART, HiddenLines, restarted
from longread.llm.prompts import render_prompt

if TYPE_CHECKING:
    from longread.agents.base import ReadRequest
    from longread.agents.baselines import Unit
    from longread.llm import LLMClient, Usage
    from longread.llm.local_provider import Choice

STRATEGY = "shortlist"
_LOCAL_PROMPT = "attention_answer_local"
_HOSTED_PROMPT = "shortlist_answer_hosted"
_LOCAL_ANSWER_TOKENS = 12
_NOT_STATED_MARGIN = 2.0
_CHOICES_SHOWN = 5
NOT_STATED = "not stated"
_CITATION = re.compile(r"\[(\d{1,3})\]")
_NEXT = re.compile(r"^\s*Next:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_NEXT_CUE = "next:"
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+)?[A-Z][a-z]+)*")
_NOT_FOUND = ("not stated", "the document does not say", "does not say", "not given", "unknown")
_FILLER = frozenset("a an the of at in on to by s his her their its".split())
_TITLES = frozenset("Mr Mrs Miss Ms Dr Sir Lady Lord Captain Colonel The A An And But He She It They".split())


@dataclass
class Candidate:
    """A shortlisted passage and how each ranking placed it."""

    passage: int
    unit: Unit
    fused_rank: int
    bm25_rank: int | None
    dense_rank: int | None
    attention: float = 0.0
    attention_rank: int = 0


@dataclass
class Reading:
    """One round: the query it read for, its candidates in attention order, and the chosen evidence."""

    query: str
    candidates: list[Candidate]
    evidence: list[Candidate]
    shortlist_s: float
    rerank_s: float
    rerank_tokens: int


@dataclass(frozen=True)
class Knobs:
    size: int
    depth: int
    unit_tokens: int
    layers: str
    evidence_tokens: int


def knobs() -> Knobs:
    settings = get_settings()
    if settings.SHORTLIST_SIZE < 1 or settings.SHORTLIST_DEPTH < 1 or settings.EVIDENCE_TOKENS < 1:
        raise ValueError("SHORTLIST_SIZE, SHORTLIST_DEPTH and EVIDENCE_TOKENS must be positive")
    return Knobs(
        size=settings.SHORTLIST_SIZE,
        depth=max(settings.SHORTLIST_DEPTH, settings.SHORTLIST_SIZE),
        unit_tokens=settings.SHORTLIST_UNIT_TOKENS or settings.RETRIEVAL_UNIT_TOKENS,
        layers=settings.SHORTLIST_LAYERS,
        evidence_tokens=settings.EVIDENCE_TOKENS,
    )


# ------------------------------------------------------------------------------------------- reading


def shortlist(index: PassageIndex, query: str, depth: int, size: int) -> list[Candidate]:
    """The fused BM25 + dense ranking's first `size` passages, best first."""
    lexical = [i for i, _ in index.lexical(query, depth)]
    dense = [i for i, _ in index.dense(query, depth)]
    fused = reciprocal_rank_fusion({"bm25": lexical, "dense": dense}, limit=size)
    return [
        Candidate(f.item, index.passages[f.item], rank, f.ranks.get("bm25"), f.ranks.get("dense"))
        for rank, f in enumerate(fused, start=1)
    ]


def within_budget(ranked: list[Candidate], budget: int) -> list[Candidate]:
    """The best-ranked candidates that fit the budget together (a too-long one is skipped, not an end);
    the best one alone when none fits."""
    return selection.within_budget(ranked, budget, lambda c: c.unit.n_tokens) or ranked[:1]


def read_round(text: str, index: PassageIndex, question: str, query: str, k: Knobs) -> Reading:
    """Shortlist for `query`, re-rank by the attention `question` pays, pick the evidence."""
    from longread.agents.shortlist.rerank import rerank

    started = time.perf_counter()
    candidates = shortlist(index, query, k.depth, k.size)
    listed = time.perf_counter()
    scored = rerank(question, [text[c.unit.start : c.unit.end] for c in candidates], layers=k.layers)
    for candidate, score in zip(candidates, scored.scores, strict=True):
        candidate.attention = score
    ranked = sorted(candidates, key=lambda c: (-c.attention, c.fused_rank))
    for rank, candidate in enumerate(ranked, start=1):
        candidate.attention_rank = rank
    evidence = within_budget(ranked, k.evidence_tokens)
    return Reading(query, ranked, evidence, listed - started, scored.seconds, scored.tokens)


# ----------------------------------------------------------------------------------------- answering


def _in_document_order(evidence: list[Candidate]) -> list[Candidate]:
    return sorted(evidence, key=lambda c: c.unit.start)


@dataclass(frozen=True)
class LocalAnswer:
    """The local model's answer and the phrases it chose among, best first, with their scores (log-probability
    plus the evidence prior, in nats)."""

    answer: str
    choices: list[tuple[str, float]]


def answer_locally(model: str, question: str, evidence: Sequence[str], usage: Usage) -> LocalAnswer:
    """The base model's choice among the evidence's candidate phrases (or "not stated"), by likelihood.

    `evidence` is the passages' text, best first (one document's or a collection's: both readers answer
    this way); `scored_phrases` says how each phrase is scored.
    """
    ranked, choice = scored_phrases(model, question, evidence)
    read = sum(n for _, _, n in ranked)
    usage.record(
        prompt_tokens=choice.prompt_tokens + read,
        completion_tokens=len(choice.free.split()) + 1,
        cost_usd=0.0,
        cached=False,
    )
    return LocalAnswer(ranked[0][0], [(phrase, round(score, 3)) for phrase, score, _ in ranked[:_CHOICES_SHOWN]])


def scored_phrases(model: str, question: str, evidence: Sequence[str]) -> tuple[list[tuple[str, float, int]], Choice]:
    """Every candidate phrase of the evidence (passages best first) with its score and token count, best
    first, and the model's pass over the prompt.

    The few-shot prompt is the one the model would answer freely. The model first writes its own answer
    (greedy, a few tokens); then every candidate phrase (`phrases.candidate_phrases`), its own answer
    when it copied it from the evidence, and "not stated" are scored as the continuation after
    "Answer:", each ended by the newline that closes an answer, so a cut-off name scores below the whole
    one. Each phrase's score is that log-probability plus what the evidence says for it
    (`phrases.evidence_prior`: how often the passages mention it, how high the re-ranker put the best
    passage holding it); the best score is the answer. "not stated" must beat the best phrase by
    `_NOT_STATED_MARGIN` nats (it also triggers the second hop). The evidence goes best last, nearest
    the question: a small model leans on what it read last.
    """
    from longread.agents.shortlist.phrases import candidate_phrases, copied_phrase, evidence_prior
    from longread.llm.local_provider import choose_continuation

    passages = [" ".join(passage.split()) for passage in evidence]
    joined = " ".join(reversed(passages))
    prompt = render_prompt(_LOCAL_PROMPT, evidence=joined, question=question)
    options = [*candidate_phrases(joined, question), NOT_STATED]

    def own_answer(free: str) -> list[str]:
        phrase = copied_phrase(free, joined, question)
        if phrase and phrase not in options:
            options.append(phrase)
            return [f" {phrase}\n"]
        return []

    choice = choose_continuation(
        model, prompt, [f" {option}\n" for option in options], free_tokens=_LOCAL_ANSWER_TOKENS, also=own_answer
    )
    bonus = {o: -_NOT_STATED_MARGIN if o == NOT_STATED else evidence_prior(o, passages) for o in options}
    ranked = sorted(
        ((option, logprob + bonus[option], n) for option, (logprob, n) in zip(options, choice.scores, strict=True)),
        key=lambda item: -item[1],
    )
    return ranked, choice


def answer_hosted(
    client: LLMClient,
    question: str,
    text: str,
    evidence: list[Candidate],
    conversation: str = "",
    stream_to: Callable[[str], None] | None = None,
) -> tuple[str, list[int]]:
    """A hosted model's answer over numbered passages (document order) and the numbers it cites.

    `conversation` (a follow-up's recent turns, longread.conversation) goes to the prompt, so the answer
    can refer back to them; retrieval reads the rewritten question alone. The answer streams to
    `stream_to` (else `client.on_answer_text`) as it is written, without its `Next: <name>` line.
    """
    ordered = _in_document_order(evidence)
    passages = [{"number": n, "text": text[c.unit.start : c.unit.end].strip()} for n, c in enumerate(ordered, 1)]
    sink = stream_to or client.on_answer_text
    relay = HiddenLines(sink, _NEXT_CUE) if sink is not None else None
    completion = client.complete(
        _HOSTED_PROMPT, passages=passages, question=question, conversation=conversation, stream_to=relay
    )
    if relay is not None:
        relay.finish()
    return completion.text.strip(), [int(n) for n in _CITATION.findall(completion.text)]


def found_nothing(answer: str, question: str = "") -> bool:
    """No answer: "not stated" and the like, or only the question's own words said back."""
    phrase = answer_phrase(answer)
    if not phrase or any(phrase.startswith(p) for p in _NOT_FOUND):
        return True
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    said = {w for w in re.findall(r"\w+", phrase) if w not in _FILLER}
    return bool(question) and said <= asked


def cited_by_phrase(text: str, answer: str, question: str, evidence: list[Candidate]) -> list[Candidate]:
    """Every evidence passage the model read: those holding the answer verbatim first, then the rest best-ranked.

    A base model cites nothing, so what it chose its phrase from is cited first; the other passages it read
    (the evidence budget, about a thousand tokens) follow, so the citations show all the answer rests on
    and where the answer most likely is when the choice is wrong.
    """
    phrase = answer_phrase(answer)
    cited: list[Candidate] = []
    if len(phrase) >= 2 and not found_nothing(answer, question):
        cited = [c for c in evidence if phrase in " ".join(text[c.unit.start : c.unit.end].split()).lower()]
    return cited + [candidate for candidate in evidence if candidate not in cited]


def next_entity(answer: str, question: str, text: str, reading: Reading, hosted: bool) -> str | None:
    """What to expand the query with for a second hop, or None when the first answer stands."""
    if hosted:
        match = _NEXT.search(answer)
        return match.group(1).strip().strip(".") if match else None
    if not found_nothing(answer, question) or not reading.evidence:
        return None
    best = reading.evidence[0].unit
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    names = []
    for name in _NAME.findall(text[best.start : best.end]):
        words = [w for w in name.split() if w not in _TITLES]
        if words and not any(w.lower() in asked for w in words) and name not in names:
            names.append(" ".join(words))
    return " ".join(names[:3]) or None


# ------------------------------------------------------------------------------------------- reader


def _candidate_trace(reading: Reading) -> list[dict[str, Any]]:
    chosen = {c.passage for c in reading.evidence}
    return [
        {
            "passage": c.passage,
            "segment": c.unit.segment_index,
            "start": c.unit.start,
            "end": c.unit.end,
            "bm25_rank": c.bm25_rank,
            "dense_rank": c.dense_rank,
            "fused_rank": c.fused_rank,
            "attention": round(c.attention, 5),
            "attention_rank": c.attention_rank,
            "evidence": c.passage in chosen,
        }
        for c in sorted(reading.candidates, key=lambda c: c.fused_rank)
    ]


def read_with_shortlist(request: ReadRequest) -> AnswerDraft:
    """Shortlist passages by BM25 + dense fusion, re-rank them by attention, answer from the best."""
    from longread.agents.shortlist.rerank import load_reranker

    question = request.require_question().strip()
    if not question:
        raise ValueError("the question is empty")
    k = knobs()
    client, progress, text = request.client, request.progress, request.document.text
    trace: list[dict[str, Any]] = []
    started = time.perf_counter()

    progress("index", 0, 1)
    index = ensure_index(
        request.session, request.document, request.segments(), client.counter, k.unit_tokens, progress=progress
    )
    progress("index", 1, 1)
    trace.append(
        {
            "stage": "index",
            "passages": len(index.passages),
            "unit_tokens": k.unit_tokens,
            "built": index.built_seconds > 0,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    if not index.passages:
        return AnswerDraft(answer="The document has no readable text.", strategy=STRATEGY, trace=trace)

    answer_model = request.answer_with or client.model
    hosted = not answer_model.startswith("local/")
    load_reranker()
    answerer = client if answer_model == client.model else None
    if hosted and answerer is None:
        answerer = client.with_model(answer_model)  # the same cache, tenant scope and accounting

    # The hosted answer streams as it is written; the local answer, a phrase of a few words, is relayed
    # whole once chosen. A second hop's answer starts the streamed text over; when the first answer
    # stands after all, it is relayed again, so the stream ends on the answer kept.
    sink = client.on_answer_text  # the answerer's too (`LLMClient.with_model` keeps it)
    shown = [0]  # the hop whose answer the streamed text is

    def stream_for(hop: int) -> Callable[[str], None] | None:
        if sink is None or hop == 0:
            return sink
        relay = restarted(sink)

        def relay_hop(piece: str) -> None:
            shown[0] = hop
            relay(piece)

        return relay_hop

    def read_and_answer(query: str, hop: int) -> tuple[Reading, str, list[Candidate], int]:
        progress("shortlist", 0, 1)
        reading = read_round(text, index, question, query, k)
        progress("shortlist", 1, 1)
        progress("rerank", 1, 1)
        progress("answer", 0, 1)
        answered = time.perf_counter()
        unknown = 0
        choices: list[tuple[str, float]] = []
        if hosted:
            assert answerer is not None
            answer, numbers = answer_hosted(
                answerer, question, text, reading.evidence, request.conversation, stream_to=stream_for(hop)
            )
            ordered = _in_document_order(reading.evidence)
            valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= len(ordered)]
            unknown = sum(1 for n in numbers if not 1 <= n <= len(ordered))
            cited = [ordered[n - 1] for n in valid]
        else:
            passages = [text[c.unit.start : c.unit.end] for c in reading.evidence]
            local = answer_locally(answer_model, question, passages, client.usage)
            answer, choices = local.answer, local.choices
            cited = cited_by_phrase(text, answer, question, reading.evidence)
            stream = stream_for(hop)
            if stream is not None and answer:
                stream(answer)
        progress("answer", 1, 1)
        trace.append(
            {
                "stage": "shortlist",
                "hop": hop,
                "query": query,
                "candidates": _candidate_trace(reading),
                "evidence_tokens": sum(c.unit.n_tokens for c in reading.evidence),
                "rerank_tokens": reading.rerank_tokens,
                "seconds": {
                    "shortlist": round(reading.shortlist_s, 3),
                    "rerank": round(reading.rerank_s, 3),
                    "answer": round(time.perf_counter() - answered, 3),
                },
                "answer": answer[:500],
                **({"choices": [{"phrase": p, "score": score} for p, score in choices]} if choices else {}),
            }
        )
        return reading, answer, cited, unknown

    reading, answer, cited, unknown = read_and_answer(question, 0)
    entity = next_entity(answer, question, text, reading, hosted)
    kept = 0
    if entity:
        second = read_and_answer(f"{question} {entity}", 1)
        if not found_nothing(second[1], question) or found_nothing(answer, question):
            reading, answer, cited, unknown = second
            kept = 1
    shown_text = answer
    if hosted:
        shown_text = _NEXT.sub("", answer).strip()
        answer = shown_text or answer
    if sink is not None and kept != shown[0]:
        sink(RESTART + shown_text)
    read = [Evidence(c.unit.segment_index, c.unit.start, c.unit.end) for c in _in_document_order(reading.evidence)]
    trace.append({"stage": "done", "hops": 2 if entity else 1, "seconds": round(time.perf_counter() - started, 3)})
    how = f"answered by {answer_model}" if hosted else "answered by the local model"
    return AnswerDraft(
        answer=answer,
        strategy=STRATEGY,
        cited=[Evidence(c.unit.segment_index, c.unit.start, c.unit.end) for c in cited],
        read=read,
        trace=trace,
        strategy_reason=f"BM25 + dense shortlist of {k.size}, re-ranked by the local model's attention, {how}",
        unknown_citations=unknown,
    )


def how_it_read(trace: list[dict[str, Any]]) -> str | None:
    """One line for people: the index, each round's candidates and evidence, and the seconds they took."""
    rounds = [step for step in trace if step.get("stage") == "shortlist"]
    if not rounds:
        return None
    index = next((step for step in trace if step.get("stage") == "index"), {})
    parts = [
        f"index of {index.get('passages', 0)} passages {'built' if index.get('built') else 'reused'} "
        f"({index.get('seconds', 0)} s)"
    ]
    for step in rounds:
        candidates = step.get("candidates", [])
        seconds = step.get("seconds", {})
        read = sum(1 for c in candidates if c.get("evidence"))
        parts.append(
            f"{'second hop' if step.get('hop') else 'shortlist'}: {len(candidates)} passages from BM25 + dense, "
            f"re-ranked by attention in {seconds.get('rerank', 0)} s, best {read} read, "
            f"answered in {seconds.get('answer', 0)} s"
        )
    return "; ".join(parts)
