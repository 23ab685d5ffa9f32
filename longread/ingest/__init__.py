"""Turning user files into normalised text, sentences and token-sized segments."""

from longread.ingest.loaders import IngestError, LoadedDocument, load_document, page_of, read_document
from longread.ingest.normalize import document_id, normalize_text
from longread.ingest.segment import Segment, Sentence, segment_text, split_sentences

__all__ = [
    "IngestError",
    "LoadedDocument",
    "Segment",
    "Sentence",
    "document_id",
    "load_document",
    "normalize_text",
    "page_of",
    "read_document",
    "segment_text",
    "split_sentences",
]
