"""Outermost layers of every response: security headers, and JSON errors for what no route handled.

Both are plain ASGI middleware (not `BaseHTTPMiddleware`), so streamed responses (the event stream,
uploads) pass through untouched.

`ErrorGuard` answers an unhandled exception with a JSON body instead of Starlette's plain-text 500:
`503 database_unavailable` when the database cannot be reached, `503 broker_unavailable` for Redis,
`500 internal_error` otherwise. It logs one redacted line and does not re-raise, so the server log
carries no SQL or traceback either; the traceback is logged at DEBUG level only, for whoever turns
that on while investigating.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longread.failures import sanitise

log = logging.getLogger(__name__)

# The page (frontend/) loads one module script and one stylesheet from its own origin and talks only
# to its own API, so everything can be 'self'. FastAPI's /docs and /redoc pages load Swagger UI and
# ReDoc from a CDN with an inline bootstrap script; they get a policy that allows exactly that.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-opener-policy": b"same-origin",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """Adds CSP, X-Frame-Options DENY, nosniff and Referrer-Policy to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in SECURITY_HEADERS]
                headers.extend(SECURITY_HEADERS.items())
                headers.append((b"content-security-policy", csp.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """Status, stable code and human message for an exception no route turned into an API error."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, OperationalError | PoolTimeout) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return 503, "database_unavailable", "the database is unreachable; try again shortly"
    if _is_connection_error(exc):
        return 503, "database_unavailable", "the database is unreachable; try again shortly"
    if isinstance(exc, RedisError):
        return 503, "broker_unavailable", "the job queue is unreachable; try again shortly"
    return 500, "internal_error", "the server failed to handle this request"


def _is_connection_error(exc: BaseException) -> bool:
    """Driver-level connection failures raised outside SQLAlchemy's wrapping (e.g. at pool checkout)."""
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return False
    return isinstance(exc, psycopg.OperationalError)


class ErrorGuard:
    """Turns any unhandled exception into a JSON error response with a stable code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            status, code, message = classify(exc)
            log.error(
                "%s %s failed: %s (%s: %s)",
                scope.get("method"),
                scope.get("path"),
                code,
                type(exc).__name__,
                sanitise(str(exc)),
            )
            log.debug("unhandled exception", exc_info=True)
            if started:  # the response is already on its way; all that is left is to end it
                return
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            headers: list[tuple[bytes, bytes]] = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if status == 503:
                headers.append((b"retry-after", b"5"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})


class MethodGuard:
    """A request to an API path with a method no route there takes: JSON 405 with an `Allow` header.

    The page's static files are mounted at `/`, so without this the mount would take such a request
    and answer 405 for its own methods (GET, HEAD), not the API path's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (allowed := _other_methods(scope)) is not None:
            body = json.dumps(
                {"error": {"code": "method_not_allowed", "message": f"{scope['method']} is not allowed here"}}
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"allow", ", ".join(sorted(allowed)).encode()),
            ]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _other_methods(scope: Scope) -> set[str] | None:
    """The methods the API documents at this path, when this request's method is not one of them."""
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return None
    path: str = scope.get("path", "")
    for pattern, methods in _api_paths(app):
        if pattern.match(path):
            return None if scope["method"] in methods or (scope["method"] == "HEAD" and "GET" in methods) else methods
    return None


def _api_paths(app: Any) -> list[tuple[Any, set[str]]]:
    """(regex, methods) of every documented path, compiled once per app from its OpenAPI document."""
    cached = getattr(app.state, "api_paths", None)
    if cached is None:
        from starlette.routing import compile_path

        cached = [
            (compile_path(path)[0], {method.upper() for method in operations})
            for path, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.api_paths = cached
    return cached


def install(app: Any) -> None:
    """ErrorGuard and MethodGuard inside SecurityHeaders, so their responses carry the headers too.

    The server's log handlers (uvicorn configures them before it loads the app) get the filter that
    keeps tracebacks, SQL, paths and keys out of log lines.
    """
    from longread.logs import quiet_internals

    quiet_internals(logging.getLogger("uvicorn.error"), logging.getLogger("uvicorn"))
    app.add_middleware(MethodGuard)
    app.add_middleware(ErrorGuard)
    app.add_middleware(SecurityHeaders)
