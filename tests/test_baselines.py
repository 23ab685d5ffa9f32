"""The full / BM25 / dense baselines: units, budget, document order, prompts and citations."""

from __future__ import annotations

import random
import re

import pytest

from longread.agents.baselines import (
    Unit,
    answer_bm25,
    answer_full,
    bm25_evidence,
    dense_evidence,
    select_within_budget,
    split_units,
    summarize_full,
)
from longread.agents.citations import cited_labels
from longread.config import get_settings
from longread.ingest.segment import segment_text
from longread.llm import LLMClient
from longread.tokens import TiktokenCounter, token_counter_for

NEEDLE = "The secret launch code for the orchard project is 7741-Q."
QUESTION = "What is the secret launch code for the orchard project?"
_WORDS = (
    "river stone market winter garden letter engine valley morning paper candle harbor silver meadow "
    "window thunder ladder copper forest signal bridge lantern mirror island season"
).split()

PROMPTS: list[str] = []


def _haystack(n_sentences: int, needle_at: float, seed: int = 7) -> str:
    rng = random.Random(seed)
    sentences = []
    for i in range(n_sentences):
        words = rng.choices(_WORDS, k=rng.randint(8, 16))
        sentences.append(" ".join(words).capitalize() + ".")
        if i % 9 == 8:
            sentences.append("\n\n")
    sentences.insert(int(len(sentences) * needle_at), NEEDLE)
    return re.sub(r" ?\n\n ?", "\n\n", " ".join(sentences))


def cite_needle(messages: list[dict[str, str]]) -> str:
    """Scripted model: cites the passage holding the needle, plus one label that was never shown."""
    prompt = messages[-1]["content"]
    PROMPTS.append(prompt)
    for match in re.finditer(r"\[S(\d+)\] ([^\[]*)", prompt):
        if "7741-Q" in match.group(2):
            return f"The code is 7741-Q [S{match.group(1)}] [S99999]."
    return "The passages do not say."


@pytest.fixture
def counter():
    return token_counter_for("scripted/x")


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("LONGREAD_LLM_CACHE", "false")
    get_settings.cache_clear()
    PROMPTS.clear()
    yield LLMClient(f"scripted/{__name__}.cite_needle", use_cache=False)
    get_settings.cache_clear()


def test_units_stay_inside_segments_and_cover_the_text(counter):
    text = _haystack(300, 0.5)
    segments = segment_text(text, counter, 200)
    for units in ("sentence", "passage", "segment"):
        found = split_units(text, counter, units=units, segments=segments, unit_tokens=60)
        assert found, units
        by_index = {s.index: s for s in segments}
        for u in found:
            seg = by_index[u.segment_index]
            assert seg.start <= u.start < u.end <= seg.end
        covered = "".join(text[u.start : u.end] for u in found)
        assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", text), units
    passages = split_units(text, counter, units="passage", segments=segments, unit_tokens=60)
    assert max(u.n_tokens for u in passages) <= 60 + 8
    assert len(passages) < len(split_units(text, counter, units="sentence", segments=segments))


def test_select_within_budget_skips_too_large_and_keeps_document_order():
    units = [Unit(0, 0, 10, 50), Unit(0, 10, 20, 500), Unit(1, 20, 30, 40), Unit(1, 30, 40, 30)]
    scores = [0.5, 0.9, 0.8, 0.1]
    chosen = select_within_budget(units, scores, 100)
    assert [u.start for u in chosen] == [0, 20]  # the 500-token unit is skipped, order is positional
    assert select_within_budget(units, scores, 0) == []


@pytest.mark.parametrize("finder", [bm25_evidence, dense_evidence], ids=["bm25", "dense"])
@pytest.mark.parametrize("depth", [0.1, 0.8])
def test_retrievers_find_the_needle_within_budget(monkeypatch, counter, finder, depth):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = _haystack(400, depth)
    found = finder(text, QUESTION, counter=counter, budget_tokens=150, units="passage")
    assert any(NEEDLE in text[e.start : e.end] for e in found)
    assert sum(counter.count(text[e.start : e.end]) for e in found) <= 150
    assert [e.start for e in found] == sorted(e.start for e in found)


