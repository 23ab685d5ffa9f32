"""Liveness and readiness for load balancers and compose health checks."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from sqlalchemy import text

from longread.api.deps import SessionDep, releases_session
from longread.api.errors import ApiError
from longread.workers.embedded import redis_url

router = APIRouter(tags=["health"])


@router.get("/healthz")
@releases_session
def health(session: SessionDep) -> dict[str, str]:
    """200 when the database and the broker answer."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, "database_unavailable", str(exc)) from exc
    url = redis_url(start=False)
    try:
        if url is None or not redis.Redis.from_url(url, socket_timeout=2).ping():
            raise ApiError(503, "broker_unavailable", "no broker configured or running")
    except redis.RedisError as exc:
        raise ApiError(503, "broker_unavailable", str(exc)) from exc
    return {"status": "ok"}
