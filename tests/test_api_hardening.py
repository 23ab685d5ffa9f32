"""Bad input is refused up front with a JSON 4xx and a stable code; nothing leaks; headers on every response.

These run the FastAPI app in process (SQLite, no broker: every case here is refused before a job
would be queued). Cases that need PostgreSQL or real processes live in tests/service/ and
tests/faults/.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from longread.testing.factories import document_with_facts

UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"
LEAKS = ("Traceback", "INSERT INTO", "SELECT ", "[SQL", "/tmp/", "/work/", "site-packages", "sk-", "lr_")


@pytest.fixture
def api(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    """The app on a fresh SQLite database, with one API key (anonymous access off)."""
    from longread import engine
    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage.db import session_scope

    monkeypatch.setenv("LONGREAD_REDIS_URL", UNREACHABLE_REDIS)
    monkeypatch.setenv("LONGREAD_UPLOAD_MAX_BYTES", str(2 * 1024 * 1024))
    get_settings.cache_clear()
    with session_scope() as session:
        key, row = create_key(session, "tester")
        document, _ = engine.store_text(
            session, filename="d.txt", text=document_with_facts(6, {}), tenant_id=row.tenant_id
        )
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
        client.document_id = document.id  # type: ignore[attr-defined]
        yield client, key


def _assert_clean_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text)


def _documents_total(client: TestClient) -> int:
    return int(client.get("/v1/documents").json()["total"])


def multipart(filename: str, content: bytes, *, boundary: str = "XyZzY", closed: bool = True) -> tuple[bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode("utf-8", "surrogateescape")
    body = head + content + (f"\r\n--{boundary}--\r\n".encode() if closed else b"")
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("What is\x00 the code?", "invalid_characters"),
        ("\x00", "invalid_characters"),
        ("bell \x07 inside", "invalid_characters"),
        ("   \n\t  ", "blank_question"),
        ("", "validation_error"),
        ("x" * 100_000, "validation_error"),
    ],
)
def test_bad_questions_are_refused_before_a_job_exists(api: tuple[TestClient, str], question: str, code: str) -> None:
    client, _ = api
    doc = client.document_id  # type: ignore[attr-defined]
    response = client.post(f"/v1/documents/{doc}/questions", json={"question": question})
    _assert_clean_error(response, 422, code)
    assert _job_count() == 0


def _job_count() -> int:
    from sqlmodel import func, select

    from longread.storage.db import session_scope
    from longread.storage.models import Job

    with session_scope() as session:
        return int(session.exec(select(func.count()).select_from(Job)).one())


@pytest.mark.parametrize(
    ("content", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b'{"strategy": 5}'),
        ("application/json", b'{"strategy": "no-such-strategy"}'),
        ("application/json", b"[]"),
        ("text/plain", b"hello"),
        ("application/json", b"\xff\xfe{ not utf-8"),
    ],
)
def test_summaries_and_questions_answer_bad_bodies_alike(
    api: tuple[TestClient, str], content: str, body: bytes
) -> None:
    client, _ = api
    doc = client.document_id  # type: ignore[attr-defined]
    summary = client.post(f"/v1/documents/{doc}/summaries", content=body, headers={"content-type": content})
    question = client.post(f"/v1/documents/{doc}/questions", content=body, headers={"content-type": content})
    assert summary.status_code == question.status_code == 422, (summary.text, question.text)
    assert summary.json()["error"]["code"] == question.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("offset", ["9223372036854775808", "9223372036854775807", "2147483648", "-1", "1e3", "x"])
def test_out_of_range_offsets_are_a_json_422(api: tuple[TestClient, str], offset: str) -> None:
    client, _ = api
    _assert_clean_error(client.get(f"/v1/documents?offset={offset}"), 422, "validation_error")


def test_text_spans_past_any_document_are_a_json_4xx(api: tuple[TestClient, str]) -> None:
    client, _ = api
    doc = client.document_id  # type: ignore[attr-defined]
    _assert_clean_error(client.get(f"/v1/documents/{doc}/text?start=9223372036854775808"), 422, "validation_error")
    _assert_clean_error(client.get(f"/v1/documents/{doc}/text?start=5&end=2147483647"), 400, "bad_range")


@pytest.mark.parametrize("name", ["bad\x00name.txt", "tab\tname.txt", "esc\x1bname.txt", "rtl\u202eexe.txt"])
def test_control_characters_in_a_filename_are_refused_and_nothing_is_stored(
    api: tuple[TestClient, str], env: Path, name: str
) -> None:
    client, _ = api
    before = _documents_total(client)
    body, content_type = multipart(name, b"Some perfectly ordinary text about a harbour.")
    response = client.post("/v1/documents", content=body, headers={"content-type": content_type})
    _assert_clean_error(response, 422, "invalid_filename")
    assert _documents_total(client) == before
    assert not list((env / "data" / "uploads").glob("upload-*"))


def test_a_filename_is_cut_to_its_base_name_and_parent_steps_are_refused() -> None:
    from longread.api.errors import ApiError
    from longread.api.uploads import clean_filename

    assert clean_filename(b"reports/2024/notes.md") == "notes.md"
    assert clean_filename(b"C:\\Users\\ann\\notes.md") == "notes.md"
    assert clean_filename(b"") == "upload"
    for name in (b"../../etc/passwd.txt", b"..\\..\\windows\\notes.md", b".."):
        with pytest.raises(ApiError) as caught:
            clean_filename(name)
        assert caught.value.code == "invalid_filename"


def test_a_truncated_multipart_body_is_refused_and_nothing_is_stored(api: tuple[TestClient, str], env: Path) -> None:
    client, _ = api
    before = _documents_total(client)
    text = document_with_facts(4, {1: "The vault code is 4711."}).encode()
    body, content_type = multipart("cut.txt", text, closed=False)
    response = client.post("/v1/documents", content=body[: len(body) - 100], headers={"content-type": content_type})
    _assert_clean_error(response, 400, "truncated_upload")
    assert _documents_total(client) == before
    assert not list((env / "data" / "uploads").glob("upload-*"))


def _zip_bomb(member_bytes: int, name: str = "word/document.xml") -> bytes:
    """A small zip whose one member inflates to `member_bytes` (zeros compress about 1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(name, "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(member_bytes // len(block)):
                member.write(block)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def gib_bomb() -> bytes:
    return _zip_bomb(1024 * 1024 * 1024)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".docx", ".epub", ""])
