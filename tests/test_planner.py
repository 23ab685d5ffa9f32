"""`auto` as a planner: estimates that match what the strategies then do, choices by quality within caps."""

from __future__ import annotations

import pytest
from sqlmodel import select

from longread import engine
from longread.agents import registry
from longread.agents.planner import (
    FULL_QUALITY,
    LOOKUP,
    WHOLE_TEXT,
    Option,
    choose,
    plan_question,
    quality,
)
from longread.config import get_settings
from longread.llm import LLMClient
from longread.storage.models import ModelSpeed
from longread.testing import doubles
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"
FACT = "The code of the violet harbor is 4721."
QUESTION = "What is the code of the violet harbor?"


def _configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small window and small segments: a 40-paragraph document becomes a multi-segment, multi-level read."""
    for key, value in {
        "LONGREAD_SEGMENT_TOKENS": "150",
        "LONGREAD_LLM_CONTEXT_WINDOW": "2000",
        "LONGREAD_CHAIN_CHUNK_TOKENS": "1400",
        "LONGREAD_CHAIN_UNIT_TOKENS": "200",
        "LONGREAD_LLM_CACHE": "false",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _document(session, seed: int = 0):  # type: ignore[no-untyped-def]
    text = document_with_facts(40, {27: FACT}, seed=seed)
    document, _ = engine.store_text(session, filename=f"d{seed}.txt", text=text)
    return document


# ------------------------------------------------------------------------------------------- choosing


def _options(kind: str, document_tokens: int, window: int = 8192) -> list[Option]:
    """Every registered strategy with its prior, equally fast except the local-model ones."""
    out = []
    for name in registry.names():
        slow = registry.get(name).needs_local_model
        out.append(
            Option(
                name, calls=1, seconds=30.0 if slow else 3.0, quality=quality(name, kind, document_tokens, window, 6000)
            )
        )
    return out


@pytest.mark.parametrize(
    ("question", "tokens", "expected"),
    [
        ("What is the code of the harbor?", 3_000, "full"),
        ("What is the code of the harbor?", 300_000, "bm25"),
        ("Summarize the main themes of the book.", 300_000, "chain"),
        ("How does the captain's attitude evolve throughout the voyage?", 300_000, "chain"),
        ("Summarize the main themes of the book.", 3_000, "full"),
    ],
)
def test_auto_keeps_the_sensible_routes(question: str, tokens: int, expected: str) -> None:
    from longread.agents.router import is_aggregation

    kind = WHOLE_TEXT if is_aggregation(question) else LOOKUP
    chosen, _ = choose(_options(kind, tokens), kind=kind, hosted_model=False, stay_local=False)
    assert chosen.strategy == expected


def test_the_shortlist_leads_where_the_local_model_answers() -> None:
    """Measured on the books suite with the bundled model answering; elsewhere it ties BM25, which is faster."""
    local = quality("shortlist", LOOKUP, 300_000, 8192, 6000, local_answer=True)
    assert local > quality("bm25", LOOKUP, 300_000, 8192, 6000, local_answer=True)
    assert quality("shortlist", LOOKUP, 300_000, 8192, 6000) == quality("bm25", LOOKUP, 300_000, 8192, 6000)


def test_full_beyond_the_window_is_worth_the_share_it_sees() -> None:
    assert quality("full", LOOKUP, 3_000, 8192, 6000) == FULL_QUALITY
    assert quality("full", LOOKUP, 60_000, 8192, 6000) == pytest.approx(FULL_QUALITY * 0.1)


def test_caps_move_the_choice_to_the_best_option_that_fits() -> None:
    options = _options(LOOKUP, 300_000)
    for option in options:
        if option.strategy in ("bm25", "shortlist"):
            option.over = ["cost"]
    chosen, note = choose(options, kind=LOOKUP, hosted_model=False, stay_local=False)
    assert chosen.strategy == "dense"
    assert "bm25, shortlist would exceed the caps" in note
    for option in options:
        option.over = ["seconds"]
    chosen, note = choose(options, kind=LOOKUP, hosted_model=False, stay_local=False)
    assert "no strategy fits the caps" in note


def test_a_hosted_model_many_times_faster_rules_out_local_compute_unless_asked_to_stay_local() -> None:
    def options() -> list[Option]:
        return [Option("bm25", seconds=3.0, quality=0.6), Option("shortlist", seconds=60.0, quality=0.9)]

    hosted = options()
    chosen, _ = choose(hosted, kind=LOOKUP, hosted_model=True, stay_local=False)
    assert chosen.strategy == "bm25"
    assert "20x" in (hosted[1].excluded or "") and "stay local" in (hosted[1].excluded or "")
    assert choose(options(), kind=LOOKUP, hosted_model=True, stay_local=True)[0].strategy == "shortlist"
    assert choose(options(), kind=LOOKUP, hosted_model=False, stay_local=False)[0].strategy == "shortlist"
    close = [Option("bm25", seconds=3.0, quality=0.6), Option("shortlist", seconds=6.0, quality=0.9)]
    assert choose(close, kind=LOOKUP, hosted_model=True, stay_local=False)[0].strategy == "shortlist"


# ------------------------------------------------------------------------------------ estimates vs actuals


def _within_2x(estimate: int, actual: int) -> bool:
    return actual / 2 <= estimate <= actual * 2


def test_estimates_match_what_the_strategies_then_do(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    # Structure alone fixes the calls, before anything is measured.
    cold = plan_question(session, _document(session), QUESTION, LLMClient(MODEL))
    assert {o.strategy: o.calls for o in cold.options}["tree"] > 10
    assert not doubles.calls
    # A deployment with history: one earlier document read by every strategy measures how much this model writes.
    warm = _document(session, seed=1)
    for name in ("tree", "chain", "full"):
        engine.ask(session, warm, QUESTION, strategy=name, model=MODEL)
    assert session.exec(select(ModelSpeed).where(ModelSpeed.model == MODEL, ModelSpeed.kind == "call")).one().n > 0

    document = _document(session)
    for name in ("full", "bm25", "dense", "tree", "chain"):
        plan = plan_question(session, document, QUESTION, LLMClient(MODEL), strategy=name)
        option = plan.option(name)
        assert option is not None and option.excluded is None
        cold_calls = next(o.calls for o in cold.options if o.strategy == name)
        answer = engine.ask(session, document, QUESTION, strategy=name, model=MODEL)
        actual_tokens = answer.prompt_tokens + answer.completion_tokens
        assert _within_2x(cold_calls, answer.llm_calls), (name, cold_calls, answer.llm_calls)
        assert _within_2x(option.calls, answer.llm_calls), (name, option.calls, answer.llm_calls)
        assert _within_2x(option.prompt_tokens, answer.prompt_tokens), (
            name,
            option.prompt_tokens,
            answer.prompt_tokens,
        )
        assert _within_2x(option.tokens, actual_tokens), (name, option.tokens, actual_tokens)
        # The estimate and the actuals are stored side by side with the answer.
        assert answer.plan is not None and answer.plan["strategy"] == name
        assert answer.plan["actual"]["calls"] == answer.llm_calls


def test_a_stored_tree_costs_only_the_walk(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document = _document(session)
    before = plan_question(session, document, QUESTION, LLMClient(MODEL), strategy="tree").option("tree")
    engine.ask(session, document, QUESTION, strategy="tree", model=MODEL)
    after = plan_question(session, document, QUESTION, LLMClient(MODEL), strategy="tree").option("tree")
    assert before is not None and after is not None
    assert not any(step.get("parallel") for step in after.steps)
    assert after.calls < before.calls / 5
    assert after.note == "the tree is stored"


def test_speeds_are_measured_after_each_run(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document = _document(session)
    answer = engine.ask(session, document, QUESTION, strategy="chain", model=MODEL)
    rows = {r.kind: r for r in session.exec(select(ModelSpeed).where(ModelSpeed.model == MODEL))}
    assert rows["call"].n == answer.llm_calls
    assert rows["call"].prompt_tokens == answer.prompt_tokens
    assert rows["call"].seconds > 0
    assert sum(r.n for kind, r in rows.items() if kind.startswith("fill:")) == answer.llm_calls


def test_auto_stores_its_choice_and_every_estimate(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _configure(monkeypatch)
    document = _document(session)
    answer = engine.ask(session, document, QUESTION, model=MODEL)
    assert answer.plan is not None
    assert answer.strategy == answer.plan["strategy"] == "bm25"
    assert "look-up question" in answer.strategy_reason and "estimated 1 calls" in answer.strategy_reason
    assert {o["strategy"] for o in answer.plan["options"]} == set(registry.names())
    assert answer.plan["actual"]["calls"] == answer.llm_calls == 1


def test_a_stored_retrieval_index_makes_the_shortlist_cheaper(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from longread.agents.shortlist.index import ensure_index

    _configure(monkeypatch)
    document = _document(session)
    client = LLMClient(MODEL)
    before = plan_question(session, document, QUESTION, client, strategy="shortlist").option("shortlist")
    settings = get_settings()
    unit_tokens = settings.SHORTLIST_UNIT_TOKENS or settings.RETRIEVAL_UNIT_TOKENS
    segments = registry.ReadRequest(session, document, QUESTION, client, lambda *_: None).segments()
    ensure_index(session, document, segments, client.counter, unit_tokens)
    after = plan_question(session, document, QUESTION, client, strategy="shortlist").option("shortlist")
    assert before is not None and after is not None
    assert after.note == "the retrieval index is stored" and before.note != after.note
    assert after.seconds < before.seconds
    assert after.calls == before.calls == 1
    assert not doubles.calls
