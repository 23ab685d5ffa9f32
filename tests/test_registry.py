"""The strategy registry: one declaration per strategy, and an unknown name refused everywhere."""

from __future__ import annotations

import pytest

from longread.agents import registry
from longread.evaluation.report import STRATEGY_ORDER
from longread.evaluation.runner import STRATEGIES as EVAL_STRATEGIES
from longread.evaluation.runner import parse_strategies
from longread.workers.celery_app import queue_for


def test_every_consumer_lists_the_registry() -> None:
    names = registry.names()
    assert len(set(names)) == len(names)
    assert EVAL_STRATEGIES == (*names, "auto")
    assert STRATEGY_ORDER == (*names, "auto")
    assert set(registry.summary_choices()) == {"auto"} | {s.name for s in registry.STRATEGIES if s.summarise}
    assert [m.value for m in registry.QuestionStrategy] == list(registry.question_choices())


def test_unknown_names_are_errors_not_fallbacks() -> None:
    with pytest.raises(registry.UnknownStrategy, match="unknown strategy 'magic'"):
        registry.get("magic")
    with pytest.raises(registry.UnknownStrategy):
        registry.check_question_strategy("magic")
    with pytest.raises(registry.UnknownStrategy, match="summaries use"):
        registry.check_summary_strategy("bm25")
    with pytest.raises(ValueError, match="unknown strategies"):
        parse_strategies("tree,magic")
    with pytest.raises(registry.UnknownStrategy):
        queue_for("openai/gpt-4o-mini", "magic")


def test_queue_follows_the_declaration() -> None:
    assert queue_for("openai/gpt-4o-mini", "attention") == "local"
    assert queue_for("openai/gpt-4o-mini", "tree") == "default"
    assert queue_for("local/default", "tree") == "local"


def test_engine_refuses_unknown_strategy(session, env) -> None:
    from longread import engine
    from longread.testing.factories import document_with_facts

    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(20, {}))
    with pytest.raises(registry.UnknownStrategy):
        engine.ask(session, document, "What?", strategy="magic")
    with pytest.raises(registry.UnknownStrategy):
        engine.summarize(session, document, strategy="attention")


def test_api_schema_enumerates_the_registry() -> None:
    from fastapi.testclient import TestClient

    from longread.api.main import create_app

    schema = TestClient(create_app()).get("/openapi.json").json()
    enum = schema["components"]["schemas"]["QuestionStrategy"]["enum"]
    assert enum == list(registry.question_choices())
