"""Scripted models that fail, for testing the retry layer."""

from __future__ import annotations

attempts = {"n": 0}


def fails_twice(messages: list[dict[str, str]]) -> str:
    attempts["n"] += 1
    if attempts["n"] <= 2:
        import litellm

        raise litellm.RateLimitError(message="slow down", llm_provider="scripted", model="flaky")
    return "recovered"


def always_fails(messages: list[dict[str, str]]) -> str:
    attempts["n"] += 1
    raise RuntimeError("provider is down")
