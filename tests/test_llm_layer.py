"""The LLM layer: retries through the Router, accounting, cache keys, clear failures."""

from __future__ import annotations

import pytest

from longread.llm import LLMClient, LLMError, Usage
from longread.storage.cache import stored_client
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
    client = stored_client("scripted/longread.testing.doubles.reader", usage)
    client.complete_messages([{"role": "user", "content": "one"}])
    client.complete_messages([{"role": "user", "content": "one"}])
    client.complete_messages([{"role": "user", "content": "one"}], max_tokens=7)
    client.complete_messages([{"role": "user", "content": "two"}])
    assert (usage.calls, usage.cached_calls) == (3, 1)
    fresh = LLMClient("scripted/longread.testing.doubles.reader", use_cache=False)
    fresh.complete_messages([{"role": "user", "content": "one"}])
    assert fresh.usage.calls == 1


def test_a_client_without_a_cache_always_calls_the_model(env) -> None:
    client = LLMClient("scripted/longread.testing.doubles.reader")
    client.complete_messages([{"role": "user", "content": "one"}])
    client.complete_messages([{"role": "user", "content": "one"}])
    assert (client.usage.calls, client.usage.cached_calls) == (2, 0)


def test_the_cache_is_scoped_per_tenant(env) -> None:
    """A cached call tells a tenant only about its own earlier calls, never that another tenant asked."""
    model = "scripted/longread.testing.doubles.reader"
    question = [{"role": "user", "content": "What did the board decide?"}]
    first = stored_client(model, tenant_id="tenant-a")
    first.complete_messages(question)
    again = stored_client(model, tenant_id="tenant-a")
    again.complete_messages(question)
    other = stored_client(model, tenant_id="tenant-b")
    other.complete_messages(question)
    assert (again.usage.calls, again.usage.cached_calls) == (0, 1)
    assert (other.usage.calls, other.usage.cached_calls) == (1, 0)


def test_the_provider_slot_wraps_hosted_calls_only(env) -> None:
    """The cross-process cap is an interface the workers install; in-process models never wait on it."""
    import contextlib

    from longread.llm.client import use_provider_slot

    held: list[str] = []

    @contextlib.contextmanager
    def slot(model: str):  # type: ignore[no-untyped-def]
        held.append(model)
        yield

    use_provider_slot(slot)
    try:
        LLMClient("scripted/longread.testing.doubles.reader").complete_messages([{"role": "user", "content": "x"}])
        assert held == []  # scripted models run in-process, like the local model
        with LLMClient("openai/gpt-4o-mini")._slot():
            assert held == ["openai/gpt-4o-mini"]
    finally:
        use_provider_slot(None)
    with LLMClient("openai/gpt-4o-mini")._slot():
        assert held == ["openai/gpt-4o-mini"]  # removed: no slot taken
