"""Budget caps across worker processes: fan-out tasks get what is left of a job's caps, and a capped job
still succeeds with its best partial answer and the reason; a dry run plans without a job."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.service.conftest import needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _ingested(client: httpx.Client, text: str) -> str:
    body = upload(client, text).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    return str(body["document_id"])


def test_a_capped_chain_job_stops_with_the_unit_so_far(client: httpx.Client) -> None:
    code = random.randint(10_000, 99_999)
    doc_id = _ingested(client, needle_document(code, paragraphs=40, at=1))
    body = {"question": "What is the vault code?", "strategy": "chain", "max_tokens": 1600}
    response = client.post(f"/v1/documents/{doc_id}/questions", json=body)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["params"]["max_tokens"] == 1600
    answer = client.get(f"/v1/answers/{job['result_id']}").json()
    assert answer["stopped_reason"].startswith("token cap reached"), answer
    assert str(code) in answer["answer"]
    assert "vault code is" in answer["citations"][0]["quote"]
    assert job["prompt_tokens"] + job["completion_tokens"] <= 1600


def test_a_capped_tree_job_stops_its_fan_out_and_says_why(client: httpx.Client) -> None:
    doc_id = _ingested(client, needle_document(random.randint(10_000, 99_999), paragraphs=30))
    body = {"question": "What is the vault code?", "strategy": "tree", "max_tokens": 400}
    job = wait_job(client, client.post(f"/v1/documents/{doc_id}/questions", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    answer = client.get(f"/v1/answers/{job['result_id']}").json()
    assert answer["stopped_reason"].startswith("token cap reached"), answer
    # Node tasks running at once may each make one call before they see the cap; never a whole tree.
    assert job["llm_calls"] < 10


def test_dry_run_plans_without_a_job(client: httpx.Client) -> None:
    doc_id = _ingested(client, needle_document(random.randint(10_000, 99_999)))
    before = client.get("/v1/jobs", params={"document_id": doc_id}).json()
    response = client.post(
        f"/v1/documents/{doc_id}/questions", json={"question": "What is the vault code?", "dry_run": True}
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] and plan["strategy"] and plan["options"]
    assert client.get("/v1/jobs", params={"document_id": doc_id}).json() == before
