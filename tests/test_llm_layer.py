"""The LLM layer: retries through the Router, accounting, cache keys, clear failures."""

from __future__ import annotations

import pytest

from longread.llm import LLMClient, LLMError, Usage
from tests import flaky


@pytest.fixture(autouse=True)
def _reset() -> None:
    flaky.attempts["n"] = 0


def test_router_retries_a_rate_limited_call(env, monkeypatch) -> None:
    monkeypatch.setenv("LONGREAD_LLM_NUM_RETRIES", "3")
    from longread.config import get_settings

    get_settings.cache_clear()
    usage = Usage()
    client = LLMClient("scripted/tests.flaky.fails_twice", usage)
    result = client.complete_messages([{"role": "user", "content": "hello"}])
    assert result.text == "recovered"
    assert flaky.attempts["n"] == 3
    assert usage.calls == 1 and usage.prompt_tokens > 0 and usage.completion_tokens > 0


def test_a_failing_provider_raises_one_error_type_and_caches_nothing(env, monkeypatch) -> None:
    monkeypatch.setenv("LONGREAD_LLM_NUM_RETRIES", "0")
    from longread.config import get_settings

    get_settings.cache_clear()
    client = LLMClient("scripted/tests.flaky.always_fails")
    with pytest.raises(LLMError, match="scripted/tests.flaky.always_fails"):
        client.complete_messages([{"role": "user", "content": "hello"}])
    assert client.usage.calls == 0
    assert flaky.attempts["n"] == 1  # no retry layer stacked under the Router
    with pytest.raises(LLMError):
        client.complete_messages([{"role": "user", "content": "hello"}])
    assert flaky.attempts["n"] == 2  # the failure was not cached


def test_cache_key_depends_on_model_messages_and_decoding(env) -> None:
    usage = Usage()
    client = LLMClient("scripted/longread.testing.doubles.reader", usage)
    client.complete_messages([{"role": "user", "content": "one"}])
    client.complete_messages([{"role": "user", "content": "one"}])
    client.complete_messages([{"role": "user", "content": "one"}], max_tokens=7)
    client.complete_messages([{"role": "user", "content": "two"}])
    assert (usage.calls, usage.cached_calls) == (3, 1)
    fresh = LLMClient("scripted/longread.testing.doubles.reader", use_cache=False)
    fresh.complete_messages([{"role": "user", "content": "one"}])
    assert fresh.usage.calls == 1
