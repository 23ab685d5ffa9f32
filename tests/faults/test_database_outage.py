"""The database goes away under a running API (a TCP proxy in front of PostgreSQL is cut), then comes back.

Every request during the outage gets a JSON 503 `database_unavailable` with no driver text in it, the
public health check says only `unavailable`, and the API answers normally again once the database is
reachable, without a restart.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import httpx
import pytest

from longread.testing.processes import free_port, wait_for
from tests.faults.proxy import Proxy
from tests.service.conftest import REPO

pytestmark = [pytest.mark.service, pytest.mark.postgres]


@pytest.fixture
def api_through_proxy(
    fault_env: dict[str, str], pg_url: str, fault_client: httpx.Client
) -> Iterator[tuple[str, Proxy]]:
    target = urlparse(pg_url)
    proxy = Proxy((target.hostname or "127.0.0.1", target.port or 5432))
    proxied = pg_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    port = free_port()
    env = {**fault_env, "LONGREAD_DATABASE_URL": proxied}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "the proxied API")
        yield url, proxy
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proxy.close()


def test_requests_during_a_database_outage_get_json_503s_and_recover(
    api_through_proxy: tuple[str, Proxy], fault_client: httpx.Client, record: Callable[..., None]
) -> None:
    url, proxy = api_through_proxy
    auth = {"Authorization": fault_client.headers["Authorization"]}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        assert client.get("/v1/documents").status_code == 200
        proxy.cut()
        statuses = []
        for path in ("/v1/documents", "/v1/jobs", "/v1/documents/nope", "/v1/answers/nope"):
            response = client.get(path)
            statuses.append(response.status_code)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
            assert "psycopg" not in response.text and "127.0.0.1" not in response.text
        health = client.get("/healthz", headers={"Authorization": ""})
        assert health.status_code == 503 and health.json() == {"status": "unavailable"}
        proxy.restore()
        started = time.monotonic()
        wait_for(lambda: client.get("/v1/documents").status_code == 200, 30, "the API to recover")
        recovered_s = time.monotonic() - started
    record(
        "database",
        "database unreachable under a running API, then back",
        handled=True,
        seconds=round(recovered_s, 2),
        statuses=statuses,
    )
