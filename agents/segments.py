"""The stored segmentation a strategy reads: whole sentences packed to a token size, per tokenizer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from longread.config import get_settings
from longread.ingest.segment import segment_text
from longread.storage.models import Document, Segment
from longread.tokens import TiktokenCounter, token_counter_for


def scheme_for(model: str, segment_tokens: int) -> str:
    """Segmentations are shared by every model that counts tokens the same way."""
    counter = token_counter_for(model)
    tokenizer = "cl100k" if isinstance(counter, TiktokenCounter) else model
    return f"{tokenizer}:{segment_tokens}"


def ensure_segments(
    session: Session, document: Document, model: str, segment_tokens: int | None = None
) -> list[Segment]:
    """Segments of a document for a model's tokenizer, computed once and stored."""
    segment_tokens = segment_tokens or get_settings().SEGMENT_TOKENS
    scheme = scheme_for(model, segment_tokens)
    existing = list(
        session.exec(
            select(Segment)
            .where(Segment.document_id == document.id, Segment.scheme == scheme)
            .order_by(col(Segment.index))
        )
    )
    if existing:
        return existing
    pieces = segment_text(document.text, token_counter_for(model), segment_tokens)
    rows = [
        Segment(document_id=document.id, scheme=scheme, index=p.index, start=p.start, end=p.end, n_tokens=p.n_tokens)
        for p in pieces
    ]
    session.add_all(rows)
    session.commit()
    return rows


def label(index: int) -> str:
    """How passages are named to the model and in answers."""
    return f"[S{index}]"


def _slice(start: Any, end: Any) -> Any:
    """`Document.text[start:end]` cut in SQL (1-based `substr`)."""
    return func.substr(Document.text, start + 1, end - start)


def document_slice(session: Session, document_id: str, start: int, end: int) -> str:
    """`text[start:end]` of a stored document, read in SQL so a worker never loads a whole book for a page."""
    query = select(_slice(start, end)).where(Document.id == document_id)
    piece = session.exec(query).one_or_none()
    if piece is None:
        raise LookupError(f"document {document_id} does not exist")
    return str(piece)


def segment_with_text(session: Session, document_id: str, scheme: str, index: int) -> tuple[int, int, str]:
    """A segment's bounds and its text in one read (the text cut in SQL, as `document_slice` does)."""
    start, end, text = session.exec(
        select(Segment.start, Segment.end, _slice(col(Segment.start), col(Segment.end)))
        .join(Document, col(Document.id) == col(Segment.document_id))
        .where(Segment.document_id == document_id, Segment.scheme == scheme, Segment.index == index)
    ).one()
    return start, end, str(text)


WHOLE_TEXT_MAX_CHARS = 32_000_000
"""A document up to this size is read whole by a task that reads many of its segments (about 8M tokens)."""


class SegmentTexts:
    """Segments of one document for a task that reads many of them: one read of the text and bounds.

    PostgreSQL keeps a long text compressed out of line, so each SQL `substr` decompresses the whole
    book: a leaf's read cost more database CPU than the rest of its node. A task that summarises many
    leaves therefore reads the text once, on its first segment, and cuts the rest in Python. Documents
    over `WHOLE_TEXT_MAX_CHARS` are still cut in SQL, one segment at a time.
    """

    def __init__(self, session: Session, document_id: str, scheme: str) -> None:
        self._session, self._document_id, self._scheme = session, document_id, scheme
        self._text: str | None = None
        self._bounds: dict[int, tuple[int, int]] = {}
        self._whole: bool | None = None

    def __call__(self, index: int) -> tuple[int, int, str]:
        """`(start, end, text)` of segment `index`, as `segment_with_text` gives it."""
        if self._whole is None:
            self._load()
        if not self._whole or index not in self._bounds:
            return segment_with_text(self._session, self._document_id, self._scheme, index)
        assert self._text is not None
        start, end = self._bounds[index]
        return start, end, self._text[start:end]

    def _load(self) -> None:
        n_chars = self._session.exec(select(Document.n_chars).where(Document.id == self._document_id)).one_or_none()
        self._whole = n_chars is not None and n_chars <= WHOLE_TEXT_MAX_CHARS
        if not self._whole:
            return
        self._text = self._session.exec(select(Document.text).where(Document.id == self._document_id)).one()
        rows = self._session.exec(
            select(Segment.index, Segment.start, Segment.end).where(
                Segment.document_id == self._document_id, Segment.scheme == self._scheme
            )
        )
        self._bounds = {index: (start, end) for index, start, end in rows}
