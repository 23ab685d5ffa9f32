"""Turning user files into normalised text, sentences and token-sized segments."""

from longread.ingest.loaders import IngestError, load_document
from longread.ingest.normalize import document_id, normalize_text
from longread.ingest.segment import Segment, Sentence, segment_text, split_sentences

__all__ = [
    "IngestError",
    "Segment",
    "Sentence",
    "document_id",
    "load_document",
    "normalize_text",
    "segment_text",
    "split_sentences",
]
