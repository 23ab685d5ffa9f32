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

    # Each document's index is built as it joins (one job each), so the question finds them built.
    assert sorted(j["document_id"] for j in collection["indexing"]) == sorted([holder, plain])
    assert all(wait_job(client, j["job_id"])["status"] == "succeeded" for j in collection["indexing"])
    plan = client.post(f"/v1/collections/{collection['id']}/questions", json=question | {"dry_run": True})
    assert plan.status_code == 200, plan.text
    assert plan.json()["documents"] == 2 and plan.json()["documents_to_index"] == 0 and plan.json()["calls"] == 1

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


def test_a_collection_summary_is_a_job_with_one_summary_per_document_and_one_overall(
    client: httpx.Client, other_client: httpx.Client
) -> None:
    code = random.randint(10_000, 99_999)
    holder = _ingested(client, needle_document(code, paragraphs=10, seed=4), "vault.txt")
    plain = _ingested(
        client, needle_document(12, paragraphs=8, seed=6).replace("vault code", "gate number"), "gate.txt"
    )
    collection = client.post("/v1/collections", json={"name": f"summed-{code}", "document_ids": [holder, plain]}).json()
    url = f"/v1/collections/{collection['id']}/summaries"

    plan = client.post(url, json={"dry_run": True})
    assert plan.status_code == 200, plan.text
    assert plan.json()["documents"] == 2 and plan.json()["summaries"] == 2 and plan.json()["overall_calls"] == 1
    assert other_client.post(url, json={}).status_code == 404
    refused = client.post(url, json={"strategy": "nope"})
    assert refused.status_code == 422 and "Traceback" not in refused.text

    done = client.post(url, params={"wait": 30}, json={})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["kind"] == "summarize_collection" and body["status"] == "succeeded", body
    summary = body["answer"]
    assert summary["kind"] == "summary" and summary["stopped_reason"] is None
    parts = {part["filename"]: part for part in summary["summaries"]}
    assert set(parts) == {"vault.txt", "gate.txt"} and parts["vault.txt"]["document_id"] == holder
    assert str(code) in parts["vault.txt"]["summary"] and str(code) in summary["answer"]
    own = client.get(f"/v1/answers/{parts['vault.txt']['answer_id']}").json()
    assert own["kind"] == "summary" and own["document_id"] == holder and own["answer"] == parts["vault.txt"]["summary"]
    assert body["llm_calls"] == summary["llm_calls"] >= 3, "each document's calls and the overall one, on the job"
    listed = client.get(f"/v1/collections/{collection['id']}/answers").json()
    assert listed[0]["id"] == summary["id"] and listed[0]["kind"] == "summary"

    # Caps as for one document: the job stops cleanly with what it has and the reason.
    capped = client.post(url, params={"wait": 30}, json={"strategy": "chain", "max_tokens": 5}).json()
    assert capped["status"] == "succeeded" and "token cap" in capped["answer"]["stopped_reason"]

    empty = client.post("/v1/collections", json={"name": f"empty-{code}"}).json()
    nothing = client.post(f"/v1/collections/{empty['id']}/summaries", json={})
    assert nothing.status_code == 422 and nothing.json()["error"]["code"] == "empty_collection"


def test_each_joining_document_gets_its_index_built_and_a_leaving_one_loses_it(client: httpx.Client) -> None:
    from sqlmodel import select

    from longread.storage.db import session_scope
    from longread.storage.models import RetrievalIndex

    def indexes() -> dict[str, int]:
        with session_scope() as session:
            rows = session.exec(select(RetrievalIndex.document_id, RetrievalIndex.id))
            return dict(rows.all())

    code = random.randint(10_000, 99_999)
    first, second, third = (
        _ingested(client, needle_document(code + n, paragraphs=6, seed=10 + n), f"part{n}.txt") for n in range(3)
    )
    created = client.post("/v1/collections", json={"name": f"indexed-{code}", "document_ids": [first, second]})
    assert created.status_code == 201, created.text
    collection = created.json()
    assert sorted(j["document_id"] for j in collection["indexing"]) == sorted([first, second])
    for started in collection["indexing"]:
        job = wait_job(client, started["job_id"])
        assert job["status"] == "succeeded" and job["kind"] == "build_index", job
    built = indexes()
    assert {first, second} <= set(built)

    # Adding a document to the built collection starts that document's index job only.
    added = client.post(f"/v1/collections/{collection['id']}/documents", json={"document_ids": [third, first]})
    assert added.status_code == 200, added.text
    assert [j["document_id"] for j in added.json()["indexing"]] == [third]
    assert wait_job(client, added.json()["indexing"][0]["job_id"])["status"] == "succeeded"
    now = indexes()
    assert third in now and {d: now[d] for d in (first, second)} == {d: built[d] for d in (first, second)}
    plan = client.post(
        f"/v1/collections/{collection['id']}/questions", json={"question": "What is the vault code?", "dry_run": True}
    )
    assert plan.json()["documents_to_index"] == 0
    again = client.post(f"/v1/collections/{collection['id']}/documents", json={"document_ids": [third]}).json()
    assert again["indexing"] == [], "a member joins once"

    # Leaving the only collection that holds it drops the document's index.
    assert client.delete(f"/v1/collections/{collection['id']}/documents/{third}").status_code == 200
    assert third not in indexes() and {first, second} <= set(indexes())


