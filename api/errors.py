"""Every error leaves the API as `{"error": {"code": ..., "message": ...}}` with a stable code."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


SPECIFIC_VALIDATION_CODES = frozenset({"invalid_characters", "blank_question"})
"""Validation error types (raised by the request models) that become the error's code."""


class ApiError(Exception):
    """An error with a machine code (stable, for clients) and a human message."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def not_found(what: str, key: str) -> ApiError:
    """Missing and not-yours look the same, so ids of other tenants leak nothing."""
    return ApiError(404, "not_found", f"no {what} '{key}'")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.message, **exc.extra), exc.status, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")} for err in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    # A reason with a code of its own (a NUL in a question, a blank question) names the error.
    specific = [err.get("type") for err in exc.errors() if err.get("type") in SPECIFIC_VALIDATION_CODES]
    code = str(specific[0]) if specific else "validation_error"
    return JSONResponse(error_body(code, message, details=details), 422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
