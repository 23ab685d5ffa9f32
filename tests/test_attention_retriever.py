"""Attention retriever on a tiny randomly initialised Gemma 3 (fast): slice exactness, calibration,
smoothing, carried-cache re-selection, exact evidence offsets and the strategy entry point."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from longread.agents.attention import retriever as retriever_mod  # noqa: E402
from longread.agents.attention.config import attention_config, global_layers, resolve_layers  # noqa: E402
from longread.agents.attention.retriever import pack_chunks, retrieve, tokenize_document  # noqa: E402
from longread.agents.attention.scoring import build_layout, raw_token_scores, smooth, token_scores  # noqa: E402
from longread.agents.attention.slice import SliceCapture, capturing, slice_attention  # noqa: E402
from longread.local_model import LocalModel, with_cache  # noqa: E402

FILLER = [
    "The farmer walked to the bridge in the morning.",
    "A teacher looked at the old library after lunch.",
    "The baker repaired a broken clock before the storm.",
    "My neighbour painted the wooden fence near the river.",
    "The mayor visited the train station during the festival.",
]
NEEDLE = "The secret code of the violet harbor is 7392."
EXTRA = (
    "Read the following text and find the sentences that answer question at end Question Answer N/A "
    "What is secret code violet harbor ? : / . , Evidence colour door painted green"
)


def tiny_tokenizer(corpus: str) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for word in re.findall(r"\w+|[^\w\s]", corpus + " " + EXTRA):
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_model(vocab_size: int, seed: int = 0) -> Any:
    """Gemma 3 shape in miniature: sliding and global layers, GQA (4 query / 2 KV heads), q/k norms."""
    torch.manual_seed(seed)
    config = transformers.Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=4096,
        query_pre_attn_scalar=16,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return transformers.Gemma3ForCausalLM(config).eval()


def haystack(n: int = 60, depth: float = 0.5) -> str:
    sentences = [FILLER[i % len(FILLER)] for i in range(n)]
    sentences.insert(int(depth * n), NEEDLE)
    return "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5))


@pytest.fixture(scope="module")
def lm() -> LocalModel:
    text = haystack()
    tokenizer = tiny_tokenizer(text + " " + " ".join(FILLER))
    model = tiny_model(len(tokenizer) + 4)
    return LocalModel("tiny", model, tokenizer, "cpu", torch.float32, "test", 0.0)


def eager_rows(model: Any, ids: Any, n_rows: int) -> list[Any]:
    """Full eager attention matrices, last n_rows rows (the reference the slice must equal)."""
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = model(ids, output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    return [a[:, :, -n_rows:, :].float() for a in out.attentions]


def test_slice_equals_rows_of_full_eager_attention(lm: LocalModel) -> None:
    from transformers.cache_utils import DynamicCache

    model = lm.model
    torch.manual_seed(1)
    ids = torch.randint(4, model.config.vocab_size, (1, 48))
    n_rows = 7
    reference = eager_rows(model, ids, n_rows)
    capture = SliceCapture(layers={0, 1, 2, 3}, keep_rows=True)
    with torch.inference_mode(), slice_attention(model):
        cache = DynamicCache()
        model.model(ids[:, :-n_rows], use_cache=True, **with_cache(model.model, cache))
        with capturing(capture):
            model.model(ids[:, -n_rows:], use_cache=True, **with_cache(model.model, cache))
    assert model.config._attn_implementation == "sdpa"  # restored after scoring
    for layer in range(4):  # sliding (window 16 < 48 keys) and global layers alike
        assert capture.rows[layer].shape == reference[layer].shape
        torch.testing.assert_close(capture.rows[layer], reference[layer], atol=1e-5, rtol=1e-4)
    # Heads subset: the chosen heads' rows, not a recomputation with other heads.
    subset = SliceCapture(layers={3}, heads={3: [1, 2]}, keep_rows=True)
    with torch.inference_mode(), slice_attention(model):
        cache = DynamicCache()
        model.model(ids[:, :-n_rows], use_cache=True, **with_cache(model.model, cache))
        with capturing(subset):
            model.model(ids[:, -n_rows:], use_cache=True, **with_cache(model.model, cache))
    torch.testing.assert_close(subset.rows[3], reference[3][:, [1, 2]], atol=1e-5, rtol=1e-4)


def test_batched_scores_equal_per_chunk_eager_reference(lm: LocalModel) -> None:
    """Padding a batch of unequal chunks changes nothing: each row equals its own eager computation."""
    layout = build_layout(lm.tokenizer, "What is the secret code of the violet harbor?")
    doc = tokenize_document(lm.tokenizer, haystack())
    contexts = [doc.ids[:40], doc.ids[40:65]]
    config = attention_config(lm.model.config, "cpu", chunk_tokens=64, layers="1,3", calibrate=False)
    batched = raw_token_scores(lm, layout, contexts, config)
    for ctx, got in zip(contexts, batched, strict=True):
        ids = torch.tensor([layout.head + ctx + layout.query])
        rows = eager_rows(lm.model, ids, len(layout.query))
        head = len(layout.head)
        expected = sum(rows[layer].sum(dim=1).mean(dim=1)[0, head : head + len(ctx)] for layer in (1, 3))
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_layers_past_the_deepest_scoring_layer_are_not_run_and_the_scores_do_not_change(lm: LocalModel) -> None:
    """Scoring with layer 1 runs layers 0-1 only, gives the eager reference's layer-1 attention, and
    leaves the model whole afterwards."""
    layout = build_layout(lm.tokenizer, "What is the secret code of the violet harbor?")
    doc = tokenize_document(lm.tokenizer, haystack())
    contexts = [doc.ids[:40], doc.ids[40:65]]
    config = attention_config(lm.model.config, "cpu", chunk_tokens=64, layers="1", calibrate=False)
    layers = lm.model.model.layers
    ran: list[int] = []
    hooks = [layer.register_forward_hook(lambda *_, i=i: ran.append(i)) for i, layer in enumerate(layers)]
    try:
        scored = raw_token_scores(lm, layout, contexts, config)
    finally:
        for hook in hooks:
            hook.remove()
    assert set(ran) == {0, 1}
    assert lm.model.model.layers is layers and len(layers) == 4
    for ctx, got in zip(contexts, scored, strict=True):
        ids = torch.tensor([layout.head + ctx + layout.query])
        rows = eager_rows(lm.model, ids, len(layout.query))
        head = len(layout.head)
        torch.testing.assert_close(got, rows[1].sum(dim=1).mean(dim=1)[0, head : head + len(ctx)], atol=1e-5, rtol=1e-4)


def test_calibration_subtracts_the_null_query(lm: LocalModel) -> None:
    layout = build_layout(lm.tokenizer, "What is the secret code of the violet harbor?")
    doc = tokenize_document(lm.tokenizer, haystack())
    ctx = [doc.ids[:50]]
    config = attention_config(lm.model.config, "cpu", chunk_tokens=64, layers="last")
    calibrated = raw_token_scores(lm, layout, ctx, config)[0]
    question = raw_token_scores(lm, layout, ctx, config, calibrate=False)[0]
    null = raw_token_scores(lm, layout, ctx, config, query=layout.null, calibrate=False)[0]
    assert layout.null != layout.query
    assert not torch.allclose(question, null)
    torch.testing.assert_close(calibrated, question - null, atol=1e-6, rtol=1e-5)
    assert calibrated.sum().abs() < question.sum()  # both rows sum to ~1 over the same keys


def test_smoothing_is_a_centred_width_8_box(lm: LocalModel) -> None:
    spike = torch.zeros(20)
    spike[10] = 1.0
    out = smooth(spike, 8)
    assert out.shape == spike.shape
    assert torch.equal(out.nonzero().flatten(), torch.arange(7, 15))  # 8 neighbours share the spike
    assert float(out.sum()) == pytest.approx(8.0)
    ramp = torch.arange(12, dtype=torch.float32)
    assert float(smooth(ramp, 8)[5]) == pytest.approx(float(ramp[1:9].sum()))
    assert torch.equal(smooth(ramp, 1), ramp)
    # token_scores is the smoothed raw score.
    layout = build_layout(lm.tokenizer, "What is the secret code?")
    doc = tokenize_document(lm.tokenizer, haystack())
    config = attention_config(lm.model.config, "cpu", chunk_tokens=64)
    raw = raw_token_scores(lm, layout, [doc.ids[:30]], config)[0]
    torch.testing.assert_close(token_scores(lm, layout, [doc.ids[:30]], config)[0], smooth(raw, 8))


def test_units_have_exact_offsets_and_token_runs(lm: LocalModel) -> None:
    text = haystack(40, 0.3)
    doc = tokenize_document(lm.tokenizer, text, unit_max_tokens=6)
    assert doc.units and doc.units[0].tok_start == 0 and doc.units[-1].tok_end == len(doc.ids)
    for a, b in zip(doc.units, doc.units[1:], strict=False):
        assert a.tok_end == b.tok_start and a.end <= b.start
    at = text.index(NEEDLE)
    pieces = [u for u in doc.units if at <= u.start and u.end <= at + len(NEEDLE)]
    assert len(pieces) == 2  # the 11-token needle cut at 6 tokens, each piece an exact span
    assert text[pieces[0].start : pieces[1].end] == NEEDLE
    assert all(u.n_tokens <= 6 for u in doc.units)
    chunks = pack_chunks(doc.units, 20)
    assert [u for c in chunks for u in c] == doc.units
    assert all(sum(u.n_tokens for u in c) <= 20 for c in chunks)


@pytest.fixture
def scripted_scores(monkeypatch: pytest.MonkeyPatch, lm: LocalModel) -> Iterator[dict[str, Any]]:
    """Replace the model's scores with ones keyed by word, to test the carry logic deterministically."""
    seen: dict[str, Any] = {"contexts": []}
    weights: dict[int, float] = {}
    seen["weights"] = weights

    def fake(_lm: Any, _layout: Any, contexts: list[list[int]], _config: Any, **_: Any) -> list[Any]:
        seen["contexts"].extend(contexts)
        return [torch.tensor([weights.get(t, 0.0) for t in ctx]) for ctx in contexts]

    monkeypatch.setattr(retriever_mod, "token_scores", fake)
    yield seen


