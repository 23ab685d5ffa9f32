"""A failed job's stored error: a stable code and a safe sentence, whatever the exception said."""

from __future__ import annotations

import pytest

from longread.failures import describe_failure, sanitise
from longread.llm import LLMClient
from longread.llm.client import LLMError

BROKEN = "scripted/longread.testing.service_doubles.broken"


def test_a_provider_failure_through_litellm_is_described_without_its_internals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LLM_NUM_RETRIES", "0")  # the failure, not the Router's backoff, is under test
    get_settings.cache_clear()
    client = LLMClient(BROKEN, use_cache=False)
    with pytest.raises(LLMError) as caught:
        client.complete_messages([{"role": "user", "content": "hello"}])
    raw = str(caught.value)
    assert "/srv/longread" in raw or "10.0.0.7" in raw  # the exception itself carries internals
    failure = describe_failure(caught.value)
    assert failure.code.startswith("model_")
    for leak in ("/srv", "10.0.0.7", "Traceback", "site-packages", "litellm", "github", BROKEN):
        assert leak not in failure.message


def test_sanitise_keeps_the_reason_and_drops_paths_urls_tracebacks_and_bug_links() -> None:
    text = (
        "litellm.APIConnectionError: upstream https://api.example.com/v1 failed at /srv/app/longread/llm.py; "
        'key sk-abcdefghijklmnop leaked\nTraceback (most recent call last):\n  File "/srv/x.py", line 3\n'
        "Give Feedback / Get Help: https://github.com/BerriAI/litellm/issues/new. LiteLLM.Info: If you need to "
        "debug this error, use `litellm._turn_on_debug()'."
    )
    cleaned = sanitise(text)
    assert cleaned.startswith("upstream")
    assert "failed" in cleaned
    for leak in ("https://", "/srv", "sk-abc", "Traceback", "BerriAI", "\n"):
        assert leak not in cleaned


def test_known_exception_kinds_get_their_own_codes() -> None:
    assert describe_failure(LookupError("document 3f2a no longer exists")).code == "not_found"
    assert describe_failure(ValueError("the question is empty")).message == "the question is empty"
    internal = describe_failure(RuntimeError("KeyError in /srv/app/x.py"))
    assert internal.code == "internal_error" and "/srv" not in internal.message


def test_no_eta_while_the_counters_are_a_step_limit() -> None:
    from datetime import timedelta

    from longread.storage.jobs import eta_seconds
    from longread.storage.models import Job, JobKind, JobStatus, utcnow

    job = Job(kind=JobKind.ASK, status=JobStatus.RUNNING, started_at=utcnow() - timedelta(seconds=10))
    job.stage, job.done, job.total = "summarising level 1 of 3", 5, 10
    assert eta_seconds(job) is not None and 9 <= (eta_seconds(job) or 0) <= 11
    job.stage, job.done, job.total = "navigating", 3, 24  # step 3 of at most 24: the walk may end next step
    assert eta_seconds(job) is None
