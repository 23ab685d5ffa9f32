"""Random-weight models of real shapes, for speed and memory runs where no weights can be fetched."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from longread.agents.attention.config import attention_config  # noqa: E402
from longread.agents.attention.retriever import retrieve  # noqa: E402
from longread.testing.random_weights import SHAPES, random_weight_model, trained_tokenizer  # noqa: E402

TEXT = " ".join(
    f"Paragraph {i} tells of the harbour, the ledger and the northern valley in the winter of year {1800 + i}."
    for i in range(80)
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return trained_tokenizer([TEXT], vocab_size=600)


def test_the_trained_tokenizer_round_trips_text_with_offsets_and_pads(tokenizer) -> None:  # type: ignore[no-untyped-def]
    piece = TEXT[:500]
    encoded = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
    assert tokenizer.decode(encoded["input_ids"]) == piece
    assert encoded["offset_mapping"][-1][1] == len(piece)
    assert len(encoded["input_ids"]) < len(piece) / 2  # it learned the text's words, not bytes
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None


def test_a_random_weight_model_keeps_the_real_shape_and_vocabulary(tokenizer) -> None:  # type: ignore[no-untyped-def]
    lm = random_weight_model("tiny-llama", tokenizer, "cpu")
    config = lm.model.config
    assert config.num_hidden_layers == SHAPES["tiny-llama"]["num_hidden_layers"]
    assert config.vocab_size == len(tokenizer)
    assert lm.device == "cpu" and lm.name == "random/tiny-llama"


def test_the_retriever_reads_a_document_with_a_random_weight_model(tokenizer) -> None:  # type: ignore[no-untyped-def]
    lm = random_weight_model("tiny-llama", tokenizer, "cpu")
    config = attention_config(lm.model.config, lm.device, chunk_tokens=256, carry_tokens=32)
    result = retrieve(lm, TEXT, "In which year did the harbour freeze?", config)
    assert result.n_tokens > 500
    assert result.evidence
    assert all(0 <= s.unit.start < s.unit.end <= len(TEXT) for s in result.evidence)


def test_an_unknown_shape_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown shape"):
        random_weight_model("gpt-9", tokenizer, "cpu")
