"""`auto` picks a strategy from document length, model window and question type, and says why."""

from __future__ import annotations

import pytest

from longread import engine
from longread.agents.router import choose_strategy
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"


@pytest.mark.parametrize(
    ("question", "tokens", "local", "expected"),
    [
        ("What is the code of the harbor?", 3_000, True, "full"),
        ("What is the code of the harbor?", 300_000, True, "attention"),
        ("What is the code of the harbor?", 300_000, False, "tree"),
        ("Summarize the main themes of the book.", 300_000, True, "chain"),
        ("How does the captain's attitude evolve throughout the voyage?", 300_000, False, "chain"),
    ],
)
def test_choose_strategy(question: str, tokens: int, local: bool, expected: str) -> None:
    route = choose_strategy(question, tokens, 8192, local_available=local)
    assert route.strategy == expected
    assert route.reason


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
