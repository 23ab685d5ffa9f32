"""Sentence splitting with character offsets, and packing sentences into token-sized segments.

Offsets always index the normalised document text, so `text[start:end]` is the quoted passage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from longread.tokens import TokenCounter

_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Segment:
    index: int
    start: int
    end: int
    n_tokens: int


@lru_cache(maxsize=1)
def _punkt() -> Any:
    import punkt

    return punkt.tokenizer_for("english")


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _PARAGRAPH.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def split_sentences(text: str) -> list[Sentence]:
    """Sentences in document order; paragraph breaks always end a sentence."""
    tokenizer = _punkt()
    sentences: list[Sentence] = []
    for para_start, para_end in _paragraph_spans(text):
        paragraph = text[para_start:para_end]
        for start, end in tokenizer.span_tokenize(paragraph):
            sentences.append(Sentence(para_start + start, para_start + end))
    return sentences


def _split_long(text: str, sentence: Sentence, counter: TokenCounter, max_tokens: int) -> list[Sentence]:
    """Cut a sentence longer than max_tokens at word boundaries."""
    pieces: list[Sentence] = []
    piece_start: int | None = None
    piece_end = sentence.start
    budget = 0
    for word in _WORD.finditer(text, sentence.start, sentence.end):
        cost = counter.count(word.group()) + 1
        if piece_start is not None and budget + cost > max_tokens:
            pieces.append(Sentence(piece_start, piece_end))
            piece_start, budget = None, 0
        if piece_start is None:
            piece_start = word.start()
        piece_end = word.end()
        budget += cost
    if piece_start is not None:
        pieces.append(Sentence(piece_start, piece_end))
    return pieces


def bounded_sentences(text: str, counter: TokenCounter, max_tokens: int) -> list[tuple[Sentence, int]]:
    """Sentences with their token counts, none longer than max_tokens."""
    out: list[tuple[Sentence, int]] = []
    for sentence in split_sentences(text):
        n = counter.count(text[sentence.start : sentence.end])
        if n <= max_tokens:
            out.append((sentence, n))
            continue
        for piece in _split_long(text, sentence, counter, max_tokens):
            out.append((piece, counter.count(text[piece.start : piece.end])))
    return out


def pack_sentences(sentences: list[tuple[Sentence, int]], max_tokens: int) -> list[Segment]:
    """Greedy packing of whole sentences into segments of at most max_tokens (+1 per joint)."""
    segments: list[Segment] = []
    start: int | None = None
    end = 0
    used = 0
    for sentence, n in sentences:
        joint = 1 if start is not None else 0
        if start is not None and used + joint + n > max_tokens:
            segments.append(Segment(len(segments), start, end, used))
            start, used, joint = None, 0, 0
        if start is None:
            start = sentence.start
        end = sentence.end
        used += joint + n
    if start is not None:
        segments.append(Segment(len(segments), start, end, used))
    return segments


def segment_text(text: str, counter: TokenCounter, max_tokens: int) -> list[Segment]:
    """Split a document into consecutive segments of whole sentences, each ≤ max_tokens tokens."""
    if max_tokens < 8:
        raise ValueError("segments must allow at least 8 tokens")
    return pack_sentences(bounded_sentences(text, counter, max_tokens), max_tokens)