def test_bm25_returns_nothing_when_no_word_is_shared(counter):
    assert bm25_evidence(_haystack(50, 0.5), "zebra xylophone", counter=counter, budget_tokens=500) == []


def test_cited_labels_forms():
    assert cited_labels("A [S2][S5], B [S1, S3] and [s 7 and S8]. [x] [2] [S2]") == [2, 5, 1, 3, 7, 8]
    assert cited_labels("no citations here") == []


def test_answer_bm25_shows_labelled_passages_and_maps_citations(client):
    text = _haystack(400, 0.6)
    draft = answer_bm25(text, QUESTION, client, budget_tokens=200)
    assert draft.strategy == "bm25"
    assert "7741-Q" in draft.answer
    assert client.usage.calls == 1
    assert draft.read and all(e in draft.read for e in draft.cited)
    assert any(NEEDLE in text[e.start : e.end] for e in draft.cited)
    assert draft.unknown_citations == 1  # [S99999] was never shown
    shown_labels = {int(x) for x in re.findall(r"\[S(\d+)\]", PROMPTS[-1])}
    assert shown_labels == {e.segment_index for e in draft.read}


def test_answer_full_cuts_the_document_at_the_window(client, monkeypatch):
    monkeypatch.setenv("LONGREAD_LLM_CONTEXT_WINDOW", "1500")
    monkeypatch.setenv("LONGREAD_LLM_MAX_OUTPUT_TOKENS", "100")
    get_settings.cache_clear()
    small = LLMClient(client.model, use_cache=False)
    text = _haystack(600, 0.95)
    draft = answer_full(text, QUESTION, small)
    assert draft.read and draft.read[-1].end < len(text) - 100
    assert "cut off" in PROMPTS[-1]
    assert small.counter.count(PROMPTS[-1]) <= 1500 - 100
    assert "do not say" in draft.answer  # the needle near the end was cut away
    assert draft.cited == []
    short = _haystack(30, 0.5)
    whole = answer_full(short, QUESTION, small)
    assert "cut off" not in PROMPTS[-1]
    assert whole.read[0].start == 0 and whole.read[-1].end == len(short)
    assert any(NEEDLE in short[e.start : e.end] for e in whole.cited)


def summarize_first(messages: list[dict[str, str]]) -> str:
    prompt = messages[-1]["content"]
    PROMPTS.append(prompt)
    return "A summary of the opening [S0] and of a passage never shown [S77777]."


def test_summarize_full_fits_the_window_and_checks_labels(monkeypatch):
    monkeypatch.setenv("LONGREAD_LLM_CONTEXT_WINDOW", "1200")
    monkeypatch.setenv("LONGREAD_LLM_MAX_OUTPUT_TOKENS", "100")
    get_settings.cache_clear()
    PROMPTS.clear()
    try:
        client = LLMClient(f"scripted/{__name__}.summarize_first", use_cache=False)
        text = _haystack(500, 0.5)
        draft = summarize_full(text, client)
        assert "at most 400 words" in PROMPTS[-1] and "cut off" in PROMPTS[-1]
        assert client.counter.count(PROMPTS[-1]) <= 1200 - 100
        assert draft.read[0].start == 0 and draft.read[-1].end < len(text)
        assert {e.segment_index for e in draft.cited} == {0}
        assert draft.unknown_citations == 1
    finally:
        get_settings.cache_clear()


def test_document_index_survives_a_new_counter_object(monkeypatch):
    """Counters are re-created when a tokenizer factory registers; the per-document index must not be."""
    import longread.agents.baselines as baselines

    text = _haystack(120, 0.5, seed=11)
    first = token_counter_for("scripted/x")
    baselines.bm25_evidence(text, QUESTION, counter=first, budget_tokens=300)
    second = TiktokenCounter()  # a new object counting the same way
    assert second is not first

    def no_resplit(*_args, **_kwargs):
        raise AssertionError("the document was split into units again")

    monkeypatch.setattr(baselines, "split_units", no_resplit)
    found = baselines.bm25_evidence(text, QUESTION, counter=second, budget_tokens=300)
    assert any(NEEDLE in text[e.start : e.end] for e in found)
