"""Schemathesis over the whole OpenAPI document: every response is documented, valid and never a 5xx.

The app runs in process on a fresh SQLite database, with the real Redis as broker (jobs are queued,
no worker runs them: the API's side of every operation is what is under test). The number of
generated examples per operation is bounded (`LONGREAD_SCHEMATHESIS_EXAMPLES`, 25 by default), so
the run has a fixed cost in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from longread.api.main import create_app

pytestmark = pytest.mark.slow  # schemathesis generates examples for every operation

REDIS_URL = os.environ.get("LONGREAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
EXAMPLES = int(os.environ.get("LONGREAD_SCHEMATHESIS_EXAMPLES", "25"))

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
_auth: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _service(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh database with one key and one stored document, and a private Redis key prefix."""
    import redis

    from longread import engine
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage.db import session_scope
    from longread.testing.factories import document_with_facts

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("needs the Redis server (scripts/services.sh starts it)")
    prefix = f"schema-{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("LONGREAD_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("LONGREAD_RATE_LIMIT_PER_MINUTE", "1000000")
    get_settings.cache_clear()
    with session_scope() as session:
        key, row = create_key(session, "schema")
        engine.store_text(session, filename="d.txt", text=document_with_facts(4, {}), tenant_id=row.tenant_id)
    _auth["Authorization"] = f"Bearer {key}"
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for stale in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(stale)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_conforms_to_its_documentation(case: Any) -> None:
    excluded = []
    if case.operation.method.upper() == "POST" and case.operation.path == "/v1/documents":
        # The schema can say "a file", not "a readable document": a schema-valid PNG is rightly refused.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=dict(_auth), excluded_checks=excluded)
