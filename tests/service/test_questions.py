"""Questions, answers with citations, summaries, the SSE stream, cancel and the rate limit."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx
import pytest

from tests.service.conftest import SLOW_MODEL, STREAM_MODEL, needle_document, upload, wait_for, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _ingested(client: httpx.Client, text: str) -> str:
    body = upload(client, text).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    return str(body["document_id"])


def _check_citation(client: httpx.Client, doc_id: str, answer: dict[str, Any], code: int) -> None:
    assert answer["citations"], answer
    citation = answer["citations"][0]
    assert f"vault code is {code}" in citation["quote"]
    assert citation["segment_start"] <= citation["start"] < citation["end"] <= citation["segment_end"]
    span = client.get(f"/v1/documents/{doc_id}/text", params={"start": citation["start"], "end": citation["end"]})
    assert span.json()["text"] == citation["quote"]


def test_question_over_the_tree_is_answered_with_citations(client: httpx.Client) -> None:
    code = random.randint(10_000, 99_999)
    doc_id = _ingested(client, needle_document(code, paragraphs=16))
    response = client.post(
        f"/v1/documents/{doc_id}/questions", json={"question": "What is the vault code?", "strategy": "tree"}
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["llm_calls"] > 0 and job["prompt_tokens"] > 0 and job["total"] > 0
    answer = client.get(f"/v1/answers/{job['result_id']}").json()
    assert str(code) in answer["answer"]
    assert answer["strategy"] == "tree" and answer["question"] == "What is the vault code?"
    assert answer["trace"] and answer["latency_s"] > 0
    _check_citation(client, doc_id, answer, code)


def test_wait_option_returns_the_answer_inline(client: httpx.Client) -> None:
    code = random.randint(10_000, 99_999)
    doc_id = _ingested(client, needle_document(code))
    response = client.post(
        f"/v1/documents/{doc_id}/questions",
        params={"wait": 30},
        json={"question": "What is the vault code?", "strategy": "chain"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["answer"]["strategy"] == "chain"
    assert str(code) in body["answer"]["answer"]
    _check_citation(client, doc_id, body["answer"], code)
    # One task per chain step, then the manager: every step is in the trace and paid for once.
    steps = [entry for entry in body["answer"]["trace"] if entry.get("role") != "manager"]
    assert len(steps) >= 3 and [entry["step"] for entry in steps] == list(range(1, len(steps) + 1))
    assert body["llm_calls"] == len(steps) + 1


def test_keys_never_open_anything_from_the_url(client: httpx.Client) -> None:
    key = client.headers["Authorization"].removeprefix("Bearer ")
    listing = httpx.get(f"{client.base_url}/v1/documents", params={"access_token": key})
    assert listing.status_code == 401
    doc_id = upload(client, needle_document(random.randint(10_000, 99_999))).json()["document_id"]
    job_id = client.get("/v1/jobs", params={"document_id": doc_id}).json()[0]["id"]
    stream = httpx.get(f"{client.base_url}/v1/jobs/{job_id}/events", params={"access_token": key})
    assert stream.status_code == 401 and stream.json()["error"]["code"] == "missing_api_key"


def test_stream_tokens_open_one_job_of_one_tenant(client: httpx.Client) -> None:
    doc_id = upload(client, needle_document(random.randint(10_000, 99_999))).json()["document_id"]
    job_ids = [job["id"] for job in client.get("/v1/jobs", params={"limit": 2}).json()]
    issued = client.post(f"/v1/jobs/{job_ids[0]}/stream-token").json()
    assert issued["events_url"].endswith(issued["token"]) and doc_id
    bare = httpx.Client(base_url=client.base_url, timeout=30)
    forged = issued["token"][:-3] + ("AAA" if not issued["token"].endswith("AAA") else "BBB")
    refused = bare.get(f"/v1/jobs/{job_ids[0]}/events", params={"token": forged})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_stream_token"
    if len(job_ids) > 1:  # a token for one job does not open another
        other = bare.get(f"/v1/jobs/{job_ids[1]}/events", params={"token": issued["token"]})
        assert other.status_code == 401


def test_unknown_model_and_strategy_are_refused(client: httpx.Client) -> None:
    doc_id = upload(client, needle_document(random.randint(10_000, 99_999))).json()["document_id"]
    model = client.post(f"/v1/documents/{doc_id}/questions", json={"question": "q?", "model": "scripted/os.system"})
    assert model.status_code == 422 and model.json()["error"]["code"] == "unknown_model"
    strategy = client.post(f"/v1/documents/{doc_id}/questions", json={"question": "q?", "strategy": "guess"})
    assert strategy.status_code == 422 and strategy.json()["error"]["code"] == "validation_error"


def _events(client: httpx.Client, job_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    """Read the stream the way a browser's EventSource must: a signed stream token in the URL, no header."""
    events: list[tuple[str, int, dict[str, Any]]] = []
    current: dict[str, str] = {}
    token = client.post(f"/v1/jobs/{job_id}/stream-token").json()["token"]
    url = f"{client.base_url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, params={"token": token}, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "data" in current:
                    events.append((current.get("event", "message"), int(current["id"]), json.loads(current["data"])))
                current = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value.lstrip()
    return events