def test_a_zip_bomb_is_refused_quickly_without_inflating(
    api: tuple[TestClient, str], gib_bomb: bytes, suffix: str
) -> None:
    import resource

    client, _ = api
    assert len(gib_bomb) < 2 * 1024 * 1024
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    body, content_type = multipart(f"bomb{suffix}", gib_bomb)
    response = client.post("/v1/documents", content=body, headers={"content-type": content_type})
    elapsed = time.monotonic() - started
    if suffix:
        _assert_clean_error(response, 413, "archive_too_large")
    else:  # without a name the upload is sniffed: a zip that is neither docx nor epub is not text
        assert response.status_code in (413, 422), response.text
    assert elapsed < 3, elapsed
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss
    assert grown_kib < 200 * 1024, grown_kib


def test_an_archive_with_too_many_members_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.config import get_settings
    from longread.ingest import IngestError, load_document

    monkeypatch.setenv("LONGREAD_ARCHIVE_MAX_MEMBERS", "50")
    get_settings.cache_clear()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(60):
            archive.writestr(f"word/part{i}.xml", "<x/>")
    with pytest.raises(IngestError) as caught:
        load_document("many.docx", buffer.getvalue())
    assert caught.value.code == "archive_too_large"
    assert "60 members" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("La crème brûlée était délicieuse, à côté du café.", "latin-1"),
        ("crème", "latin-1"),
        ("Der Bär läuft über die Straße; Größe zählt.", "cp1252"),
        ("Smart “quotes” – and a euro sign € in cp1252.", "cp1252"),
        ("Zażółć gęślą jaźń, czyli prosty tekst po polsku o pogodzie i drogach.", "cp1250"),
        ("Une phrase ordinaire, en UTF-8 : élève, garçon, cœur.", "utf-8"),
    ],
)
def test_text_files_decode_in_their_own_encoding(text: str, encoding: str) -> None:
    from longread.ingest import load_document

    assert load_document("notes.txt", text.encode(encoding)) == text


