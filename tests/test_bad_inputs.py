"""Every case of the bad-input corpus (tests/fixtures/bad/) gets a JSON 4xx with its stable code.

The API runs in process on a fresh SQLite database with the real Redis as broker (no worker: jobs only
queue). Besides the status and code, each response is checked for leaks (SQL, tracebacks, server
paths, secrets), and after the whole corpus nothing stored before it is lost and nothing new is
stored. Outcomes are written to a results file that `scripts/robustness_report.py` renders as the
README's bad-input table.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.bad.corpus import CASES, UPLOAD_LIMIT, Case, Request, describe, multipart

pytestmark = pytest.mark.slow  # the whole bad-input corpus (81 cases) through the API

REDIS_URL = os.environ.get("LONGREAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RESULTS = Path(
    os.environ.get("LONGREAD_BAD_INPUT_RESULTS", Path(__file__).parents[1] / "data" / "bad-input-results.json")
)
LEAK = re.compile(
    r"Traceback|\[SQL|INSERT INTO|SELECT .* FROM|site-packages|/tmp/|/home/|/work/|/srv/|\blr_[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{8,}",
    re.IGNORECASE,
)
_outcomes: dict[str, dict[str, Any]] = {}


@pytest.fixture
def service(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A fresh app and database holding one document, a key, and a private Redis key prefix."""
    import redis

    from longread import engine
    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage.db import session_scope
    from longread.testing.factories import document_with_facts

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("needs the Redis server (scripts/services.sh starts it)")
    prefix = f"bad-{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("LONGREAD_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("LONGREAD_UPLOAD_MAX_BYTES", str(UPLOAD_LIMIT))
    monkeypatch.setenv("LONGREAD_RATE_LIMIT_PER_MINUTE", "1000000")
    get_settings.cache_clear()
    with session_scope() as session:
        key, row = create_key(session, "corpus")
        text = document_with_facts(8, {3: "The vault code is 5150."})
        document, _ = engine.store_text(session, filename="kept.txt", text=text, tenant_id=row.tenant_id)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield {"client": client, "key": key, "doc": document.id, "text": text, "data": env / "data"}
    client_redis = redis.Redis.from_url(REDIS_URL)
    for stale in client_redis.scan_iter(match=f"{prefix}*", count=1000):
        client_redis.delete(stale)


def _intact(service: dict[str, Any]) -> None:
    """Nothing stored before the request is lost; nothing refused was stored or left on disk."""
    from sqlmodel import func, select

    from longread.storage.db import session_scope
    from longread.storage.models import Document

    client: TestClient = service["client"]
    auth = {"Authorization": f"Bearer {service['key']}"}
    kept = client.get(f"/v1/documents/{service['doc']}/text?start=0&end=200", headers=auth)
    assert kept.status_code == 200 and kept.json()["text"] == service["text"][:200]
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Document)).one() == 1
    assert not list((service["data"] / "uploads").glob("upload-*")), "a refused upload left its temp file"


def _send(service: dict[str, Any], request: Request) -> Any:
    headers = dict(request.headers)
    if request.auth == "key":
        headers["Authorization"] = f"Bearer {service['key']}"
    elif request.auth is not None:
        headers["Authorization"] = request.auth
    path = request.path.replace("{doc}", service["doc"])
    client: TestClient = service["client"]
    if request.json is not None:
        return client.request(request.method, path, json=request.json, headers=headers)
    return client.request(request.method, path, content=request.content, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_bad_input_gets_a_json_4xx_with_its_code(service: dict[str, Any], case: Case) -> None:
    request = case.build()  # generating a bomb takes seconds of its own: only the refusal is timed
    started = time.monotonic()
    response = _send(service, request)
    elapsed = time.monotonic() - started
    body: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        pass
    code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    leak = LEAK.search(response.text)
    _outcomes[case.name] = {
        **describe(case),
        "got_status": response.status_code,
        "got_code": code,
        "json": response.headers.get("content-type", "").startswith("application/json"),
        "leak": bool(leak),
        "seconds": round(elapsed, 3),
        "handled": response.status_code == case.status and code == case.code and not leak,
    }
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    assert (response.status_code, code) == (case.status, case.code), response.text
    assert body["error"]["message"]
    assert leak is None, f"the response leaks {leak.group(0)!r}: {response.text}"
    assert elapsed < 10, f"refusing took {elapsed:.1f}s"
    _intact(service)


def test_twenty_concurrent_uploads_of_one_file_store_it_once(service: dict[str, Any]) -> None:
    from tests.fixtures.bad.corpus import TEXT

    client: TestClient = service["client"]
    content = (TEXT + f"\nCopy marker {uuid.uuid4().hex}.").encode()

    def send(_: int) -> Any:
        request = multipart("same.txt", content)
        headers = {**request.headers, "Authorization": f"Bearer {service['key']}"}
        return client.post("/v1/documents", content=request.content, headers=headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))
    assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["document_id"] for r in responses}) == 1
    assert sum(1 for r in responses if not r.json()["deduplicated"]) == 1
    _outcomes["twenty concurrent uploads of one file"] = {
        "name": "twenty concurrent uploads of one file",
        "group": "concurrency",
        "status": 202,
        "code": "(one stored, 19 deduplicated)",
        "got_status": 202,
        "got_code": "(one stored, 19 deduplicated)",
        "json": True,
        "leak": False,
        "seconds": None,
        "handled": True,
    }


def test_zz_write_results() -> None:
    """Record the corpus run (runs last in this module) for the README table."""
    if not _outcomes:
        pytest.skip("no cases ran")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(list(_outcomes.values()), indent=1))
