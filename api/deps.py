"""Request-scoped dependencies: a database session and the calling principal (auth + rate limit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api import ratelimit
from api.errors import ApiError
from api.security import ANONYMOUS, Principal, keys_exist, lookup
from longread.config import Settings, get_settings
from storage.db import init_db


def get_db() -> Iterator[Session]:
    with Session(init_db(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers' EventSource cannot set headers, so the event stream also accepts ?access_token=.
    return request.query_params.get("access_token") or None


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller's tenant, from `Authorization: Bearer <key>`.

    Without a key, requests act as the local tenant only when ANONYMOUS_LOCAL is on (embedded
    `make run`) and no API key has been created yet; creating the first key closes that door.
    """
    token = _bearer(request)
    if token is not None:
        principal = lookup(session, token)
        if principal is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
    elif settings.ANONYMOUS_LOCAL and not keys_exist(session):
        principal = ANONYMOUS
    else:
        raise ApiError(401, "missing_api_key", "send 'Authorization: Bearer <API key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    retry_after = ratelimit.hit(principal.key_id, settings.RATE_LIMIT_PER_MINUTE, settings.REDIS_KEY_PREFIX)
    if retry_after is not None:
        raise ApiError(429, "rate_limited",
                       f"more than {settings.RATE_LIMIT_PER_MINUTE} requests this minute; retry in {retry_after}s",
                       headers={"Retry-After": str(retry_after)})
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
