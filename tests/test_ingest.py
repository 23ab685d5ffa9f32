"""Every supported format ingests to the same normalised text; bad files fail cleanly and store nothing."""

from __future__ import annotations

import io

import pytest
from sqlmodel import func, select

from longread import engine
from longread.ingest import IngestError, load_document
from longread.storage.models import Document

PARAGRAPHS = [
    "The violet harbor keeps its code in the lighthouse.",
    "Captain Mara Venn sailed at dawn with twelve crew.",
]


def make_txt() -> bytes:
    return "\n\n".join(PARAGRAPHS).encode()


def make_md() -> bytes:
    return ("# Logbook\n\n" + "\n\n".join(f"*{p}*" if i == 0 else p for i, p in enumerate(PARAGRAPHS))).encode()


def make_html() -> bytes:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return f"<html><head><style>p {{}}</style><script>var x=1;</script></head><body>{body}</body></html>".encode()


def make_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for p in PARAGRAPHS:
        pdf.multi_cell(0, 8, p)
        pdf.ln(4)
    return bytes(pdf.output())


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    for p in PARAGRAPHS:
        document.add_paragraph(p)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_epub() -> bytes:
    import tempfile

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("Logbook")
    book.set_language("en")
    chapters = []
    for i, p in enumerate(PARAGRAPHS):
        chapter = epub.EpubHtml(title=f"c{i}", file_name=f"c{i}.xhtml", lang="en")
        chapter.content = f"<html><body><p>{p}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    with tempfile.NamedTemporaryFile(suffix=".epub") as handle:
        epub.write_epub(handle.name, book)
        return open(handle.name, "rb").read()


MAKERS = {"txt": make_txt, "md": make_md, "html": make_html, "pdf": make_pdf, "docx": make_docx, "epub": make_epub}


@pytest.mark.parametrize("suffix", sorted(MAKERS))
def test_each_format_ingests(suffix: str) -> None:
    text = load_document(f"log.{suffix}", MAKERS[suffix]())
    for paragraph in PARAGRAPHS:
        assert paragraph in text.replace("\n", " ")
    assert "var x" not in text


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\n garbage that is not a pdf", "cannot read as pdf"),
        ("broken.docx", b"PK\x03\x04 not a zip really", "cannot read as docx"),
        ("empty.txt", b"", "empty"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unsupported file type '.png'"),
        ("binary.txt", b"\x00\x01\x02" * 100, "binary"),
        ("blank.txt", b"   \n\n  ", "no text"),
    ],
)
def test_bad_files_fail_cleanly_and_store_nothing(session, name: str, data: bytes, reason: str) -> None:
    engine.ingest_bytes(session, filename="keep.txt", data=make_txt())
    with pytest.raises(IngestError) as info:
        engine.ingest_bytes(session, filename=name, data=data)
    assert info.value.filename == name
    assert reason in info.value.reason
    assert session.exec(select(func.count()).select_from(Document)).one() == 1


def test_same_content_is_stored_once_with_a_stable_id(session) -> None:
    first, created = engine.ingest_bytes(session, filename="a.txt", data=make_txt())
    second, created_again = engine.ingest_bytes(
        session, filename="b.md", data=b"\r\n".join(p.encode() for p in PARAGRAPHS).replace(b"\r\n", b"\n\n")
    )
    assert created and not created_again
    assert first.id == second.id
    other, _ = engine.ingest_bytes(session, filename="a.txt", data=make_txt(), tenant_id="tenant-b")
    assert other.id != first.id
