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


# FastAPI's own 400 for a body it cannot decode (bytes that are not UTF-8). A body that is not valid
# JSON is a 422 `validation_error`; an undecodable one is the same mistake and gets the same answer.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return JSONResponse(error_body("validation_error", "body: the request body is not valid JSON"), 422)
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


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "for people"},
            },
            "additionalProperties": True,
        }
    },
}
_DESCRIPTIONS = {
    400: "malformed request (`bad_range`, `malformed_upload`, `truncated_upload`, ...)",
    401: "`missing_api_key` or `invalid_api_key`",
    404: "`not_found`: no such resource for this key's tenant",
    409: "`collection_exists`: the tenant has a collection of that name",
    413: "`payload_too_large`, `archive_too_large` or `pdf_too_large`",
    415: "`unsupported_media_type`",
    422: "`validation_error`, or a specific code such as `invalid_characters`, `unknown_model`",
    429: "`rate_limited` (see `Retry-After`)",
    503: "`database_unavailable` or `broker_unavailable` (see `Retry-After`)",
}


def _documented_errors(path: str, method: str) -> list[int]:
    """The error statuses an operation can answer with (all of them are the same JSON shape)."""
    if not path.startswith("/v1/"):
        return []
    codes = [401, 422, 429, 503]
    if "{" in path:
        codes.append(404)
    if path.endswith("/text") or (path == "/v1/documents" and method == "post"):
        codes.append(400)
    if path == "/v1/documents" and method == "post":
        codes += [413, 415]
    if path == "/v1/collections" and method == "post":
        codes += [404, 409]  # a document that is not the tenant's; a name already taken
    return sorted(codes)


def document_errors(app: FastAPI) -> None:
    """Add the error responses every route can give to the OpenAPI document, once, where it is built.

    Routes declare their success responses; the errors come from shared dependencies (keys, rate
    limits, the database) and handlers, so they are documented here in one place.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in _documented_errors(path, method):
                    responses.setdefault(
                        str(status),
                        {
                            "description": _DESCRIPTIONS[status],
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    document_errors(app)