def test_carried_cache_is_placed_before_each_chunk_and_reselected(lm: LocalModel, scripted_scores: dict) -> None:
    text = " ".join(
        ["The farmer walked to the bridge in the morning."] * 6
        + [NEEDLE]
        + ["The baker repaired a broken clock before the storm."] * 6
        + ["The mayor visited the train station during the festival."] * 6
    )
    vocab = lm.tokenizer.get_vocab()
    weights = scripted_scores["weights"]
    weights[vocab["farmer"]] = 1.0  # a decent sentence early on
    weights[vocab["harbor"]] = 3.0  # the best sentence, in the middle
    doc = tokenize_document(lm.tokenizer, text)
    needle_unit = next(u for u in doc.units if text[u.start : u.end] == NEEDLE)
    config = attention_config(lm.model.config, "cpu", chunk_tokens=20, carry_tokens=12, evidence_tokens=12)
    result = retrieve(lm, text, "What is the secret code?", config)
    contexts = scripted_scores["contexts"]
    assert result.n_chunks == len(contexts) >= 5
    farmer_ids = doc.ids[doc.units[0].tok_start : doc.units[0].tok_end]
    needle_ids = doc.ids[needle_unit.tok_start : needle_unit.tok_end]
    # Chunk 1 starts with the carried farmer sentence; once the needle is seen it replaces it
    # (re-selection, carry budget = one sentence) and leads every later chunk.
    assert contexts[1][: len(farmer_ids)] == farmer_ids
    first_after = next(i for i, c in enumerate(contexts) if c[: len(needle_ids)] == needle_ids)
    assert all(c[: len(needle_ids)] == needle_ids for c in contexts[first_after:])
    assert all(c[: len(farmer_ids)] != farmer_ids for c in contexts[first_after:])
    assert result.carried == [needle_unit.index]
    assert [text[s.unit.start : s.unit.end] for s in result.evidence] == [NEEDLE]
    assert [t["carried"] for t in result.trace][:2] == [0, 1]


