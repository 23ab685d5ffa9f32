"""Request-scoped dependencies: a database session and the calling principal (auth + rate limit)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlmodel import Session

from longread.api import ratelimit, stream_tokens
from longread.api.errors import ApiError
from longread.api.security import ANONYMOUS, Principal, cached_lookup, keys_exist
from longread.config import Settings, get_settings
from longread.storage.db import init_db


async def get_db() -> AsyncIterator[Session]:
    """A request's session, closed on the event loop.

    A sync generator dependency would need a thread-pool slot to close its session after the
    response; under load every slot can be taken by requests waiting for a pooled connection that
    only those closes would free. Closing here needs no slot, so that wait cannot deadlock.
    """
    session = Session(init_db(), expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def releases_session(endpoint: Endpoint) -> Endpoint:
    """Close the request's session when a sync endpoint returns, in the endpoint's own thread.

    FastAPI validates a sync endpoint's response in another thread-pool call. A request that still
    held its pooled connection there could wait for a thread while every thread waits for a
    connection: under load that deadlocks until the pool times out.
    """

    @functools.wraps(endpoint)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            session = kwargs.get("session")
            if isinstance(session, Session):
                session.close()

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the endpoint's signature for FastAPI


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Keys never travel in URLs (they end up in logs); event streams take a signed token instead
    # (see `stream_principal`).
    return None


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller's tenant, from `Authorization: Bearer <key>`.

    Without a key, requests act as the local tenant only when ANONYMOUS_LOCAL is on (embedded
    `make run`) and no API key has ever been created; creating the first key closes that door for
    good (revoking keys does not reopen it).
    """
    token = _bearer(request)
    if token is not None:
        principal = cached_lookup(session, token)
        if principal is None:
            raise ApiError(
                401, "invalid_api_key", "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
    elif settings.ANONYMOUS_LOCAL and not keys_exist(session):
        principal = ANONYMOUS
    else:
        raise ApiError(
            401, "missing_api_key", "send 'Authorization: Bearer <API key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    # End the read transaction now: the route runs in another thread-pool call, and a request holding
    # a pooled connection while it waits for a thread can deadlock with requests holding threads
    # while they wait for a connection.
    session.rollback()
    retry_after = ratelimit.hit(principal.key_id, settings.RATE_LIMIT_PER_MINUTE, settings.REDIS_KEY_PREFIX)
    if retry_after is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {settings.RATE_LIMIT_PER_MINUTE} requests this minute; retry in {retry_after}s",
            headers={"Retry-After": str(retry_after)},
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def stream_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller of a job's event stream: a `?token=` signed for that job, else the usual key header.

    Browsers' EventSource cannot send headers, so the page first asks `POST /v1/jobs/{id}/stream-token`.
    """
    token = request.query_params.get("token")
    if token is None:
        return get_principal(request, session, settings)
    session.rollback()
    try:
        tenant_id = stream_tokens.verify(token, request.path_params.get("job_id", ""))
    except stream_tokens.InvalidToken as exc:
        raise ApiError(401, "invalid_stream_token", str(exc)) from exc
    return Principal(tenant_id=tenant_id, key_id="stream-token")


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]
