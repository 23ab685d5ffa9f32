"""Collections over the API: membership, tenancy, a question across documents through a worker, dry runs."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.service.conftest import needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _ingested(client: httpx.Client, text: str, filename: str) -> str:
    body = upload(client, text, filename).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    return str(body["document_id"])


def test_a_question_over_a_collection_cites_the_document_that_holds_it(
    client: httpx.Client, other_client: httpx.Client
) -> None:
    code = random.randint(10_000, 99_999)
    holder = _ingested(client, needle_document(code, paragraphs=10, seed=1), "vault.txt")
    plain = _ingested(
        client, needle_document(11, paragraphs=10, seed=2).replace("vault code", "gate number"), "gate.txt"
    )
    name = f"shelf-{code}"
    created = client.post("/v1/collections", json={"name": name, "document_ids": [holder, plain]})
    assert created.status_code == 201, created.text
    collection = created.json()
    assert collection["n_documents"] == 2 and {d["filename"] for d in collection["documents"]} == {
        "vault.txt",
        "gate.txt",
    }
    assert client.post("/v1/collections", json={"name": name}).json()["error"]["code"] == "collection_exists"
    assert any(c["id"] == collection["id"] for c in client.get("/v1/collections").json())

    # Another tenant sees nothing, and cannot put its documents in or ask.
    assert other_client.get(f"/v1/collections/{collection['id']}").status_code == 404
    assert all(c["id"] != collection["id"] for c in other_client.get("/v1/collections").json())
    question = {"question": "What is the vault code?", "strategy": "dense"}
    assert other_client.post(f"/v1/collections/{collection['id']}/questions", json=question).status_code == 404
    theirs = _ingested(other_client, needle_document(5, paragraphs=4, seed=3), "theirs.txt")
    refused = client.post(f"/v1/collections/{collection['id']}/documents", json={"document_ids": [theirs]})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"

    plan = client.post(f"/v1/collections/{collection['id']}/questions", json=question | {"dry_run": True})
    assert plan.status_code == 200, plan.text
    assert plan.json()["documents"] == 2 and plan.json()["documents_to_index"] == 2 and plan.json()["calls"] == 1

    asked = client.post(f"/v1/collections/{collection['id']}/questions", params={"wait": 30}, json=question)
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["kind"] == "ask_collection" and body["status"] == "succeeded" and body["llm_calls"] == 1
    answer = body["answer"]
    assert str(code) in answer["answer"] and sorted(answer["document_ids"]) == sorted([holder, plain])
    citation = answer["citations"][0]
    assert citation["document_id"] == holder and citation["filename"] == "vault.txt"
    span = client.get(f"/v1/documents/{holder}/text", params={"start": citation["start"], "end": citation["end"]})
    assert span.json()["text"] == citation["quote"] and str(code) in citation["quote"]
    listed = client.get(f"/v1/collections/{collection['id']}/answers").json()
    assert listed[0]["id"] == answer["id"]
    again = client.post(f"/v1/collections/{collection['id']}/questions", json=question | {"dry_run": True}).json()
    assert again["documents_to_index"] == 0, "each document's index is kept for the next question"

    removed = client.delete(f"/v1/collections/{collection['id']}/documents/{holder}")
    assert removed.status_code == 200 and [d["document_id"] for d in removed.json()["documents"]] == [plain]
    assert client.get(f"/v1/documents/{holder}").status_code == 200, "removing from a collection keeps the document"
    assert client.delete(f"/v1/collections/{collection['id']}").status_code == 204
    assert client.get(f"/v1/collections/{collection['id']}").status_code == 404
