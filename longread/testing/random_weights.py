"""A model of a real architecture's shape with random weights, and a tokenizer trained on the spot.

Speed and memory depend on a model's shape, not on its weights. A machine that cannot download
weights (an accelerator with no network) can still measure the attention retriever at 128K or 1M
tokens on a 0.5B-class decoder: `random_weight_model("qwen2.5-0.5b")` builds the architecture
from its published dimensions, and `trained_tokenizer` trains a byte-level BPE on the benchmark's
own text, so nothing is fetched. What such a model retrieves means nothing; how fast it reads does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from longread.local_model import LocalModel, pick_device

SHAPES: dict[str, dict[str, Any]] = {
    # Qwen2.5-0.5B's published dimensions (config.json of Qwen/Qwen2.5-0.5B).
    "qwen2.5-0.5b": {
        "model_type": "qwen2",
        "vocab_size": 151_936,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1_048_576 + 8192,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    # Gemma 3 270M's (the bundled model), its local/global layer pattern included.
    "gemma3-270m": {
        "model_type": "gemma3_text",
        "vocab_size": 262_144,
        "hidden_size": 640,
        "intermediate_size": 2048,
        "num_hidden_layers": 18,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "sliding_window": 512,
        "max_position_embeddings": 1_048_576 + 8192,
        "rope_theta": 1_000_000.0,
        "query_pre_attn_scalar": 256,
    },
    # A few layers of Llama's shape: what the tests build on a CPU in a second.
    "tiny-llama": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 65_536,
    },
}


def trained_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> Any:
    """A byte-level BPE tokenizer trained on `texts` (seconds), as a fast transformers tokenizer with
    offsets, an end-of-sequence token and a pad token: all the retriever asks of one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<bos>", "<eos>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # transformers leaves its tokenizers untyped
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def random_weight_model(shape: str, tokenizer: Any, device: str | None = None, seed: int = 0) -> LocalModel:
    """The architecture `shape` (a key of SHAPES) with random weights, on `device` (auto: CUDA when
    present) in the dtype real weights would get there. The embedding keeps the real model's vocabulary
    (the memory it takes) unless `tokenizer`'s is larger."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    started = time.perf_counter()
    where, dtype = pick_device(device)
    fields = dict(SHAPES[shape])
    vocab_size = max(int(fields.pop("vocab_size", 0)), len(tokenizer))
    config = AutoConfig.for_model(
        fields.pop("model_type"),
        vocab_size=vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **fields,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]  # untyped in transformers
        config, dtype=dtype, attn_implementation="sdpa"
    )
    model.to(where)
    model.eval()
    return LocalModel(f"random/{shape}", model, tokenizer, where, dtype, "random", time.perf_counter() - started)
