"""Provider faults over real HTTP: litellm's OpenAI client talks to a loopback server that fails on purpose.

At 30% failing calls (429 with Retry-After, 500, 503, slow replies past the timeout, unreadable bodies,
replies without a completion) a tree build completes: each kind of failure is retried by exactly one
layer (see api/README.md). A provider that keeps failing fails the job with the provider's reason, in a
sentence without internals, and nothing it said is stored as a summary.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx
import pytest

from longread.testing.fault_provider import FAULT_KINDS, FaultyProvider
from tests.faults.conftest import HOSTED
from tests.service.conftest import Workers, needle_document, upload, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]

LEAKS = ("127.0.0.1", "http://", "sk-", "Traceback", "litellm", "/v1/chat")
RETRIED_CODES = {"model_rate_limited", "model_unavailable", "model_timeout", "model_failed"}


def _document(client: httpx.Client, paragraphs: int) -> str:
    body = upload(client, needle_document(random.randint(10_000, 99_999), paragraphs=paragraphs)).json()
    assert wait_job(client, body["job_id"], timeout=60)["status"] == "succeeded"
    return str(body["document_id"])


def test_a_tree_build_completes_with_30_percent_of_calls_failing(
    fault_client: httpx.Client, fault_workers: Workers, provider: FaultyProvider, record: Callable[..., None]
) -> None:
    fault_workers.ensure()
    document_id = _document(fault_client, paragraphs=24)
    provider.counts.clear()
    provider.rate = 0.3
    started = time.monotonic()
    try:
        job_id = fault_client.post(
            f"/v1/documents/{document_id}/summaries", json={"strategy": "tree", "model": HOSTED}
        ).json()["id"]
        job = wait_job(fault_client, job_id, timeout=400)
    finally:
        provider.rate = 0.0
    seconds = time.monotonic() - started
    faults = sum(n for kind, n in provider.counts.items() if kind != "ok")
    record(
        "provider",
        "tree build, 30% of calls fail (429, 500, 503, timeout, malformed body, no choices)",
        handled=job["status"] == "succeeded",
        seconds=round(seconds, 1),
        requests=sum(provider.counts.values()),
        faults=faults,
        by_kind=dict(provider.counts),
        llm_retries=job["llm_retries"],
        llm_last_retry_code=job["llm_last_retry_code"],
    )
    assert job["status"] == "succeeded", job
    assert faults > 10, provider.counts  # the faults did happen, and were all retried
    # The retries show in the job row: every failed request of a call that then succeeded (the
    # ingest's calls and a failed attempt's own requests are not in this job's count).
    assert 0 < job["llm_retries"] <= faults, (job["llm_retries"], provider.counts)
    # ... with the latest retried failure as a stable code and a fixed sentence, never the provider's text.
    assert job["llm_last_retry_code"] in RETRIED_CODES, job
    assert job["llm_last_retry_error"] and not any(leak in job["llm_last_retry_error"] for leak in LEAKS), job
    assert "Rate limit reached" not in job["llm_last_retry_error"] and "overloaded" not in job["llm_last_retry_error"]
    answer = fault_client.get(f"/v1/answers/{job['result_id']}").json()
    assert answer["answer"] and "error" not in answer["answer"].lower()


@pytest.mark.parametrize(("kind", "code"), [("rate_limit", "model_rate_limited"), ("no_choices", "model_failed")])
def test_a_provider_that_keeps_failing_fails_the_job_with_its_reason(
    fault_client: httpx.Client,
    fault_workers: Workers,
    provider: FaultyProvider,
    record: Callable[..., None],
    kind: str,
    code: str,
) -> None:
    fault_workers.ensure()
    document_id = _document(fault_client, paragraphs=6)
    provider.kinds, provider.rate = (kind,), 1.0
    started = time.monotonic()
    try:
        job_id = fault_client.post(
            f"/v1/documents/{document_id}/summaries", json={"strategy": "tree", "model": HOSTED}
        ).json()["id"]
        job = wait_job(fault_client, job_id, timeout=300)
    finally:
        provider.rate, provider.kinds = 0.0, FAULT_KINDS
    seconds = time.monotonic() - started
    record(
        "provider",
        f"every call fails ({kind})",
        handled=job["status"] == "failed" and job.get("error_code") == code,
        seconds=round(seconds, 1),
        error_code=job.get("error_code"),
        error=job.get("error"),
    )
    assert job["status"] == "failed", job
    assert job["error_code"] == code, job
    assert job["error"] and not any(leak in job["error"] for leak in LEAKS), job["error"]
    assert fault_client.get(f"/v1/documents/{document_id}/answers").json() == []
    # The workers' logs name the failure in one line each: no traceback, provider address or key.
    for log in fault_workers.logs.glob("worker-*.log"):
        text = log.read_text(errors="replace")
        for leak in ("Traceback (most recent call last)", "sk-fault-test", provider.url):
            assert leak not in text, (log.name, leak)
