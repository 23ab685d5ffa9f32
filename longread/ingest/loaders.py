"""Format loaders: each returns plain text (a PDF its pages' texts), or raises `IngestError` naming the file
and the reason."""

from __future__ import annotations

import io
import zipfile
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from longread.failures import sanitise
from longread.ingest.normalize import normalize_text
from longread.ingest.pdf_limits import PdfLimit, check_pdf, is_limit_error, pdf_limits


class IngestError(ValueError):
    """A file could not be read as a document; `code` and `status` are what the API answers."""

    code = "unreadable_document"
    status = 422

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


class ArchiveLimitError(IngestError):
    """A zip-based file (docx, epub) that would expand past the limits: refused before it is inflated."""

    code = "archive_too_large"
    status = 413


class PdfLimitError(IngestError):
    """A PDF whose streams would inflate past the limits (`pdf_limits`): refused before its text is extracted."""

    code = "pdf_too_large"
    status = 413


class _ArchiveLimit(ValueError):
    """Raised inside a loader; `extract_text` turns it into ArchiveLimitError with the file's name."""


# A member may expand this many times over its compressed size once it is past ARCHIVE_RATIO_FLOOR;
# text XML compresses 5-20x, a zip bomb 100-1000x.
ARCHIVE_MAX_RATIO = 200
ARCHIVE_RATIO_FLOOR = 1024 * 1024


def check_archive(data: bytes) -> None:
    """Refuse a zip whose members would inflate past the configured limits, from its directory alone.

    The central directory declares every member's size, and `zipfile` never returns more bytes than
    declared, so checking the declarations bounds what the docx and epub parsers can inflate.
    """
    from longread.config import get_settings

    settings = get_settings()
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a valid zip archive ({exc})") from None
    if len(members) > settings.ARCHIVE_MAX_MEMBERS:
        raise _ArchiveLimit(f"the archive has {len(members)} members (limit {settings.ARCHIVE_MAX_MEMBERS})")
    total = 0
    for member in members:
        total += member.file_size
        if total > settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES:
            raise _ArchiveLimit(f"the archive expands to more than {settings.ARCHIVE_MAX_UNCOMPRESSED_BYTES} bytes")
        if member.file_size > ARCHIVE_RATIO_FLOOR and member.file_size > ARCHIVE_MAX_RATIO * max(
            member.compress_size, 1
        ):
            raise _ArchiveLimit(f"an archive member expands more than {ARCHIVE_MAX_RATIO} times (a zip bomb)")