def test_multi_hop_expands_the_query_with_found_evidence(
    lm: LocalModel, scripted_scores: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join(
        ["The farmer walked to the bridge in the morning."] * 4
        + [NEEDLE]
        + ["The baker repaired a broken clock before the storm."] * 4
    )
    vocab = lm.tokenizer.get_vocab()
    scripted_scores["weights"][vocab["harbor"]] = 2.0
    questions: list[str] = []
    real_read = retriever_mod.AttentionRetriever.read

    def spy(self: Any, doc: Any, question: str, **kwargs: Any) -> Any:
        questions.append(question)
        return real_read(self, doc, question, **kwargs)

    monkeypatch.setattr(retriever_mod.AttentionRetriever, "read", spy)
    config = attention_config(lm.model.config, "cpu", chunk_tokens=30, carry_tokens=12, evidence_tokens=30)
    result = retrieve(lm, text, "What is the code?", config, multi_hop=True)
    assert len(questions) == 2  # the second round finds nothing new and stops
    assert questions[1].startswith("What is the code?") and NEEDLE in questions[1]
    assert any(t["hop"] == 1 for t in result.trace)
    assert NEEDLE in [text[s.unit.start : s.unit.end] for s in result.evidence]


def test_layer_resolution_uses_global_layers_only() -> None:
    config = tiny_model(64).config
    assert global_layers(config) == [1, 3]
    assert resolve_layers("last", config) == ((3,), None)
    assert resolve_layers("all", config) == ((1, 3), None)
    assert resolve_layers("band", config)[0] in ((1,), (3,))
    assert resolve_layers("1,-1", config) == ((1, 3), None)
    assert resolve_layers("3:0,3:2,1", config) == ((3, 1), {3: [0, 2], 1: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="ATTENTION_LAYERS"):
        resolve_layers("7", config)
    with pytest.raises(ValueError, match="ATTENTION_LAYERS"):
        resolve_layers("3:9", config)


def test_real_scoring_path_end_to_end_on_tiny_model(lm: LocalModel) -> None:
    """No mocks: every chunk is scored, progress is reported per chunk, evidence fits the budget."""
    text = haystack(80, 0.7)
    events: list[tuple[str, int, int]] = []
    config = attention_config(lm.model.config, "cpu", chunk_tokens=48, evidence_tokens=40, batch_size=3)
    result = retrieve(
        lm,
        text,
        "What is the secret code of the violet harbor?",
        config,
        progress=lambda s, d, n: events.append((s, d, n)),
    )
    assert result.n_chunks >= 5
    assert events[0] == ("attention", 0, result.n_chunks) and events[-1][1] == result.n_chunks
    assert len(events) == 1 + -(-result.n_chunks // 3)  # one event per batch of 3 chunks
    assert 0 < sum(s.unit.n_tokens for s in result.evidence) <= 40
    starts = [s.unit.start for s in result.evidence]
    assert starts == sorted(starts)
    for scored in result.evidence:
        assert text[scored.unit.start : scored.unit.end].strip() == text[scored.unit.start : scored.unit.end]
    assert {t["chunk"] for t in result.trace} == set(range(result.n_chunks))


@pytest.fixture
def tiny_local(lm: LocalModel, monkeypatch: pytest.MonkeyPatch, env: Any) -> Iterator[LocalModel]:
    """Make the tiny model the configured LOCAL_MODEL for the strategy and the local provider."""
    from longread import local_model
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "tiny-test-model")
    get_settings.cache_clear()
    monkeypatch.setitem(local_model._models, "tiny-test-model", lm)
    yield lm


def cite_second(messages: list[dict[str, str]]) -> str:
    """Scripted hosted model: cites passage 2 (and an unknown 99)."""
    assert "[1]" in messages[-1]["content"] and "Question:" in messages[-1]["content"]
    return "The code is 7392 [2] [99]."


def test_read_with_attention_hosted_answer_cites_exact_spans(tiny_local: LocalModel) -> None:
    from longread.agents.attention.strategy import read_with_attention
    from longread.ingest import segment_text
    from longread.llm import Usage
    from longread.tokens import HFTokenCounter

    text = haystack(60, 0.4)
    segments = segment_text(text, HFTokenCounter(tiny_local.tokenizer), 40)
    usage = Usage()
    draft = read_with_attention(
        text,
        "What is the secret code of the violet harbor?",
        segments=segments,
        answer_model="scripted/tests.test_attention_retriever.cite_second",
        usage=usage,
        evidence_tokens=60,
    )
    assert draft.strategy == "attention" and "7392" in draft.answer
    assert len(draft.read) >= 2 and draft.cited == [draft.read[1]]
    assert draft.unknown_citations == 1
    for ev in draft.read:
        seg = next(s for s in segments if s.index == ev.segment_index)
        assert seg.start <= ev.start < ev.end <= seg.end
    assert draft.trace[-1]["stage"] == "attention summary" and usage.calls == 1


def test_read_with_attention_local_answer(tiny_local: LocalModel) -> None:
    from longread.agents.attention.strategy import read_with_attention
    from longread.ingest import segment_text
    from longread.llm import Usage
    from longread.tokens import HFTokenCounter

    text = haystack(30, 0.5)
    segments = segment_text(text, HFTokenCounter(tiny_local.tokenizer), 40)
    usage = Usage()
    draft = read_with_attention(
        text, "What is the secret code?", segments=segments, answer_model=None, usage=usage, evidence_tokens=40
    )
    assert draft.read and draft.cited
    assert all(c in draft.read for c in draft.cited)
    assert usage.calls == 1 and usage.prompt_tokens > 0


def test_carry_selection_respects_token_budget_and_unit_cap() -> None:
    from longread.agents.attention.retriever import Unit, _select

    units = [Unit(i, 10 * i, 10 * i + 5, 2 * i, 2 * i + (5 if i == 0 else 2)) for i in range(10)]
    candidates = [(u, float(i)) for i, u in enumerate(units)]
    assert [u.index for u, _ in _select(candidates, budget=100, max_units=3)] == [9, 8, 7]  # best first
    assert [u.index for u, _ in _select(candidates, budget=5, max_units=8)] == [9, 8]  # 2 + 2 tokens
    # A unit too large for what is left is skipped, not the end of the selection.
    big_first = [(units[0], 100.0)] + candidates[1:]
    assert [u.index for u, _ in _select(big_first, budget=6, max_units=8)] == [0]
    assert [u.index for u, _ in _select(big_first, budget=7, max_units=8)] == [0, 9]