@pytest.mark.parametrize("strategy", ["tree", "chain"])
def test_the_tree_and_the_chain_over_a_collection_run_through_a_worker(client: httpx.Client, strategy: str) -> None:
    code = random.randint(10_000, 99_999)
    holder = _ingested(client, needle_document(code, paragraphs=10, seed=7), "vault.txt")
    plain = _ingested(
        client, needle_document(13, paragraphs=8, seed=8).replace("vault code", "gate number"), "gate.txt"
    )
    collection = client.post("/v1/collections", json={"name": f"{strategy}-{code}", "document_ids": [holder, plain]})
    url = f"/v1/collections/{collection.json()['id']}/questions"
    question = {"question": "What is the vault code?", "strategy": strategy, "order": ["gate.txt"]}
    plan = client.post(url, json=question | {"dry_run": True}).json()
    assert plan["strategy"] == strategy and plan["calls"] > 0 and plan["auto_choice"]
    asked = client.post(url, params={"wait": 30}, json=question)
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["status"] == "succeeded", body
    answer = body["answer"]
    assert answer["strategy"] == strategy and str(code) in answer["answer"]
    citation = answer["citations"][0]
    assert citation["document_id"] == holder and citation["filename"] == "vault.txt"
    span = client.get(f"/v1/documents/{holder}/text", params={"start": citation["start"], "end": citation["end"]})
    assert span.json()["text"] == citation["quote"] and str(code) in citation["quote"]
    if strategy == "chain":  # read in the order asked: gate.txt first, then the other member
        read = [step["filename"] for step in answer["trace"] if step.get("filename")]
        assert read[0] == "gate.txt" and read[-1] == "vault.txt"


def test_a_collection_question_s_answer_streams_as_answer_events_before_the_job_ends(client: httpx.Client) -> None:
    from tests.service.conftest import STREAM_MODEL
    from tests.service.test_questions import _events

    code = random.randint(10_000, 99_999)
    holder = _ingested(client, needle_document(code, paragraphs=10, seed=5), "vault.txt")
    plain = _ingested(
        client, needle_document(17, paragraphs=8, seed=6).replace("vault code", "gate number"), "gate.txt"
    )
    collection = client.post("/v1/collections", json={"name": f"streamed-{code}", "document_ids": [holder, plain]})
    question = {"question": "What is the vault code?", "strategy": "tree", "model": STREAM_MODEL}
    asked = client.post(f"/v1/collections/{collection.json()['id']}/questions", json=question)
    assert asked.status_code == 202, asked.text
    events = _events(client, asked.json()["id"])
    kinds = [kind for kind, _, _ in events]
    assert kinds[-1] == "end" and events[-1][2]["status"] == "succeeded", events[-1]
    pieces = [data for kind, _, data in events if kind == "answer"]
    # The leaf's answer is written a word every 0.4 s: several events while the job runs, without the
    # leaf's reasoning or action.
    assert len(pieces) >= 2 and pieces[0]["restart"] and kinds.index("answer") < kinds.index("end")
    streamed = "".join(p["text"] for p in pieces)
    assert streamed.startswith("The vault code is") and str(code) in streamed
    assert "Action" not in streamed and "passage states" not in streamed
    answers = client.get(f"/v1/collections/{collection.json()['id']}/answers").json()
    stored = next(a for a in answers if a["id"] == events[-1][2]["result_id"])
    assert str(code) in stored["answer"] and stored["citations"][0]["document_id"] == holder