def _html_to_text(html: bytes | str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "head"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    blocks = ["p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "pre"]
    for tag in soup.find_all(blocks):
        tag.insert_after("\n\n")
    return soup.get_text()


# Single-byte code pages that decode Western European text identically or nearly so. When the detector
# finds several equally plausible (a short Latin-1 text is valid cp1250, cp1257 and more), the
# Western one is the likely truth: "crème" read as cp1250 becomes "crčme".
_WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _decode_text(data: bytes) -> str:
    """UTF-8 first (with or without BOM); otherwise the detector's choice, preferring cp1252 on a tie."""
    if b"\x00" in data[:8192]:
        raise ValueError("looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        raise ValueError("text encoding could not be detected")
    best = min(results, key=lambda match: (match.chaos, -match.coherence))
    for match in results:
        if match.encoding in _WESTERN and match.chaos <= best.chaos + 0.01 and match.coherence >= best.coherence - 0.01:
            return str(match)
    return str(best)


def _load_txt(data: bytes) -> str:
    return _decode_text(data)


def _load_md(data: bytes) -> str:
    from markdown_it import MarkdownIt

    return _html_to_text(MarkdownIt("commonmark").enable("table").render(_decode_text(data)))


def _load_html(data: bytes) -> str:
    return _html_to_text(data)


def _load_pdf(data: bytes) -> list[str]:
    from pypdf import PdfReader

    with pdf_limits():
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise ValueError("the PDF is encrypted")
            except Exception as exc:
                raise ValueError("the PDF is encrypted") from exc
        check_pdf(reader)  # a decompression bomb is refused before text extraction spends minutes on it
        pages = [page.extract_text() or "" for page in reader.pages]
    if not "".join(pages).strip():
        raise ValueError("the PDF has no extractable text (scanned images need OCR first)")
    return pages


def _load_docx(data: bytes) -> str:
    import docx

    check_archive(data)
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(parts)


def _load_epub(data: bytes) -> str:
    import tempfile

    import ebooklib
    from ebooklib import epub

    check_archive(data)
    with tempfile.NamedTemporaryFile(suffix=".epub") as handle:
        handle.write(data)
        handle.flush()
        book = epub.read_epub(handle.name, options={"ignore_ncx": True})
    chapters: list[str] = []
    spine_ids = [item_id for item_id, _ in book.spine]
    items = {item.get_id(): item for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT)}
    ordered = [items[i] for i in spine_ids if i in items] or list(items.values())
    for item in ordered:
        chapters.append(_html_to_text(item.get_content()))
    return "\n\n".join(chapters)


LOADERS: dict[str, Callable[[bytes], str | list[str]]] = {
    ".txt": _load_txt,
    ".text": _load_txt,
    ".md": _load_md,
    ".markdown": _load_md,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".epub": _load_epub,
}

SUPPORTED_SUFFIXES = tuple(sorted(LOADERS))


def _sniff_suffix(data: bytes) -> str | None:
    """Guess a format from magic bytes, for uploads without a useful name."""
    if data.startswith(b"%PDF"):
        return ".pdf"
    if data.startswith(b"PK"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names:
            return ".docx"
        if "mimetype" in names or any(n.endswith(".opf") for n in names):
            return ".epub"
        return None
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return ".html"
    return None


@dataclass(frozen=True)
class LoadedDocument:
    """A file's normalised text and, for paged formats (PDF), the offset in that text where each page starts.

    `page_starts[i]` is where page i + 1 begins; a page without text starts where the previous page's text ends.
    Citations turn their offsets into page numbers with it (`page_of`).
    """

    text: str
    page_starts: list[int] | None = None


def _extract(filename: str, data: bytes) -> str | list[str]:
    """Raw text of a file's bytes (a list of page texts for a PDF), chosen by suffix (or sniffed)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in LOADERS:
        sniffed = _sniff_suffix(data)
        if sniffed is None and suffix:
            raise IngestError(
                filename, f"unsupported file type '{suffix}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
            )
        suffix = sniffed or ".txt"
    if not data:
        raise IngestError(filename, "the file is empty")
    try:
        return LOADERS[suffix](data)
    except IngestError:
        raise
    except _ArchiveLimit as exc:
        raise ArchiveLimitError(filename, str(exc)) from exc
    except PdfLimit as exc:
        raise PdfLimitError(filename, str(exc)) from exc
    except Exception as exc:  # every parser has its own error types; the user needs one message
        if suffix == ".pdf" and is_limit_error(exc):  # a stream past pypdf's caps while opening the file
            raise PdfLimitError(filename, "a PDF stream inflates past the limit") from exc
        # Parsers quote temporary file paths and internals; the user gets the reason only.
        reason = sanitise(str(exc)) or type(exc).__name__
        raise IngestError(filename, f"cannot read as {suffix[1:]}: {reason}") from exc


def extract_text(filename: str, data: bytes) -> str:
    """Raw text of a file's bytes, chosen by suffix (or sniffed), before normalisation."""
    raw = _extract(filename, data)
    return raw if isinstance(raw, str) else "\n\n".join(raw)


def page_starts(text: str, pages: list[str]) -> list[int]:
    """Where each page starts in `text`, the normalised join of `pages` with blank lines between them.

    Normalisation never joins lines across the blank line between two pages, so each page, normalised on
    its own, appears whole and in order in the text; a page that is not found (or has no text) starts
    where the previous one ended.
    """
    starts: list[int] = []
    cursor = 0
    for page in pages:
        own = normalize_text(page)
        at = text.find(own, cursor) if own else -1
        if at < 0:
            starts.append(min(cursor, len(text)))
            continue
        starts.append(at)
        cursor = at + len(own)
    if starts:
        starts[0] = 0  # text before the first page's own text (none, once normalised) belongs to page 1
    return starts


def page_of(starts: Sequence[int] | None, offset: int) -> int | None:
    """The 1-based page holding a character offset, or None for a text without pages."""
    if not starts:
        return None
    return max(1, bisect_right(starts, offset))


def read_document(filename: str, data: bytes) -> LoadedDocument:
    """Normalised text of a file with its page starts (PDF), or IngestError when it is unreadable or has no text.

    The text is the same whether or not pages are recorded, so a document's id does not depend on them.
    """
    raw = _extract(filename, data)
    text = normalize_text(raw if isinstance(raw, str) else "\n\n".join(raw))
    if not text:
        raise IngestError(filename, "no text found in the file")
    return LoadedDocument(text, None if isinstance(raw, str) else page_starts(text, raw))


def load_document(filename: str, data: bytes) -> str:
    """Normalised text of a file, or IngestError when it is unreadable or has no text."""
    return read_document(filename, data).text


def read_path(path: Path) -> LoadedDocument:
    """Read and load a file from disk, with missing files reported like bad ones."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(str(path), exc.strerror or "cannot be read") from exc
    return read_document(path.name, data)


def load_path(path: Path) -> str:
    """Normalised text of a file on disk (see `read_path`)."""
    return read_path(path).text
