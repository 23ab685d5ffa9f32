"""An attention scan stopped mid-document resumes from its saved chunk and ends as an unbroken scan would:
the retriever on the tiny Gemma 3 with the database store, and a question read through `engine.ask`."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from longread.agents.attention import retriever as retriever_mod  # noqa: E402
from longread.agents.attention.config import attention_config  # noqa: E402
from longread.agents.attention.retriever import Retrieval, retrieve  # noqa: E402
from longread.local_model import LocalModel  # noqa: E402
from tests.test_attention_retriever import FILLER, haystack, tiny_model, tiny_tokenizer  # noqa: E402

QUESTION = "What is the secret code of the violet harbor?"


@pytest.fixture(scope="module")
def lm() -> LocalModel:
    """The tiny Gemma 3 of the retriever's tests (random weights: the scores are real, the reading is not)."""
    tokenizer = tiny_tokenizer(haystack() + " " + " ".join(FILLER))
    return LocalModel("tiny", tiny_model(len(tokenizer) + 4), tokenizer, "cpu", torch.float32, "test", 0.0)


@pytest.fixture
def tiny_local(lm: LocalModel, monkeypatch: pytest.MonkeyPatch, env: Any) -> LocalModel:
    """The tiny model as the configured LOCAL_MODEL."""
    from longread import local_model
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "tiny-test-model")
    get_settings.cache_clear()
    monkeypatch.setitem(local_model._models, "tiny-test-model", lm)
    return lm


class Crash(Exception):
    """Stands for the worker dying: nothing after it runs."""


def _scored_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunks the model scores (the real scorer runs)."""
    counted: list[int] = []
    real = retriever_mod.token_scores

    def counting(model: Any, layout: Any, contexts: list[Any], config: Any) -> Any:
        counted.append(len(contexts))
        return real(model, layout, contexts, config)

    monkeypatch.setattr(retriever_mod, "token_scores", counting)
    return counted


def _document(session: Any, text: str) -> str:
    from longread.engine import store_text

    document, _ = store_text(session, filename="harbor.txt", text=text)
    return document.id


def _same(a: Retrieval, b: Retrieval) -> None:
    assert [(s.unit.index, s.score, s.z) for s in a.evidence] == [(s.unit.index, s.score, s.z) for s in b.evidence]
    assert a.carried == b.carried and a.trace == b.trace
    assert (a.n_chunks, a.scored_tokens) == (b.n_chunks, b.scored_tokens)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_scan_stopped_after_some_chunks_resumes_there_and_ends_as_an_unbroken_one(
    lm: LocalModel, session: Any, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    from longread.storage.scans import ScanCheckpoints

    text = haystack(80, 0.8)
    config = attention_config(lm.model.config, "cpu", chunk_tokens=48, evidence_tokens=40, batch_size=batch_size)
    unbroken = retrieve(lm, text, QUESTION, config)
    assert unbroken.n_chunks >= 6
    stop_at = 2 * batch_size if batch_size > 1 else 3

    store = ScanCheckpoints(session, _document(session, text), "reading-1")

    def dies(stage: str, done: int, total: int) -> None:
        if done == stop_at:
            raise Crash

    with pytest.raises(Crash):
        retrieve(lm, text, QUESTION, config, progress=dies, store=store)

    counted = _scored_chunks(monkeypatch)
    events: list[tuple[str, int, int]] = []
    resumed = retrieve(
        lm,
        text,
        QUESTION,
        config,
        progress=lambda *e: events.append(e),
        store=ScanCheckpoints(session, "", "reading-1"),
    )
    assert events[0] == ("attention", stop_at, unbroken.n_chunks)
    assert sum(counted) == unbroken.n_chunks - stop_at  # the chunks before the stop are not scored again
    _same(resumed, unbroken)

    other = ScanCheckpoints(session, "", "reading-2")  # another reading's key finds nothing saved
    assert other.load(retriever_mod.pass_key("attention", 0, QUESTION)) is None
    store.clear()
    assert store.load(retriever_mod.pass_key("attention", 0, QUESTION)) is None


def test_a_multi_hop_scan_stopped_in_its_second_pass_replays_the_first(
    lm: LocalModel, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.storage.scans import ScanCheckpoints

    text = haystack(60, 0.3)
    config = attention_config(lm.model.config, "cpu", chunk_tokens=48, evidence_tokens=40, multi_hop_rounds=2)
    unbroken = retrieve(lm, text, QUESTION, config, multi_hop=True)
    store = ScanCheckpoints(session, _document(session, text), "hops")

    def dies(stage: str, done: int, total: int) -> None:
        if stage != "attention" and done == 2:
            raise Crash

    with pytest.raises(Crash):
        retrieve(lm, text, QUESTION, config, progress=dies, store=store, multi_hop=True)
    counted = _scored_chunks(monkeypatch)
    resumed = retrieve(lm, text, QUESTION, config, store=store, multi_hop=True)
    first_pass = unbroken.n_chunks // 2
    assert sum(counted) == unbroken.n_chunks - first_pass - 2
    _same(resumed, unbroken)


def test_saves_never_move_a_pass_backwards(session: Any) -> None:
    from longread.storage.scans import ScanCheckpoints

    store = ScanCheckpoints(session, _document(session, haystack(10, 0.5)), "reading")
    store.save("pass", 3, 9, {"n": 3})
    store.save("pass", 2, 9, {"n": 2})  # an older attempt's late save
    assert store.load("pass") == (3, {"n": 3})
    store.save("pass", 5, 9, {"n": 5})
    assert store.load("pass") == (5, {"n": 5})


def test_a_question_killed_mid_scan_is_answered_from_the_saved_chunks(
    tiny_local: LocalModel, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the engine, as a worker reads it: the second attempt scores only the chunks left, stores one
    answer, and leaves no saved scan behind."""
    from sqlmodel import select

    from longread import engine
    from longread.storage.models import Answer, AttentionScan, Document

    monkeypatch.setenv("LONGREAD_ATTENTION_CHUNK_TOKENS", "48")
    from longread.config import get_settings

    get_settings.cache_clear()
    text = haystack(80, 0.6)
    document = session.get(Document, _document(session, text))
    answer_with = "scripted/tests.test_attention_retriever.cite_second"

    def dies(stage: str, done: int, total: int) -> None:
        if stage == "attention" and done == 2:
            raise Crash

    with pytest.raises(Crash):
        engine.ask(session, document, QUESTION, strategy="attention", answer_with=answer_with, progress=dies)
    session.rollback()
    saved = list(session.exec(select(AttentionScan)))
    assert [row.next_chunk for row in saved] == [2] and saved[0].total > 2

    counted = _scored_chunks(monkeypatch)
    answer = engine.ask(session, document, QUESTION, strategy="attention", answer_with=answer_with)
    assert sum(counted) == saved[0].total - 2
    assert "7392" in answer.answer
    assert list(session.exec(select(AttentionScan))) == []
    assert len(list(session.exec(select(Answer).where(Answer.document_id == document.id)))) == 1
