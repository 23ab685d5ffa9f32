"""`make run`'s launcher on a fresh data folder: embedded valkey, SQLite, no key, the real worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import MODEL, REPO, _free_port, needle_document, wait_for

pytestmark = pytest.mark.service


def test_embedded_launcher_serves_questions_without_redis_or_keys(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGREAD_")}
    env.update(
        LONGREAD_DATA_DIR=str(tmp_path / "data"),
        LONGREAD_LLM=MODEL,
        LONGREAD_SEGMENT_TOKENS="60",
        # Scripted model only: the worker need not load (and in a fresh folder dequantise) the local one.
        LONGREAD_LOCAL_MODEL_PRELOAD="false",
        HF_HUB_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(REPO),
    )
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "longread.workers.embedded", "--port", str(port), "--concurrency", "2"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 90, "the embedded service")
        assert (tmp_path / "data" / "valkey" / "valkey.url").read_text().startswith("redis://127.0.0.1:")
        code = random.randint(10_000, 99_999)
        with httpx.Client(base_url=url, timeout=60) as http:  # no API key: the local tenant
            doc = http.post("/v1/documents", files={"file": ("a.txt", needle_document(code).encode(), "text/plain")})
            assert doc.status_code == 202, doc.text
            doc_id = doc.json()["document_id"]
            # The ingest job finishing shows the worker is up (its start is slow on a busy machine).
            ingest = doc.json()["job_id"]
            wait_for(lambda: http.get(f"/v1/jobs/{ingest}").json()["status"] == "succeeded", 120, "ingest")
            answer = http.post(
                f"/v1/documents/{doc_id}/questions",
                params={"wait": 30},
                json={"question": "What is the vault code?", "strategy": "chain"},
            )
            assert answer.status_code == 200, answer.text
            assert str(code) in answer.json()["answer"]["answer"]
            # The tree fan-out: node tasks of one chord written concurrently into SQLite.
            tree = http.post(
                f"/v1/documents/{doc_id}/questions",
                params={"wait": 30},
                json={"question": "What is the vault code?", "strategy": "tree"},
            )
            assert tree.status_code == 200, tree.text
            assert str(code) in tree.json()["answer"]["answer"] and tree.json()["answer"]["citations"]
        assert (tmp_path / "data" / "longread.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
