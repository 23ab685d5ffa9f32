"""Decompression limits for PDFs: a small file whose streams inflate to gigabytes is refused, not parsed.

A PDF's page contents are (usually Flate-) compressed streams with no declared decoded size, so unlike a
zip (`loaders.check_archive`) nothing can be checked from a directory. What costs the API is not the
inflating, which zlib does at hundreds of MB/s, but what pypdf does with the result: text extraction
parses content at a few MB/s (a 68 KB PDF holding one 70 MB content stream took 21 s). So every page's
content streams and the Form XObjects it draws are first inflated alone, into counters, under three
limits, and text extraction only starts once the whole document passed:

- no single stream may inflate past `PDF_MAX_STREAM_BYTES` (pypdf stops decoding there; this also
  bounds the cross-reference and object streams pypdf inflates while opening the file);
- a stream past `PDF_RATIO_FLOOR` that inflates more than `PDF_MAX_RATIO` times its stored size is a
  bomb (content streams compress 3-10 times, a run of one byte a thousand times);
- all of them together may not pass `PDF_MAX_INFLATED_BYTES`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# A content stream past this size may expand this many times over its stored size; past that it is a bomb.
PDF_MAX_RATIO = 200
PDF_RATIO_FLOOR = 1024 * 1024


class PdfLimit(ValueError):
    """A PDF that would inflate past the limits; the loader turns it into a 413 with the file's name."""


@contextmanager
def pdf_limits() -> Iterator[None]:
    """pypdf's per-stream decoding caps lowered to `PDF_MAX_STREAM_BYTES` for the block (this context only)."""
    from pypdf import apply_configuration

    from longread.config import get_settings

    cap = get_settings().PDF_MAX_STREAM_BYTES
    with apply_configuration(
        maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap,
        zlib_maximum_output_length=cap,
        lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap,
        brotli_maximum_output_length=cap,
        stream_decoding_work_maximum_length=cap * 4,
    ):
        yield


def is_limit_error(exc: BaseException) -> bool:
    """pypdf's own LimitReachedError (a stream past a cap while pypdf decodes it), by class name."""
    return any(cls.__name__ == "LimitReachedError" for cls in type(exc).__mro__)


def check_pdf(reader: Any) -> int:
    """Inflate every page's content streams and drawn forms into counters; PdfLimit past a limit.

    Returns the bytes they inflate to. Nothing decoded is kept: pypdf's `decode_stream_data` does not
    cache, so memory holds one stream at a time.
    """
    from pypdf.filters import decode_stream_data

    from longread.config import get_settings

    settings = get_settings()
    total = 0
    seen: set[int] = set()
    for stream in _streams(reader):
        if id(stream) in seen:  # one stream drawn by many pages is inflated once by pypdf too
            continue
        seen.add(id(stream))
        try:
            size = len(decode_stream_data(stream))
        except Exception as exc:
            if is_limit_error(exc):
                raise PdfLimit(f"a PDF stream inflates past {settings.PDF_MAX_STREAM_BYTES} bytes") from exc
            raise
        stored = len(getattr(stream, "_data", b"") or b"")
        if size > PDF_RATIO_FLOOR and size > PDF_MAX_RATIO * max(stored, 1):
            raise PdfLimit(f"a PDF stream inflates more than {PDF_MAX_RATIO} times (a decompression bomb)")
        total += size
        if total > settings.PDF_MAX_INFLATED_BYTES:
            raise PdfLimit(f"the PDF's page contents inflate to more than {settings.PDF_MAX_INFLATED_BYTES} bytes")
    return total


def _streams(reader: Any) -> Iterator[Any]:
    """Each page's content streams, then the Form XObjects its resources hold (one level, as drawn)."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    for page in reader.pages:
        contents = _resolved(page.get("/Contents"))
        for part in contents if isinstance(contents, ArrayObject) else [contents]:
            stream = _resolved(part)
            if isinstance(stream, StreamObject):
                yield stream
        resources = _resolved(page.get("/Resources"))
        xobjects = _resolved(resources.get("/XObject")) if isinstance(resources, DictionaryObject) else None
        for ref in xobjects.values() if isinstance(xobjects, DictionaryObject) else ():
            stream = _resolved(ref)
            if isinstance(stream, StreamObject) and stream.get("/Subtype") == "/Form":
                yield stream


def _resolved(value: Any) -> Any:
    """The object an indirect reference points to (None stays None)."""
    return value.get_object() if value is not None else None
