"""Budget caps stop a job cleanly with its best partial answer; `plan` and dry runs never call a model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from longread import engine
from longread.agents import registry
from longread.cli import app
from longread.config import get_settings
from longread.llm.usage import Budget, BudgetExceeded, Usage
from longread.storage.models import Job
from longread.testing import doubles
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"
FIRST = "The first clue is that the captain left at 0600 hours."
LATER = "The second clue is that the captain returned at 2200 hours."
QUESTION = "At what hours did the captain leave and return?"
runner = CliRunner()


def _configure(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "LONGREAD_SEGMENT_TOKENS": "150",
        "LONGREAD_LLM_CONTEXT_WINDOW": "2000",
        "LONGREAD_CHAIN_CHUNK_TOKENS": "1400",
        "LONGREAD_CHAIN_UNIT_TOKENS": "200",
        "LONGREAD_LLM_CACHE": "false",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _text() -> str:
    return document_with_facts(50, {3: FIRST, 40: LATER})


def _worker_calls() -> int:
    return sum(1 for p in doubles.calls if p.startswith("You are worker"))


def test_check_budget_refuses_the_call_that_would_overrun_a_cap() -> None:
    usage = Usage(budget=Budget(max_tokens=100, max_cost_usd=0.05))
    usage.check_budget(prompt_tokens=100)
    with pytest.raises(BudgetExceeded, match="token cap"):
        usage.check_budget(prompt_tokens=101)
    usage.record(prompt_tokens=10, completion_tokens=0, cost_usd=0.049, cached=False)
    with pytest.raises(BudgetExceeded, match="cost cap"):
        usage.check_budget(prompt_cost_usd=0.002)
    with pytest.raises(BudgetExceeded, match="time cap"):
        Usage(budget=Budget(max_seconds=0)).check_budget()
    Usage().check_budget(prompt_tokens=10**9)  # no budget, no cap


def test_a_token_cap_stops_the_chain_and_keeps_its_unit(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document, _ = engine.store_text(session, filename="d.txt", text=_text())
    answer = engine.ask(
        session, document, QUESTION, strategy="chain", model=MODEL, caps=Budget(max_tokens=3500), usage=Usage()
    )
    assert answer.stopped_reason is not None and answer.stopped_reason.startswith("token cap reached")
    workers = _worker_calls()
    assert 1 <= workers < 6 and answer.llm_calls == workers  # stopped before the end and before the manager
    assert answer.prompt_tokens + answer.completion_tokens <= 3500
    assert "0600" in answer.answer and "2200" not in answer.answer  # the unit so far: the first clue only
    assert [c["quote"] for c in answer.citations] == [FIRST]


def test_a_capped_summary_keeps_the_running_summary(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document, _ = engine.store_text(session, filename="d.txt", text=_text())
    summary = engine.summarize(session, document, strategy="chain", model=MODEL, caps=Budget(max_tokens=3000))
    assert summary.kind == "summary" and summary.stopped_reason and "token cap" in summary.stopped_reason
    assert "0600" in summary.answer and "2200" not in summary.answer
    assert not any(p.startswith("A long document was too long") for p in doubles.calls)  # no manager call


def test_a_cap_before_the_answering_call_keeps_the_retrieved_evidence(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document, _ = engine.store_text(session, filename="d.txt", text=_text())
    answer = engine.ask(session, document, QUESTION, strategy="bm25", model=MODEL, caps=Budget(max_tokens=50))
    assert answer.stopped_reason and "token cap" in answer.stopped_reason
    assert answer.llm_calls == 0 and not doubles.calls
    assert any(FIRST in c["quote"] for c in answer.citations)
    time_capped = engine.ask(session, document, QUESTION, strategy="tree", model=MODEL, caps=Budget(max_seconds=0))
    assert time_capped.stopped_reason and time_capped.stopped_reason.startswith("time cap reached")
    assert time_capped.llm_calls == 0 and "stopped before any answer" in time_capped.answer


def test_caps_stop_a_job_through_the_cli(env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    path = tmp_path / "book.txt"
    path.write_text(_text())
    args = ["ask", str(path), QUESTION, "--strategy", "chain", "--model", MODEL, "--max-tokens", "3500"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["stopped_reason"].startswith("token cap reached")
    assert "0600" in payload["answer"] and payload["citations"][0]["quote"] == FIRST
    human = runner.invoke(app, args)
    assert human.exit_code == 0, human.output
    assert "stopped early: token cap reached" in human.stdout
    assert "estimated:" in human.stdout
    refused = runner.invoke(app, [*args[:-2], "--max-cost", "-1"])
    assert refused.exit_code == 2


def test_plan_prints_every_strategy_and_the_choice_without_a_model_call(env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    path = tmp_path / "book.txt"
    path.write_text(_text())
    result = runner.invoke(app, ["plan", str(path), QUESTION, "--model", MODEL, "--max-seconds", "600"])
    assert result.exit_code == 0, result.output
    for name in registry.names():
        assert f"│ {name}" in result.stdout
    assert "auto would read with bm25" in result.stdout
    as_json = runner.invoke(app, ["plan", str(path), QUESTION, "--model", MODEL, "--max-tokens", "5000", "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    options = {o["strategy"]: o for o in payload["options"]}
    assert set(options) == set(registry.names())
    assert options["tree"]["calls"] > 10 and options["tree"]["fits"] is False and options["tree"]["over"] == ["tokens"]
    assert options["bm25"]["fits"] is True and payload["strategy"] == "bm25"
    assert payload["caps"]["max_tokens"] == 5000
    assert not doubles.calls


@pytest.fixture
def api(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    """The app on a fresh SQLite database with one key; the broker is unreachable, so no job could be queued."""
    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.storage.db import session_scope

    _configure(monkeypatch)
    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:9/0")
    get_settings.cache_clear()
    with session_scope() as session:
        key, row = create_key(session, "tester")
        document, _ = engine.store_text(session, filename="d.txt", text=_text(), tenant_id=row.tenant_id)
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
        yield client, document.id


def test_dry_run_returns_the_plan_and_starts_no_job(api) -> None:  # type: ignore[no-untyped-def]
    from longread.storage.db import session_scope

    client, document_id = api
    body = {"question": QUESTION, "dry_run": True, "max_cost_usd": 0.05, "max_seconds": 60}
    response = client.post(f"/v1/documents/{document_id}/questions", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] is True and plan["strategy"] == "bm25" and plan["reason"]
    assert {o["strategy"] for o in plan["options"]} == set(registry.names())
    assert plan["caps"] == {"max_cost_usd": 0.05, "max_seconds": 60, "max_tokens": None}
    named = client.post(f"/v1/documents/{document_id}/questions", json={**body, "strategy": "chain"})
    assert named.status_code == 200 and [o["strategy"] for o in named.json()["options"]] == ["chain"]
    assert not doubles.calls
    with session_scope() as session:
        assert not list(session.exec(select(Job)))


@pytest.mark.parametrize("field", ["max_cost_usd", "max_seconds", "max_tokens"])
def test_negative_caps_are_refused(api, field: str) -> None:  # type: ignore[no-untyped-def]
    client, document_id = api
    response = client.post(f"/v1/documents/{document_id}/questions", json={"question": QUESTION, field: -1})
    assert response.status_code == 422, response.text
    summary = client.post(f"/v1/documents/{document_id}/summaries", json={field: -1})
    assert summary.status_code == 422, summary.text
