"""Upload, dedup, tenant isolation, size and format limits, listing, deletion and text spans."""

from __future__ import annotations

import random

import httpx
import pytest
from sqlmodel import func, select

from tests.service.conftest import UPLOAD_LIMIT, needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _count_documents() -> int:
    from longread.storage.db import session_scope
    from longread.storage.models import Document

    with session_scope() as session:
        return int(session.exec(select(func.count()).select_from(Document)).one())


def _uploads_left(service_env: dict[str, str]) -> list[str]:
    from pathlib import Path

    folder = Path(service_env["LONGREAD_DATA_DIR"]) / "uploads"
    return [p.name for p in folder.glob("*")] if folder.exists() else []


def test_upload_returns_job_that_segments_the_document(client: httpx.Client) -> None:
    response = upload(client, needle_document(random.randint(10_000, 99_999)))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["deduplicated"] is False
    job = wait_job(client, body["job_id"])
    assert job["status"] == "succeeded", job
    assert job["kind"] == "ingest" and job["done"] == job["total"] == 1
    document = client.get(f"/v1/documents/{body['document_id']}").json()
    assert document["ingest_job_id"] == body["job_id"]
    assert document["n_chars"] > 1000


def test_reupload_of_same_content_returns_existing_document(client: httpx.Client) -> None:
    text = needle_document(random.randint(10_000, 99_999))
    first = upload(client, text, "a.txt").json()
    before = client.get("/v1/documents").json()["total"]
    second = upload(client, text, "renamed.txt")
    assert second.status_code == 200
    assert second.json() == {**first, "deduplicated": True}
    assert client.get("/v1/documents").json()["total"] == before


def test_other_tenant_cannot_see_or_use_documents(client: httpx.Client, other_client: httpx.Client) -> None:
    text = needle_document(random.randint(10_000, 99_999))
    mine = upload(client, text).json()
    job = wait_job(client, mine["job_id"])
    doc_id = mine["document_id"]
    for path in (f"/v1/documents/{doc_id}", f"/v1/documents/{doc_id}/text", f"/v1/jobs/{job['id']}"):
        response = other_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert other_client.post(f"/v1/documents/{doc_id}/questions", json={"question": "q?"}).status_code == 404
    assert other_client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
    assert other_client.delete(f"/v1/documents/{doc_id}").status_code == 404
    assert doc_id not in {d["id"] for d in other_client.get("/v1/documents?limit=100").json()["items"]}
    # The same content uploaded by another tenant is that tenant's own document, not a dedup hit.
    theirs = upload(other_client, text)
    assert theirs.status_code == 202 and theirs.json()["document_id"] != doc_id
    assert client.get(f"/v1/documents/{doc_id}").status_code == 200


def test_requests_without_a_valid_key_are_rejected(api_url: str) -> None:
    missing = httpx.get(f"{api_url}/v1/documents")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = httpx.get(f"{api_url}/v1/documents", headers={"Authorization": "Bearer lr_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_oversize_upload_is_rejected_with_nothing_stored(client: httpx.Client, service_env: dict[str, str]) -> None:
    before = _count_documents()
    response = upload(client, "word " * (UPLOAD_LIMIT // 5 + 1000))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # Without a Content-Length up front the stream is cut off once it passes the limit.
    body = b"".join([b"x" * 1024] * (UPLOAD_LIMIT // 1024 + 50))

    def chunks():  # type: ignore[no-untyped-def]
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = client.post(
        "/v1/documents", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b0undary"}
    )
    assert streamed.status_code == 413
    assert _count_documents() == before
    assert _uploads_left(service_env) == []


def test_malformed_uploads_are_rejected_with_nothing_stored(client: httpx.Client, service_env: dict[str, str]) -> None:
    before = _count_documents()
    broken_pdf = client.post(
        "/v1/documents", files={"file": ("paper.pdf", b"%PDF-1.4\nnot really a pdf", "application/pdf")}
    )
    assert broken_pdf.status_code == 422
    assert broken_pdf.json()["error"]["code"] == "unreadable_document"
    not_multipart = client.post("/v1/documents", content=b"hello", headers={"Content-Type": "text/plain"})
    assert not_multipart.status_code == 415
    no_file_field = client.post("/v1/documents", files={"other": ("a.txt", b"hello", "text/plain")})
    assert no_file_field.status_code == 422 and no_file_field.json()["error"]["code"] == "missing_file"
    empty = client.post("/v1/documents", files={"file": ("a.txt", b"", "text/plain")})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_file"
    assert _count_documents() == before
    assert _uploads_left(service_env) == []


def test_documents_are_listed_in_pages_and_deleted(client: httpx.Client) -> None:
    ids = [
        upload(client, needle_document(random.randint(10_000, 99_999), seed=i)).json()["document_id"] for i in range(3)
    ]
    first = client.get("/v1/documents?limit=2&offset=0").json()
    second = client.get("/v1/documents?limit=2&offset=2").json()
    assert len(first["items"]) == 2 and first["total"] >= 3
    listed = [d["id"] for d in first["items"] + second["items"]]
    assert len(listed) == len(set(listed))
    assert listed[:3] == ids[::-1]  # newest first
    assert client.delete(f"/v1/documents/{ids[0]}").status_code == 204
    assert client.get(f"/v1/documents/{ids[0]}").status_code == 404
    assert client.get("/v1/documents?limit=2").json()["total"] == first["total"] - 1


def test_text_spans_are_served_and_bad_ranges_refused(client: httpx.Client) -> None:
    text = needle_document(random.randint(10_000, 99_999))
    doc_id = upload(client, text).json()["document_id"]
    span = client.get(f"/v1/documents/{doc_id}/text", params={"start": 10, "end": 60}).json()
    full = client.get(f"/v1/documents/{doc_id}/text", params={"start": 0, "end": span["n_chars"]}).json()["text"]
    assert span["text"] == full[10:60] and len(span["text"]) == 50
    bad = client.get(f"/v1/documents/{doc_id}/text", params={"start": 50, "end": 10})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_range"
    past_end = client.get(f"/v1/documents/{doc_id}/text", params={"start": 0, "end": span["n_chars"] + 1})
    assert past_end.status_code == 400