def test_summary_job_events_arrive_in_order_and_end(client: httpx.Client) -> None:
    doc_id = _ingested(client, needle_document(random.randint(10_000, 99_999), paragraphs=16))
    job = client.post(f"/v1/documents/{doc_id}/summaries", json={"strategy": "tree"})
    assert job.status_code == 202
    events = _events(client, job.json()["id"])
    assert len(events) >= 2
    ids = [event_id for _, event_id, _ in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    kinds = [kind for kind, _, _ in events]
    assert kinds[-1] == "end" and "end" not in kinds[:-1]
    final = events[-1][2]
    assert final["status"] == "succeeded", final
    progress = [(data["done"], data["total"]) for _, _, data in events if data["status"] == "running"]
    assert progress, "no running state was streamed"
    # Counters are per stage (tree nodes, then the summary call): within a stage they never go back.
    for (done, total), (next_done, next_total) in zip(progress, progress[1:], strict=False):
        assert next_total != total or next_done >= done, progress
    assert any(total > 1 and done > 0 for done, total in progress), progress
    summary = client.get(f"/v1/answers/{final['result_id']}").json()
    assert summary["kind"] == "summary" and summary["answer"]


def test_the_tree_walk_s_answer_streams_as_answer_events_before_the_job_ends(client: httpx.Client) -> None:
    code = random.randint(10_000, 99_999)
    doc_id = _ingested(client, needle_document(code, paragraphs=16))
    asked = client.post(
        f"/v1/documents/{doc_id}/questions",
        json={"question": "What is the vault code?", "strategy": "tree", "model": STREAM_MODEL},
    )
    assert asked.status_code == 202, asked.text
    events = _events(client, asked.json()["id"])
    kinds = [kind for kind, _, _ in events]
    assert kinds[-1] == "end" and events[-1][2]["status"] == "succeeded", events[-1]
    pieces = [data for kind, _, data in events if kind == "answer"]
    # The leaf's answer is written a word every 0.4 s: it arrives in several events while the job runs,
    # without the leaf's reasoning or action, and is the stored answer as far as it got before the end.
    assert len(pieces) >= 2 and pieces[0]["restart"] and not any(p["restart"] for p in pieces[1:])
    assert kinds.index("answer") < kinds.index("end")
    streamed = "".join(p["text"] for p in pieces)
    stored = client.get(f"/v1/answers/{events[-1][2]['result_id']}").json()
    assert stored["strategy"] == "tree" and str(code) in stored["answer"]
    assert streamed.startswith("The vault code is") and stored["answer"].startswith(streamed)
    assert "Action" not in streamed and "passage states" not in streamed


def test_cancel_stops_a_running_tree_build(client: httpx.Client) -> None:
    from sqlmodel import func, select

    from longread.storage.db import session_scope
    from longread.storage.models import TreeNode

    doc_id = _ingested(client, needle_document(random.randint(10_000, 99_999), paragraphs=30))
    job_id = client.post(f"/v1/documents/{doc_id}/summaries", json={"model": SLOW_MODEL}).json()["id"]
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["done"] >= 2, 60, "progress")
    cancel = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == 200
    job = wait_job(client, job_id, timeout=30)
    assert job["status"] == "canceled"

    def nodes() -> int:
        with session_scope() as session:
            return int(session.exec(select(func.count()).select_from(TreeNode)).one())

    time.sleep(1.5)  # node tasks already running may still finish; nothing new starts after that
    settled = nodes()
    time.sleep(2)
    assert nodes() == settled
    assert job["done"] < job["total"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "canceled"


def test_rate_limit_per_key(service_env: dict[str, str], key_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from longread.api.main import app
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    try:
        if time.time() % 60 > 55:  # keep the four requests inside one counting window
            time.sleep(61 - time.time() % 60)
        limited, fresh = key_factory("limited"), key_factory("fresh")
        with TestClient(app) as http:
            codes = [
                http.get("/v1/documents", headers={"Authorization": f"Bearer {limited}"}).status_code for _ in range(4)
            ]
            assert codes == [200, 200, 200, 429]
            refused = http.get("/v1/documents", headers={"Authorization": f"Bearer {limited}"})
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
            assert http.get("/v1/documents", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    finally:
        get_settings.cache_clear()
