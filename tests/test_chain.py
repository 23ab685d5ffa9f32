"""Chain of agents: reading order, the carried unit, budget arithmetic, resume, query-free summaries."""

from __future__ import annotations

import re

import pytest

from longread import engine
from longread.agents.chain import chain_budget, plan_chunks, stored_steps
from longread.config import get_settings
from longread.llm import LLMClient
from longread.testing import doubles
from longread.testing.factories import document_with_facts
from longread.tokens import token_counter_for

MODEL = "scripted/longread.testing.doubles.reader"


def _configure(monkeypatch, window: int, unit: int = 200, segment: int = 150) -> None:
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", str(window))
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", str(unit))
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", str(segment))
    get_settings.cache_clear()


def _worker_prompts() -> list[str]:
    return [p for p in doubles.calls if p.startswith("You are worker")]


def test_workers_read_in_order_and_carry_the_unit(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1400)
    facts = {
        3: "The first clue is that the captain left at 0600 hours.",
        30: "The second clue is that the captain returned at 2200 hours.",
    }
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(50, facts))
    answer = engine.ask(
        session, document, "At what hours did the captain leave and return?", strategy="chain", model=MODEL
    )
    prompts = _worker_prompts()
    assert len(prompts) >= 4
    first_labels = [int(re.search(r"\[S(\d+)\]", p.split("labelled like [S12]):\n", 1)[1]).group(1)) for p in prompts]
    assert first_labels == sorted(first_labels) and len(set(first_labels)) == len(first_labels)
    steps = [int(re.match(r"You are worker (\d+) of", p).group(1)) for p in prompts]
    assert steps == list(range(1, len(prompts) + 1))
    # the unit written after the first clue is in every later worker's input
    carrier = next(i for i, p in enumerate(prompts) if "0600" in p.split("Notes from the previous workers:", 1)[0])
    for later in prompts[carrier + 1 :]:
        assert "0600" in later.split("Notes from the previous workers:", 1)[1]
    assert "0600" in answer.answer and "2200" in answer.answer
    quotes = " ".join(c["quote"] for c in answer.citations)
    assert facts[3] in quotes and facts[30] in quotes
    assert answer.llm_calls == len(prompts) + 1


def test_budget_never_overflows_the_window(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1200, unit=150)
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(60, {}))
    question = "What did the engineers recommend about the old bridge and its steel beams?"
    client = LLMClient(MODEL)
    budget = chain_budget(client, question)
    assert budget.window == 1200
    engine.ask(session, document, question, strategy="chain", model=MODEL)
    counter = token_counter_for(MODEL)
    prompts = _worker_prompts()
    assert prompts
    for prompt in prompts:
        assert counter.count(prompt) + budget.output_tokens <= budget.window


def test_chunks_pack_whole_segments_and_reject_oversize(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1200)
    from longread.agents.segments import ensure_segments

    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {}))
    segments = ensure_segments(session, document, MODEL)
    chunks = plan_chunks(segments, 400)
    assert chunks[0].first == 0 and chunks[-1].last == segments[-1].index
    assert all(a.last + 1 == b.first for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(c.n_tokens <= 400 for c in chunks)
    with pytest.raises(ValueError, match="exceeds the chunk budget"):
        plan_chunks(segments, 50)


def test_a_window_too_small_is_a_clear_error(monkeypatch, env) -> None:
    _configure(monkeypatch, window=300, unit=200)
    with pytest.raises(ValueError, match="no room"):
        chain_budget(LLMClient(MODEL), "question?")


def test_chain_resumes_from_persisted_steps(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1200)
    document, _ = engine.store_text(
        session, filename="d.txt", text=document_with_facts(50, {20: "The vault code is 9911."})
    )
    question = "What is the vault code?"
    import longread.agents.chain as chain

    real = chain.run_step
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(chain, "run_step", crash_on_third)
    with pytest.raises(RuntimeError):
        engine.ask(session, document, question, strategy="chain", model=MODEL, answer_with=None)
    monkeypatch.setattr(chain, "run_step", real)
    plan = chain.plan_chain(session, document, question, LLMClient(MODEL))
    assert len(stored_steps(session, plan.key)) == 2
    doubles.calls.clear()
    answer = engine.ask(session, document, question, strategy="chain", model=MODEL)
    resumed = [s for s in answer.trace if s.get("resumed")]
    assert len(resumed) == 2
    assert not any("You are worker 1 of" in p or "You are worker 2 of" in p for p in _worker_prompts())
    assert "9911" in answer.answer


def test_query_free_chain_summarises(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1400)
    facts = {2: "The town was founded in 1820.", 40: "The railway arrived in 1871."}
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(50, facts))
    summary = engine.summarize(session, document, strategy="chain", model=MODEL)
    assert summary.kind == "summary" and summary.question is None
    assert "1820" in summary.answer and "1871" in summary.answer
    assert {c["quote"] for c in summary.citations} >= set(facts.values())


def test_deleting_a_document_deletes_its_chain_steps(session, monkeypatch) -> None:
    _configure(monkeypatch, window=1200)
    from sqlmodel import func, select

    from longread.storage.models import ChainStep

    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {}))
    engine.ask(session, document, "What did the choir do?", strategy="chain", model=MODEL)
    assert session.exec(select(func.count()).select_from(ChainStep)).one() > 0
    session.delete(document)
    session.commit()
    assert session.exec(select(func.count()).select_from(ChainStep)).one() == 0


def test_cli_and_workers_read_one_plan_under_a_small_window(session, monkeypatch) -> None:
    """A small model window shrinks the segments a chunk can hold; both paths must read the same chunks.

    The workers used to plan from the default segmentation, which does not fit such a window: they
    failed (or read other chunks) where the CLI succeeded, and the run key did not say which segments
    a stored step had read.
    """
    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:9/0")  # the Celery app is built, never used
    monkeypatch.setenv("LONGREAD_LLM_CONTEXT_WINDOW", "900")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "150")
    get_settings.cache_clear()
    from longread.agents.chain import plan_chain
    from longread.agents.segments import ensure_segments
    from longread.storage.models import LOCAL_TENANT, Job, JobKind
    from longread.workers.tasks.chain import job_plan

    document, _ = engine.store_text(
        session, filename="d.txt", text=document_with_facts(40, {25: "The vault code is 4471."})
    )
    question = "What is the vault code?"
    plan = plan_chain(session, document, question, LLMClient(MODEL))
    assert plan.segment_tokens < get_settings().SEGMENT_TOKENS
    # What the old worker path read with: the default segments, which no chunk of this window holds.
    with pytest.raises(ValueError, match="exceeds the chunk budget"):
        plan_chunks(ensure_segments(session, document, MODEL), plan.budget.chunk_tokens)

    answer = engine.ask(session, document, question, strategy="chain", model=MODEL)
    assert "4471" in answer.answer
    job = Job(tenant_id=LOCAL_TENANT, kind=JobKind.ASK, document_id=document.id, params={"question": question})
    monkeypatch.setenv("LONGREAD_LLM", MODEL)
    get_settings.cache_clear()
    worker_plan = job_plan(session, job, document, LLMClient(MODEL))
    assert worker_plan.key == plan.key and worker_plan.chunks == plan.chunks
    assert len(stored_steps(session, worker_plan.key)) == len(plan.chunks)  # the workers resume, not redo

    # The segment size is part of the key: a smaller configured segment is another run.
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", str(plan.segment_tokens - 20))
    get_settings.cache_clear()
    other = plan_chain(session, document, question, LLMClient(MODEL))
    assert other.budget == plan.budget and other.key != plan.key
