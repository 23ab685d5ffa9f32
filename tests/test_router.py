"""`auto` keeps the sensible routes: a document that fits the window is read whole, a whole-text question by the chain.

The planner's choice over estimates and priors is tested in test_planner.py."""

from __future__ import annotations

from longread import engine
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"


def test_auto_reads_a_short_document_whole_and_says_why(session) -> None:
    fact = "The code of the violet harbor is 4721."
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(6, {3: fact}))
    answer = engine.ask(session, document, "What is the code of the violet harbor?", model=MODEL)
    assert answer.strategy == "full"
    assert "fits" in answer.strategy_reason


def test_auto_routes_a_whole_text_question_over_a_long_document_to_the_chain(session, monkeypatch) -> None:
    monkeypatch.setenv("LONGREAD_LLM_CONTEXT_WINDOW", "2000")
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "2000")
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "300")
    from longread.config import get_settings

    get_settings.cache_clear()
    document, _ = engine.store_text(
        session, filename="d.txt", text=document_with_facts(60, {10: "The town was founded in 1820."})
    )
    answer = engine.ask(session, document, "Summarize what happened throughout the year.", model=MODEL)
    assert answer.strategy == "chain"
    assert "whole text" in answer.strategy_reason
