"""Checks on request text that pydantic's length limits do not cover, as validation errors with codes.

The error types raised here (`invalid_characters`, `blank_question`) become the response's error code
(see `api.errors.SPECIFIC_VALIDATION_CODES`), so a client can tell them from a generic 422.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

# C0 controls other than tab and newlines, DEL, and C1 controls. PostgreSQL cannot store NUL at all,
# and none of them belongs in a question or a model name.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
# The same rules written into the OpenAPI document (`json_schema_extra`), so clients and generated
# tests know them; the validators below enforce them with their own error codes.
TEXT_PATTERN = f"^{_ALLOWED}*$"
QUESTION_PATTERN = f"^{_ALLOWED}*[^\\s\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]{_ALLOWED}*$"


def question_text(value: str) -> str:
    """A question as stored: refused when it holds control characters or nothing but whitespace."""
    if CONTROL_CHARS.search(value):
        raise PydanticCustomError("invalid_characters", "the question contains control characters (such as NUL)")
    if not value.strip():
        raise PydanticCustomError("blank_question", "the question is empty or only whitespace")
    return value.strip()


def model_name(value: str | None) -> str | None:
    """A requested model name: control characters are refused like in questions."""
    if value is not None and CONTROL_CHARS.search(value):
        raise PydanticCustomError("invalid_characters", "the model name contains control characters")
    return value
