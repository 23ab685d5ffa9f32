"""What a failed job tells its user: a stable code and one human sentence, never the exception itself.

Exception texts from litellm and providers carry tracebacks, server paths, request URLs and "file a
bug" links; stored on a job row they would reach every client of the API and the web page. The full
exception goes to the server log (the worker logs it with its traceback); the job row gets what
`describe_failure` returns, and any free text that must be kept is passed through `sanitise`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MESSAGE = 300

_TRACEBACK = re.compile(r"Traceback \(most recent call last\).*", re.S)
_URL = re.compile(r"\b(?:https?|file|redis|postgres(?:ql)?|sqlite)(?:\+\w+)?://\S+", re.I)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+){2,}[\\/]?")
_FILE_LINE = re.compile(r'File "[^"]*", line \d+(?:, in \S+)?')
_LITELLM_PREFIX = re.compile(r"\b(?:litellm\.)?(?:\w+\.)*(\w+(?:Error|Exception)):\s*")
_SECRET = re.compile(r"\b(?:sk|lr|key|token)[-_][A-Za-z0-9_\-]{8,}", re.I)
_SQL = re.compile(r"\[SQL:.*?\]|\(Background on this error at:[^)]*\)", re.S)
_BUG_LINK = re.compile(r"[^.\n]*(?:file a bug|github\.com/BerriAI|report (?:this|it) (?:at|on))[^.\n]*\.?", re.I)


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


def sanitise(text: str, limit: int = MAX_MESSAGE) -> str:
    """One line of `text` with tracebacks, paths, URLs, SQL, key-like tokens and bug-report links removed."""
    text = _TRACEBACK.sub("", text)
    text = _SQL.sub("", text)
    text = _BUG_LINK.sub("", text)
    text = _FILE_LINE.sub("", text)
    text = _URL.sub("[address]", text)
    text = _PATH.sub("[path]", text)
    text = _SECRET.sub("[secret]", text)
    text = _LITELLM_PREFIX.sub("", text)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = re.sub(r"\s+", " ", line).strip(" :-")
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


# Provider failures by the name of litellm's exception class (the LLM layer wraps them, keeping the cause).
_MODEL_FAILURES: tuple[tuple[tuple[str, ...], Failure], ...] = (
    (("AuthenticationError", "PermissionDeniedError"),
     Failure("model_auth_failed", "the model service refused the credentials configured on this server")),
    (("RateLimitError",), Failure("model_rate_limited", "the model service is rate limiting requests; try again later")),
    (("Timeout", "TimeoutError", "APITimeoutError"),
     Failure("model_timeout", "the model did not answer in time; try again, or a shorter document or strategy")),
    (("ContextWindowExceededError",),
     Failure("model_context_exceeded", "the text sent to the model was longer than its context window")),
    (("ContentPolicyViolationError",),
     Failure("model_refused", "the model service refused the request under its content policy")),
    (("NotFoundError",), Failure("model_not_found", "the configured model is not known to its service")),
    (("APIConnectionError", "ServiceUnavailableError", "InternalServerError", "BadGatewayError"),
     Failure("model_unavailable", "the model service could not be reached or failed; try again later")),
)  # fmt: skip


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


MODEL_FAILED = Failure("model_failed", "the model call failed; the server log has the details")


def describe_model_error(class_name: str) -> Failure:
    """The code and message for a provider error known only by its exception class's name.

    The Router keeps the failed requests it retried as class names and texts; the texts carry the
    provider's address and body, so a job row gets this fixed sentence instead.
    """
    for class_names, failure in _MODEL_FAILURES:
        if class_name in class_names:
            return failure
    return MODEL_FAILED


def describe_failure(exc: BaseException) -> Failure:
    """The code and message a job stores for `exc` (the log keeps the exception itself)."""
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    for class_names, failure in _MODEL_FAILURES:
        if names & set(class_names):
            return failure
    # By name, not isinstance: the LLM layer imports this module, so this one cannot import it back.
    if any("LLMError" in {cls.__name__ for cls in type(e).__mro__} for e in chain):
        return MODEL_FAILED
    if isinstance(exc, LookupError):
        return Failure("not_found", sanitise(str(exc)) or "something the job needed no longer exists")
    if isinstance(exc, ValueError):
        return Failure("bad_input", sanitise(str(exc)) or "the job's input was not valid")
    return Failure("internal_error", "the job failed on the server; the server log has the details")
