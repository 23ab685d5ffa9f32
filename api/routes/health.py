"""Liveness and readiness for load balancers and compose health checks.

Anyone may ask whether the service is up, so the public answer is only `ok` or `unavailable`. What
failed and why (which can name hosts, drivers and versions) is shown only to a caller with a valid
API key.
"""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import Session

from longread.api.security import lookup
from longread.failures import sanitise
from longread.storage.db import init_db
from longread.workers.dispatch import redis_url

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str = Field(description="'ok', or 'unavailable' (then the status code is 503)")
    checks: dict[str, str] | None = Field(
        default=None, description="each dependency's state; only for a caller with a valid API key"
    )


def _database() -> str:
    try:
        with Session(init_db()) as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {sanitise(str(exc))}"
    return "ok"


def _broker() -> str:
    url = redis_url(start=False)
    if url is None:
        return "unavailable: no broker configured or running"
    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"unavailable: {type(exc).__name__}: {sanitise(str(exc))}"
    return "ok"


def _has_valid_key(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        with Session(init_db()) as session:
            return lookup(session, token.strip()) is not None
    except Exception:  # the database is down: no details for anyone
        return False


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the database or the broker does not answer"}},
)
def health(request: Request) -> Any:
    """200 `ok` when the database and the broker answer, else 503; details only with an API key."""
    checks = {"database": _database(), "broker": _broker()}
    ok = all(state == "ok" for state in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
    if _has_valid_key(request):
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503)
