"""Scoring functions, each as its benchmark defines it, on a 0–1 scale.

- RULER: `string_match_all` (share of references found in the prediction) and `string_match_part`
  (1 if any reference is found), case-insensitive substring tests, after RULER's prediction cleanup.
- ChatRAG-Bench: SQuAD-style token F1 after ParlAI's normalisation.
- ACLSum: ROUGE-1/2/L/Lsum F1 from `rouge-score` (offline).
- AA-LCR: the dataset's CORRECT/INCORRECT judge reply, parsed strictly.
- Evidence recall: whether the answer's cited passages hold the gold (strings or a gold span).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f]")
_CITATION_LABELS = re.compile(r"\[\s*S\s*\d+(?:\s*[,;]\s*S?\s*\d+)*\s*\]", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\]\\^`{|}~_']")


def strip_citations(answer: str) -> str:
    """The answer without its [S12] labels: scores judge what was said, not how it was cited."""
    stripped = re.sub(r"[ \t]+([.,;:!?])", r"\1", _CITATION_LABELS.sub("", answer))
    return re.sub(r"[ \t]{2,}", " ", stripped).strip()


def ruler_clean(prediction: str) -> str:
    """RULER's `postprocess_pred`: strip, and turn control characters into newlines."""
    return _CONTROL.sub("\n", (prediction or "").strip()).strip()


def string_match_all(prediction: str, references: Sequence[str]) -> float:
    if not references:
        raise ValueError("string_match_all needs at least one reference")
    pred = ruler_clean(prediction).lower()
    return sum(1.0 for r in references if r.lower() in pred) / len(references)


def string_match_part(prediction: str, references: Sequence[str]) -> float:
    if not references:
        raise ValueError("string_match_part needs at least one reference")
    pred = ruler_clean(prediction).lower()
    return max(1.0 if r.lower() in pred else 0.0 for r in references)


def normalize_answer(text: str) -> str:
    """ParlAI/ChatRAG normalisation: lower case, punctuation and articles removed, spaces collapsed."""
    text = _PUNCTUATION.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """ChatRAG-Bench's token-level F1 of one prediction against one reference."""
    gold = normalize_answer(reference).split()
    pred = normalize_answer(prediction).split()
    if not gold:
        raise ValueError("token_f1 needs a non-empty reference")
    if not pred:
        return 0.0
    same = sum((Counter(gold) & Counter(pred)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:  # pragma: no cover - depends on the eval extra
        raise RuntimeError("ROUGE needs rouge-score: pip install 'longread[eval]'") from exc
    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)


def rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """ROUGE F1 against the reference sentences; rougeLsum splits both sides on sentence ends."""
    from longread.ingest.segment import split_sentences

    def by_sentence(text: str) -> str:
        return "\n".join(text[s.start : s.end] for s in split_sentences(text)) or text

    reference = "\n".join(r.strip() for r in references if r.strip())
    scores = _rouge().score(by_sentence(reference), by_sentence(prediction or ""))
    return {name: float(score.fmeasure) for name, score in scores.items()}


def parse_verdict(reply: str) -> bool | None:
    """The judge's verdict: CORRECT → True, INCORRECT → False, anything else → None (unparseable)."""
    words = re.findall(r"[A-Za-z]+", reply.upper())
    if not words:
        return None
    if "INCORRECT" in words[:3]:
        return False
    if "CORRECT" in words[:3]:
        return True
    return None


def strings_in(text: str, strings: Iterable[str]) -> list[str]:
    low = text.lower()
    return [s for s in strings if s and s.lower() in low]


def cited_text(citations: Sequence[dict[str, Any]], text: str, *, whole_segments: bool = True) -> str:
    """The text of the passages an answer cites: whole segments by default, or the exact spans."""
    parts = []
    for c in citations:
        start, end = (c["segment_start"], c["segment_end"]) if whole_segments else (c["start"], c["end"])
        parts.append(text[start:end])
    return "\n".join(parts)


def string_evidence_recall(citations: Sequence[dict[str, Any]], text: str, references: Sequence[str]) -> float | None:
    """Share of the gold strings that occur in the document and also in the cited segments.

    None when no gold string occurs in the document (nothing could be cited then).
    """
    present = strings_in(text, references)
    if not present:
        return None
    cited = cited_text(citations, text).lower()
    return sum(1.0 for s in present if s.lower() in cited) / len(present)


def span_evidence_recall(citations: Sequence[dict[str, Any]], gold: tuple[int, int]) -> float:
    """1 if any cited span overlaps the gold span (doc2dial's gold chunk), else 0."""
    start, end = gold
    return 1.0 if any(c["start"] < end and start < c["end"] for c in citations) else 0.0