def test_unknown_model_does_not_list_the_configured_models(
    api: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_ALLOWED_MODELS", '["hosted_vllm/secret-deployment-7"]')
    get_settings.cache_clear()
    client, _ = api
    doc = client.document_id  # type: ignore[attr-defined]
    response = client.post(f"/v1/documents/{doc}/questions", json={"question": "Why?", "model": "openai/gpt-x"})
    _assert_clean_error(response, 422, "unknown_model")
    assert "secret-deployment" not in response.text
    assert "scripted/" not in response.text


def test_revoking_every_key_does_not_reopen_anonymous_access(
    api: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlmodel import select

    from longread.api.security import revoke
    from longread.config import get_settings
    from longread.storage.db import session_scope
    from longread.storage.models import ApiKey

    monkeypatch.setenv("LONGREAD_ANONYMOUS_LOCAL", "true")
    get_settings.cache_clear()
    client, _ = api
    with session_scope() as session:
        for row in session.exec(select(ApiKey)).all():
            revoke(session, row.id)
    anonymous = client.get("/v1/documents", headers={"Authorization": ""})
    _assert_clean_error(anonymous, 401, "missing_api_key")


def test_anonymous_access_works_before_any_key_exists(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.api.main import create_app
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_ANONYMOUS_LOCAL", "true")
    monkeypatch.setenv("LONGREAD_REDIS_URL", UNREACHABLE_REDIS)
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        assert client.get("/v1/documents").status_code == 200


def test_public_health_says_only_ok_or_not_and_details_need_a_key(api: tuple[TestClient, str]) -> None:
    client, key = api
    public = client.get("/healthz", headers={"Authorization": ""})
    assert public.status_code == 503  # the broker here is unreachable
    assert public.json() == {"status": "unavailable"}
    assert "127.0.0.1" not in public.text and "Error" not in public.text
    detailed = client.get("/healthz")
    assert detailed.status_code == 503
    checks = detailed.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"].startswith("unavailable")
    wrong = client.get("/healthz", headers={"Authorization": "Bearer lr_not-a-key"})
    assert "checks" not in wrong.json()


@pytest.mark.parametrize("path", ["/", "/app.js", "/v1/documents", "/v1/documents/nope", "/healthz", "/docs"])
def test_every_response_carries_the_security_headers(api: tuple[TestClient, str], path: str) -> None:
    client, _ = api
    response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    if not path.startswith("/docs"):
        assert "'unsafe-inline'" not in csp


def test_the_page_needs_nothing_its_policy_forbids() -> None:
    """The page's CSP allows only same-origin scripts and styles: no inline ones may creep in."""
    import re

    from longread.api.main import FRONTEND

    html = (FRONTEND / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> blocks break the CSP"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers break the CSP"
    script = (FRONTEND / "app.js").read_text()
    assert "style=" not in script and "eval(" not in script and "new Function" not in script


def test_a_database_outage_gives_json_503s(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.api.main import create_app
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_DATABASE_URL", "postgresql://longread:pw@127.0.0.1:9/none?connect_timeout=2")
    monkeypatch.setenv("LONGREAD_REDIS_URL", UNREACHABLE_REDIS)
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)  # no lifespan: the database was up at start
    for method, path in [("GET", "/v1/documents"), ("GET", "/v1/jobs"), ("POST", "/v1/documents/x/questions")]:
        response = client.request(method, path, headers={"Authorization": "Bearer lr_whatever"}, json={"question": "q"})
        _assert_clean_error(response, 503, "database_unavailable")
        assert "pw" not in response.text and "127.0.0.1" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json() == {"status": "unavailable"}


def test_remove_stale_uploads_clears_files_left_by_a_killed_process(tmp_path: Path) -> None:
    import os

    from longread.api.uploads import remove_stale_uploads

    old, fresh, other = tmp_path / "upload-old", tmp_path / "upload-new", tmp_path / "keep.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_uploads(tmp_path, older_than_s=3600) == 1
    assert not old.exists() and fresh.exists() and other.exists()
