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


def test_the_usage_names_the_last_retried_failure(env, monkeypatch) -> None:
    """The Router's retries are counted with the latest one's failure, as a fixed sentence."""
    monkeypatch.setenv("LONGREAD_LLM_NUM_RETRIES", "3")
    from longread.config import get_settings

    get_settings.cache_clear()
    usage = Usage()
    LLMClient("scripted/tests.flaky.fails_twice", usage).complete_messages([{"role": "user", "content": "hi"}])
    assert usage.retries == 2
    assert usage.last_retry is not None and usage.last_retry.code == "model_rate_limited"
    assert "slow down" not in usage.last_retry.message  # the provider's own text stays out of the job row
    clean = Usage()
    LLMClient("scripted/longread.testing.doubles.reader", clean).complete_messages([{"role": "user", "content": "x"}])
    assert (clean.retries, clean.last_retry) == (0, None)


def test_the_job_row_and_api_show_the_retries_and_the_last_retried_failure(session) -> None:  # type: ignore[no-untyped-def]
    """Node tasks add retries to the row; a later call without retries keeps the stored failure."""
    from longread.api.schemas import JobOut
    from longread.failures import describe_model_error
    from longread.storage import jobs
    from longread.storage.models import Job, JobKind

    job = jobs.create_job(session, tenant_id="t", kind=JobKind.SUMMARIZE, document_id=None)
    jobs.add_usage(session, job.id, Usage(calls=1, retries=2, last_retry=describe_model_error("RateLimitError")))
    jobs.add_usage(session, job.id, Usage(calls=1, retries=1, last_retry=describe_model_error("Timeout")))
    jobs.add_usage(session, job.id, Usage(calls=1))
    session.expire_all()
    shown = JobOut.of(session.get(Job, job.id))
    assert (shown.llm_calls, shown.llm_retries) == (3, 3)
    assert shown.llm_last_retry_code == "model_timeout"
    assert shown.llm_last_retry_error == describe_model_error("Timeout").message
    # A later attempt (set_usage: base counters + this attempt) keeps the earlier attempt's failure.
    row = session.get(Job, job.id)
    jobs.set_usage(session, row, jobs.counters(row), Usage(calls=1))
    session.expire_all()
    again = JobOut.of(session.get(Job, job.id))
    assert (again.llm_retries, again.llm_last_retry_code) == (3, "model_timeout")


def test_a_usage_update_returns_the_row_a_task_copies_onto_its_job(session) -> None:  # type: ignore[no-untyped-def]
    """A node task keeps a detached job copy current from each update's tally, cancel flag included."""
    from longread.storage import jobs
    from longread.storage.models import Job, JobKind, JobStatus

    job = jobs.create_job(session, tenant_id="t", kind=JobKind.BUILD_TREE, document_id=None)
    copy = Job.model_validate(job.model_dump())
    jobs.add_usage(session, job.id, Usage(calls=1, prompt_tokens=100, completion_tokens=10, cost_usd=0.5))
    jobs.request_cancel(session, job)  # a queued job is canceled at once
    tally = jobs.add_usage(session, job.id, Usage(calls=1, prompt_tokens=20, completion_tokens=2, cost_usd=0.25))
    assert tally is not None
    tally.copy_to(copy)
    assert (copy.prompt_tokens, copy.completion_tokens, copy.cost_usd) == (120, 12, 0.75)
    assert copy.cancel_requested and copy.status is JobStatus.CANCELED


@pytest.mark.slow
def test_retries_over_real_http_name_the_failure_without_the_providers_text(env, monkeypatch) -> None:
    """litellm's OpenAI client against a loopback server that answers 500 to some requests."""
    from longread.config import get_settings
    from longread.testing.fault_provider import FaultyProvider

    with FaultyProvider(rate=0.5, kinds=("server_error",), seed=11) as provider:
        monkeypatch.setenv("LONGREAD_LLM_API_BASE", provider.url)
        monkeypatch.setenv("LONGREAD_LLM_API_KEY", "sk-retry-test-0000000000")
        monkeypatch.setenv("LONGREAD_LLM_NUM_RETRIES", "6")
        get_settings.cache_clear()
        usage = Usage()
        client = LLMClient("openai/fake-model", usage)
        for n in range(8):
            client.complete_messages([{"role": "user", "content": f"Summarise part {n}."}])
            if usage.retries:
                break
        failed = provider.counts["server_error"]
    assert failed > 0 and usage.retries == failed, (usage.retries, provider.counts)
    assert usage.last_retry is not None and usage.last_retry.code == "model_unavailable"
    assert not any(leak in usage.last_retry.message for leak in ("127.0.0.1", "500", "server had an error", "sk-"))
