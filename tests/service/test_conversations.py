"""Threads and a document's jobs over the real API and PostgreSQL."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.service.conftest import SLOW_MODEL, needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _document(client: httpx.Client, paragraphs: int = 8) -> str:
    body = upload(client, needle_document(random.randint(10_000, 99_999), paragraphs=paragraphs)).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    return str(body["document_id"])


def test_threads_list_continue_and_refuse_another_documents(client: httpx.Client) -> None:
    doc_id, other_id = _document(client), _document(client)
    first = client.post(
        f"/v1/documents/{doc_id}/questions", json={"question": "What is the vault code?", "strategy": "bm25"}
    )
    thread_id = first.json()["params"]["conversation_id"]
    assert wait_job(client, first.json()["id"])["status"] == "succeeded"
    follow = client.post(
        f"/v1/documents/{doc_id}/questions",
        json={"question": "Say it again.", "strategy": "bm25", "conversation_id": thread_id},
    )
    assert follow.json()["params"]["conversation_id"] == thread_id
    assert wait_job(client, follow.json()["id"])["status"] == "succeeded"

    threads = client.get(f"/v1/documents/{doc_id}/conversations").json()
    assert [(t["id"], t["turns"], t["title"]) for t in threads] == [(thread_id, 2, "What is the vault code?")]
    detail = client.get(f"/v1/conversations/{thread_id}").json()
    assert [a["question"] for a in detail["items"]] == ["What is the vault code?", "Say it again."]
    assert detail["items"][1]["trace"][0]["stage"] == "follow-up"

    elsewhere = client.post(
        f"/v1/documents/{other_id}/questions", json={"question": "And here?", "conversation_id": thread_id}
    )
    assert elsewhere.status_code == 422 and elsewhere.json()["error"]["code"] == "conversation_mismatch"
    assert client.get("/v1/conversations/nope").status_code == 404

    client.delete(f"/v1/documents/{doc_id}")
    assert client.get(f"/v1/conversations/{thread_id}").status_code == 404


def test_a_documents_active_jobs_are_listed_until_they_end(client: httpx.Client) -> None:
    doc_id = _document(client, paragraphs=16)
    job = client.post(
        f"/v1/documents/{doc_id}/questions",
        json={"question": "What is the vault code?", "strategy": "tree", "model": SLOW_MODEL},
    ).json()
    active = client.get(f"/v1/documents/{doc_id}/jobs", params={"status": "active"}).json()
    assert [j["id"] for j in active] == [job["id"]] and active[0]["params"]["question"] == "What is the vault code?"
    assert (
        client.get(f"/v1/documents/{doc_id}/jobs", params={"status": "finished"}).json()["error"]["code"]
        == "bad_status"
    )
    assert wait_job(client, job["id"])["status"] == "succeeded"
    assert client.get(f"/v1/documents/{doc_id}/jobs", params={"status": "active"}).json() == []
    done = client.get(f"/v1/documents/{doc_id}/jobs", params={"status": "succeeded"}).json()
    assert {j["kind"] for j in done} == {"ingest", "ask"}


def test_a_chain_follow_up_reads_the_document_once(client: httpx.Client) -> None:
    doc_id = _document(client, paragraphs=16)
    first = client.post(
        f"/v1/documents/{doc_id}/questions", json={"question": "What is the vault code?", "strategy": "chain"}
    )
    assert wait_job(client, first.json()["id"])["status"] == "succeeded"
    follow = client.post(
        f"/v1/documents/{doc_id}/questions",
        json={
            "question": "Say it again.",
            "strategy": "chain",
            "conversation_id": first.json()["params"]["conversation_id"],
        },
    )
    job = wait_job(client, follow.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["params"]["reading_question"] != "Say it again."  # rewritten once, at the job's start
    answer = client.get(f"/v1/answers/{job['result_id']}").json()
    workers = [step for step in answer["trace"] if "segments" in step]
    assert workers and all(step["notes"] for step in workers)
    # Every chunk read once by the step tasks, then the manager, plus the one rewrite of the follow-up.
    assert job["llm_calls"] == len(workers) + 2, (job["llm_calls"], len(workers))
