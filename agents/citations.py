"""Checking an answer's citations against what the strategy actually read.

Models cite passages as [S12] (or [S12, S14]). A label is kept only if that segment was shown to the
model; unknown labels are removed from the answer and counted. Each kept citation gets exact character
offsets into the stored document text and the quoted passage: the sentence of the segment that best
matches the answer, or the exact span a strategy selected (attention retrieval). A citation of a PDF
names the page its quote starts on (`page`, 1-based; None for formats without pages).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longread.agents.base import AnswerDraft, Evidence
from longread.ingest.loaders import page_of
from longread.ingest.segment import split_sentences
from longread.llm.usage import Usage
from longread.storage.models import Answer, CollectionAnswer, Segment

_BRACKET = re.compile(r"\[((?:\s*(?:and\s+|&\s*)?[Ss]\s?\d+\s*[,;]?)+)\]")
_LABEL = re.compile(r"[Ss]\s?(\d+)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_STOP = frozenset(
    "a an and are as at be by for from has have he her his in is it its of on or she that the their they this to "
    "was were what when where which who whom why with how did does do".split()
)


@dataclass
class CheckedAnswer:
    answer: str
    citations: list[dict[str, Any]]
    dropped: int


def cited_labels(text: str) -> list[int]:
    """Segment indexes cited in a text, in order of first appearance."""
    seen: list[int] = []
    for bracket in _BRACKET.finditer(text):
        for label in _LABEL.finditer(bracket.group(1)):
            index = int(label.group(1))
            if index not in seen:
                seen.append(index)
    return seen


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def best_sentence(document_text: str, segment: Segment, probe: str) -> tuple[int, int]:
    """The sentence of a segment sharing most words with the probe (answer + question)."""
    piece = document_text[segment.start : segment.end]
    probe_words = _words(probe)
    best = (segment.start, segment.end)
    best_score = 0.0
    for sentence in split_sentences(piece):
        words = _words(piece[sentence.start : sentence.end])
        if not words:
            continue
        score = len(words & probe_words) + 0.01 * min(len(words), 30) / 30
        if score > best_score:
            best_score = score
            best = (segment.start + sentence.start, segment.start + sentence.end)
    return best


def _strip_unknown(answer: str, allowed: set[int]) -> tuple[str, int]:
    dropped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped
        labels = [int(m.group(1)) for m in _LABEL.finditer(match.group(1))]
        kept = [i for i in labels if i in allowed]
        dropped += len(labels) - len(kept)
        return "[" + ", ".join(f"S{i}" for i in kept) + "]" if kept else ""

    cleaned = _BRACKET.sub(replace, answer)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), dropped


_MAX_MATCHED_CITATIONS = 3


def answer_phrase(answer: str) -> str:
    """An answer as the phrase to look for in the text it was copied from: citations removed, spacing
    collapsed, end punctuation stripped, lower case."""
    return re.sub(r"\s+", " ", _BRACKET.sub("", answer)).strip().strip(".,;:!?\"'").lower()


def answer_occurrences(
    answer: str, document_text: str, read: Sequence[Evidence], by_index: dict[int, Segment]
) -> list[tuple[int, Evidence]]:
    """(segment index, sentence) for the first read passages whose text contains the answer verbatim."""
    needle = answer_phrase(answer)
    if len(needle) < 2:
        return []
    found: list[tuple[int, Evidence]] = []
    for evidence in sorted(read, key=lambda e: e.start):
        segment = by_index.get(evidence.segment_index)
        if segment is None:
            continue
        at = re.sub(r"\s", " ", document_text[evidence.start : evidence.end]).lower().find(needle)
        if at < 0:
            continue
        hit = evidence.start + at
        piece = document_text[segment.start : segment.end]
        start, end = segment.start, segment.end
        for sentence in split_sentences(piece):
            if segment.start + sentence.start <= hit < segment.start + sentence.end:
                start, end = segment.start + sentence.start, segment.start + sentence.end
                break
        found.append((segment.index, Evidence(segment_index=segment.index, start=start, end=end)))
        if len(found) >= _MAX_MATCHED_CITATIONS:
            break
    return found


def with_pages(citations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Citations as every output shows them: each has `page`, None where none was recorded (a format
    without pages, or an answer stored before pages were)."""
    return [{"page": None, **citation} for citation in citations]


def answer_fields(stored: Answer | CollectionAnswer) -> dict[str, Any]:
    """What every output shows of a stored answer (a document's or a collection's): the question, the
    answer, how it was read, its citations with their pages, its usage counters, its time and why it
    stopped early if it did."""
    return {
        "question": stored.question,
        "answer": stored.answer,
        "strategy": stored.strategy,
        "strategy_reason": stored.strategy_reason,
        "model": stored.model,
        "citations": with_pages(stored.citations),
        "dropped_citations": stored.dropped_citations,
        "trace": stored.trace,
        **Usage.of(stored).as_dict(),
        "latency_s": stored.latency_s,
        "stopped_reason": stored.stopped_reason,
    }


def check_citations(
    draft: AnswerDraft,
    document_text: str,
    segments: Sequence[Segment],
    question: str | None,
    *,
    page_starts: Sequence[int] | None = None,
) -> CheckedAnswer:
    """Keep citations of segments the strategy read; give each exact offsets, a quote and its page."""
    by_index = {segment.index: segment for segment in segments}
    read = {e.segment_index for e in draft.read if e.segment_index in by_index}
    answer, dropped = _strip_unknown(draft.answer, read)
    dropped += draft.unknown_citations
    spans: dict[int, list[Evidence]] = {}
    for evidence in draft.cited:
        if evidence.segment_index in read:
            spans.setdefault(evidence.segment_index, []).append(evidence)
        else:
            dropped += 1
    order = cited_labels(answer) + [i for i in spans if i not in cited_labels(answer)]
    if not order:
        # A model that cites nothing (a base model often copies the answer without a label) still gets
        # evidence: the passages it read that contain the answer's text, at the sentence holding it.
        for index, span in answer_occurrences(answer, document_text, draft.read, by_index):
            spans.setdefault(index, []).append(span)
        order = list(spans)
    citations: list[dict[str, Any]] = []
    probe = f"{answer} {question or ''}"
    for index in order:
        segment = by_index[index]
        exact = [e for e in spans.get(index, []) if segment.start <= e.start < e.end <= segment.end]
        ranges = [(e.start, e.end) for e in exact if (e.start, e.end) != (segment.start, segment.end)] or [
            best_sentence(document_text, segment, probe)
        ]
        for start, end in ranges:
            citations.append(
                {
                    "n": len(citations) + 1,
                    "label": f"S{index}",
                    "segment_index": index,
                    "segment_id": segment.id,
                    "segment_start": segment.start,
                    "segment_end": segment.end,
                    "start": start,
                    "end": end,
                    "quote": document_text[start:end],
                    "page": page_of(page_starts, start),
                }
            )
    return CheckedAnswer(answer=answer, citations=citations, dropped=dropped)
