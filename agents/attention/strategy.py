"""The attention strategy as the engine calls it: retrieve evidence by attention, then answer.

The scorer is always the local model (LOCAL_MODEL). The answer comes from the local model with a
few-shot prompt suited to a base model, or — the hybrid — from a hosted model that sees the numbered
evidence and cites it.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from longread.agents.attention.config import AttentionConfig, attention_config
from longread.agents.attention.retriever import Retrieval, ScanStore, ScoredUnit, retrieve
from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.partial import EVIDENCE_ONLY, PartialFn, no_partial
from longread.llm.prompts import render_prompt
from longread.local_model import load_local_model

if TYPE_CHECKING:
    from longread.llm import LLMClient

STRATEGY = "attention"
_CITATION = re.compile(r"\[(\d{1,3})\]")
_LOCAL_ANSWER_TOKENS = 48
_SCAN_FORMAT = "scan-v1"


def scan_key(text: str, question: str, lm: Any, config: AttentionConfig, multi_hop: bool) -> str:
    """Names a reading by everything its passes depend on: the text, the question, the model as loaded
    (its files, device and precision) and the scan settings."""
    text_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    parts = [_SCAN_FORMAT, text_digest, question, str(lm.source), str(lm.device), str(lm.dtype), repr(config)]
    parts.append(str(multi_hop))
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


class SegmentLike(Protocol):
    index: int
    start: int
    end: int


def _segment_index(segments: Sequence[SegmentLike], start: int) -> int:
    """Index of the segment containing char offset `start` (segments are in document order)."""
    if not segments:
        return 0
    starts = [s.start for s in segments]
    pos = max(bisect.bisect_right(starts, start) - 1, 0)
    return int(segments[pos].index)


def _evidence(segments: Sequence[SegmentLike], scored: ScoredUnit) -> Evidence:
    return Evidence(_segment_index(segments, scored.unit.start), scored.unit.start, scored.unit.end)


def _passages(text: str, evidence: list[ScoredUnit]) -> list[dict[str, Any]]:
    """Numbered passages in document order, adjacent sentences merged into one passage text."""
    out: list[dict[str, Any]] = []
    previous = None
    for number, scored in enumerate(evidence, start=1):
        gap = previous is not None and scored.unit.index != previous + 1
        body = text[scored.unit.start : scored.unit.end]
        out.append({"number": number, "text": ("[…] " if gap else "") + body})
        previous = scored.unit.index
    return out


def _normalise(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().strip(".,;:!?\"'").lower()


def _answer_local(model: str | None, question: str, text: str, evidence: list[ScoredUnit], usage: Any) -> str:
    from longread.llm.local_provider import generate_raw

    joined = " ".join(text[s.unit.start : s.unit.end] for s in evidence)
    prompt = render_prompt("attention_answer_local", evidence=joined, question=question)
    if usage is not None:  # this call bypasses LLMClient, so it asks the job's budget itself
        usage.check_budget()
    answer, n_prompt, n_out = generate_raw(
        model or "local/default", prompt, max_tokens=_LOCAL_ANSWER_TOKENS, stop=["\n"]
    )
    if usage is not None:
        usage.record(prompt_tokens=n_prompt, completion_tokens=n_out, cost_usd=0.0, cached=False)
    return answer


def _cited_by_answer(text: str, answer: str, evidence: list[ScoredUnit]) -> list[ScoredUnit]:
    """Evidence sentences that contain the answer; else the three best-scoring ones."""
    needle = _normalise(answer)
    if len(needle) >= 2:
        hits = [s for s in evidence if needle in _normalise(text[s.unit.start : s.unit.end])]
        if hits:
            return hits
    return sorted(evidence, key=lambda s: -s.score)[:3]


def _answer_hosted(
    answer_model: str,
    question: str,
    passages: list[dict[str, Any]],
    usage: Any,
    reader: LLMClient | None,
    conversation: str = "",
) -> tuple[str, list[int]]:
    from longread.llm import LLMClient

    # The reader's client carries the completion cache and the tenant's cache scope; keep both.
    client = reader.with_model(answer_model) if reader is not None else LLMClient(answer_model, usage=usage)
    completion = client.complete(
        "attention_answer_hosted", passages=passages, question=question, conversation=conversation
    )
    numbers = [int(n) for n in _CITATION.findall(completion.text)]
    return completion.text.strip(), numbers


def read_with_attention(
    text: str,
    question: str,
    *,
    segments: Sequence[SegmentLike],
    answer_model: str | None,
    usage: Any | None = None,
    client: LLMClient | None = None,
    progress: ProgressFn | None = None,
    multi_hop: bool = False,
    partial: PartialFn = no_partial,
    conversation: str = "",
    checkpoints: Callable[[str], ScanStore] | None = None,
    **overrides: Any,
) -> AnswerDraft:
    """Evidence chosen by the local model's attention, answered locally or by a hosted model.

    `conversation` (a follow-up's recent turns) goes to the hosted answering prompt. The local model's
    few-shot prompt copies a phrase from the evidence and would be led astray by earlier answers: it
    reads the question the engine rewrote to stand on its own, as attention retrieval does.

    `checkpoints` opens the store where the scan saves its progress after every chunk (by the reading's
    key): a job killed mid-scan resumes from its last saved chunk on another worker, and one killed while
    answering finds its scan done. The saved passes are cleared once the question is answered.

    `overrides` reach the retriever config (chunk_tokens, evidence_tokens, layers, …) for benchmarks.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    lm = load_local_model(None)
    config = attention_config(lm.model.config, lm.device, **overrides)
    store = checkpoints(scan_key(text, question, lm, config, multi_hop)) if checkpoints is not None else None
    result: Retrieval = retrieve(
        lm, text, question, config, progress=progress or no_progress, multi_hop=multi_hop, store=store
    )
    evidence = result.evidence
    carried = set(result.carried)
    read = [_evidence(segments, s) for s in evidence]
    trace: list[dict[str, Any]] = list(result.trace)
    trace.append(
        {
            "stage": "attention summary",
            "tokens": result.n_tokens,
            "chunks": result.n_chunks,
            "scored_tokens": result.scored_tokens,
            "seconds": round(result.seconds, 3),
            "layers": list(config.layers),
            "chunk_tokens": config.chunk_tokens,
            "evidence_tokens": config.evidence_tokens,
            "multi_hop": multi_hop,
            "evidence": [
                {
                    "start": s.unit.start,
                    "end": s.unit.end,
                    "score": round(s.score, 5),
                    "carried": s.unit.index in carried,
                }
                for s in evidence
            ],
        }
    )
    if not evidence:
        return AnswerDraft(answer="The document has no readable text.", strategy=STRATEGY, trace=trace)
    top = sorted(evidence, key=lambda s: -s.score)[:3]
    partial(
        AnswerDraft(
            answer=EVIDENCE_ONLY,
            strategy=STRATEGY,
            cited=[_evidence(segments, s) for s in top],
            read=read,
            trace=trace,
        )
    )
    unknown = 0
    if answer_model is None or answer_model.startswith("local/"):
        answer = _answer_local(answer_model, question, text, evidence, usage)
        cited = [_evidence(segments, s) for s in _cited_by_answer(text, answer, evidence)]
        reason = "attention retrieval answered by the local model"
    else:
        passages = _passages(text, evidence)
        answer, numbers = _answer_hosted(answer_model, question, passages, usage, client, conversation)
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= len(evidence)]
        unknown = sum(1 for n in numbers if not 1 <= n <= len(evidence))
        cited = [read[n - 1] for n in valid]
        reason = f"attention retrieval by the local model, answered by {answer_model}"
    if store is not None:  # answered: the saved passes have served (a crash before this rescans nothing)
        store.clear()
    return AnswerDraft(
        answer=answer,
        strategy=STRATEGY,
        cited=cited,
        read=read,
        trace=trace,
        strategy_reason=reason,
        unknown_citations=unknown,
    )
