"""Short-lived signed tokens for job event streams.

A browser's EventSource cannot send an Authorization header, and an API key in a URL ends up in
proxy and server logs. So the page asks (with its key, in a header) for a token that opens one job's
stream for a few minutes: an HMAC-SHA256 over the job id, the tenant and the expiry time, keyed by a
server secret. A leaked token opens only that job's progress, and only until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

from longread.config import get_settings

SECRET_FILE = "stream-token.secret"


class InvalidToken(ValueError):
    """The token is malformed, forged, for another job, or expired."""


@lru_cache(maxsize=4)
def _file_secret(path: Path) -> bytes:
    """The secret kept in DATA_DIR, created once (atomically, owner-only) when the setting is unset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        value = secrets.token_hex(32).encode()
        handle.write(value)
    return value


def _secret() -> bytes:
    settings = get_settings()
    if settings.STREAM_TOKEN_SECRET:
        return settings.STREAM_TOKEN_SECRET.encode()
    return _file_secret(settings.DATA_DIR.resolve() / SECRET_FILE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(job_id: str, tenant_id: str, expires: int) -> str:
    message = f"{job_id}\n{tenant_id}\n{expires}".encode()
    return _b64(hmac.new(_secret(), message, hashlib.sha256).digest())


def issue(job_id: str, tenant_id: str, *, now: float | None = None) -> tuple[str, int]:
    """A token for this job and tenant, and its expiry (Unix seconds)."""
    expires = int((now if now is not None else time.time()) + get_settings().STREAM_TOKEN_TTL_S)
    payload = _b64(f"{tenant_id}\n{expires}".encode())
    return f"{payload}.{_signature(job_id, tenant_id, expires)}", expires


def verify(token: str, job_id: str, *, now: float | None = None) -> str:
    """The tenant the token was issued to, if it is genuine, for `job_id`, and unexpired."""
    try:
        payload, signature = token.split(".", 1)
        tenant_id, expires_text = _unb64(payload).decode().split("\n", 1)
        expires = int(expires_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("the stream token is malformed") from exc
    if not hmac.compare_digest(signature, _signature(job_id, tenant_id, expires)):
        raise InvalidToken("the stream token is not valid for this job")
    if expires < (now if now is not None else time.time()):
        raise InvalidToken("the stream token has expired; ask for a new one")
    return tenant_id
