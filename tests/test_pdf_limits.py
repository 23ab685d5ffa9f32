"""PDF decompression limits: a PDF whose streams inflate far past its size is refused before text extraction.

The unit cases lower the limits so the bombs stay small; the slow case sends bombs at the default limits
through the API and measures its time and memory.
"""

from __future__ import annotations

import io
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longread.ingest import IngestError, load_document
from tests.fixtures.bad.corpus import multipart, pdf_bomb, text_pdf

MIB = 1024 * 1024


@pytest.fixture
def small_limits(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_PDF_MAX_STREAM_BYTES", str(2 * MIB))
    monkeypatch.setenv("LONGREAD_PDF_MAX_INFLATED_BYTES", str(5 * MIB))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _refusal(data: bytes) -> IngestError:
    with pytest.raises(IngestError) as caught:
        load_document("report.pdf", data)
    assert caught.value.code == "pdf_too_large" and caught.value.status == 413
    assert "report.pdf" in str(caught.value)
    return caught.value


def test_a_stream_past_the_stream_limit_is_refused(small_limits: None) -> None:
    assert "inflates past 2097152 bytes" in str(_refusal(pdf_bomb(1, 3 * MIB, every=100)))


def test_a_stream_that_inflates_a_thousand_times_is_a_bomb(small_limits: None) -> None:
    assert "more than 200 times" in str(_refusal(pdf_bomb(1, int(1.5 * MIB))))


def test_many_ordinary_streams_past_the_total_are_refused(small_limits: None) -> None:
    # Each stream is under both per-stream limits (1.5 MiB at about 40:1); four of them pass 5 MiB in all.
    assert "inflate to more than 5242880 bytes" in str(_refusal(pdf_bomb(4, int(1.5 * MIB), every=100)))


def test_pdfs_inside_the_limits_are_read(small_limits: None) -> None:
    from pypdf import PdfReader

    from longread.ingest.pdf_limits import check_pdf, pdf_limits

    assert "harbour master" in load_document("log.pdf", text_pdf())
    with pdf_limits():
        inflated = check_pdf(PdfReader(io.BytesIO(pdf_bomb(3, int(1.5 * MIB), every=100))))
    assert 4 * MIB < inflated <= 5 * MIB  # counted stream by stream, under the total


def test_the_limits_apply_only_while_a_pdf_is_read(small_limits: None) -> None:
    """pypdf's caps are lowered in a context, not for the process (other PDF work keeps pypdf's own)."""
    from pypdf import get_configuration

    from longread.ingest.pdf_limits import pdf_limits

    default = get_configuration().zlib_maximum_output_length
    with pdf_limits():
        assert get_configuration().zlib_maximum_output_length == 2 * MIB
    assert get_configuration().zlib_maximum_output_length == default


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pages", "stream_bytes", "every"),
    [(1, 256 * MIB, 0), (8, 12 * MIB, 0), (6, 12 * MIB, 100)],
    ids=["one 256 MiB stream", "8 pages at 1000:1", "72 MiB in all at 40:1"],
)
def test_a_pdf_bomb_is_refused_by_the_api_quickly_and_in_bounded_memory(
    env: Path, pages: int, stream_bytes: int, every: int
) -> None:
    """At the default limits; before them one 70 MB content stream (a 68 KB file) took 21 s to read."""
    from fastapi.testclient import TestClient

    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage.db import session_scope

    get_settings.cache_clear()
    with session_scope() as session:
        key, _ = create_key(session, "pdf-limits")
    bomb = pdf_bomb(pages, stream_bytes, every)
    assert len(bomb) < 4 * MIB
    upload = multipart("bomb.pdf", bomb)
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(), headers=auth, raise_server_exceptions=False) as client:
        before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        response = client.post("/v1/documents", content=upload.content, headers=upload.headers)
        elapsed = time.monotonic() - started
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "pdf_too_large"
        assert "Traceback" not in response.text and "/tmp/" not in response.text
        assert client.get("/v1/documents").json()["total"] == 0
    assert elapsed < 5, elapsed
    assert grown_kib < 200 * 1024, grown_kib
