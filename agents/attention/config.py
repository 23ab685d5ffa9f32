"""Retriever knobs, resolved from Settings and the model's shape.

Scoring layers must be *global* attention layers: a sliding-window layer (Gemma 2/3, Mistral v0.1)
cannot see beyond its window, so its attention says nothing about far-away context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longread.config import get_settings

CPU_CHUNK_TOKENS = 1024
GPU_CHUNK_TOKENS = 4096
GPU_BATCH = 8


@dataclass(frozen=True)
class AttentionConfig:
    """How the retriever reads: chunk size W, budgets, scoring layers/heads and options."""

    chunk_tokens: int
    evidence_tokens: int
    carry_tokens: int
    layers: tuple[int, ...]
    heads: dict[int, list[int]] | None = None
    batch_size: int = 1
    calibrate: bool = True
    smooth_width: int = 8
    unit_max_tokens: int = 128
    null_query: str = "N/A"
    multi_hop_rounds: int = 3
    carry_units: int = 8
    hop_facts: int = 2


def global_layers(model_config: Any) -> list[int]:
    """Indexes of layers that attend over the whole context (all of them for a plain model)."""
    n = int(model_config.num_hidden_layers)
    types = getattr(model_config, "layer_types", None)
    if not types:
        return list(range(n))
    out = [i for i, kind in enumerate(types) if "sliding" not in str(kind) and "chunked" not in str(kind)]
    return out or list(range(n))


def resolve_layers(spec: str, model_config: Any) -> tuple[tuple[int, ...], dict[int, list[int]] | None]:
    """Parse ATTENTION_LAYERS ('last' | 'band' | 'all' | '5,11' | '11:0,11:3') against a model."""
    n = int(model_config.num_hidden_layers)
    usable = global_layers(model_config)
    spec = spec.strip().lower()
    if spec == "last":
        return (usable[-1],), None
    if spec == "all":
        return tuple(usable), None
    if spec == "band":
        band = [i for i in usable if 0.4 <= i / max(n - 1, 1) <= 0.75]
        if not band:  # few global layers: the one closest to 60% depth
            band = [min(usable, key=lambda i: abs(i / max(n - 1, 1) - 0.6))]
        return tuple(band), None
    heads: dict[int, list[int]] = {}
    layers: list[int] = []
    n_heads = int(model_config.num_attention_heads)
    try:
        for item in filter(None, (p.strip() for p in spec.split(","))):
            if ":" in item:
                layer_s, head_s = item.split(":", 1)
                layer, head = int(layer_s), int(head_s)
                if not 0 <= head < n_heads:
                    raise ValueError(f"head {head} out of range 0..{n_heads - 1}")
                heads.setdefault(layer, []).append(head)
            else:
                layer = int(item)
            if layer < 0:
                layer += n
            if not 0 <= layer < n:
                raise ValueError(f"layer {layer} out of range 0..{n - 1}")
            if layer not in layers:
                layers.append(layer)
    except ValueError as exc:
        raise ValueError(f"bad ATTENTION_LAYERS {spec!r}: {exc}") from exc
    if not layers:
        raise ValueError("ATTENTION_LAYERS names no layer")
    if heads:
        # A layer named without heads reads all of them.
        for layer in layers:
            heads.setdefault(layer, list(range(n_heads)))
    return tuple(layers), heads or None


def attention_config(model_config: Any, device: str, **overrides: Any) -> AttentionConfig:
    """Defaults from Settings and the device, with explicit overrides (benchmarks, tests)."""
    settings = get_settings()
    on_gpu = device.startswith("cuda")
    chunk = (
        overrides.pop("chunk_tokens", None)
        or settings.ATTENTION_CHUNK_TOKENS
        or (GPU_CHUNK_TOKENS if on_gpu else CPU_CHUNK_TOKENS)
    )
    carry = overrides.pop("carry_tokens", None) or settings.ATTENTION_CARRY_TOKENS or max(chunk // 8, 64)
    batch = overrides.pop("batch_size", None) or settings.ATTENTION_BATCH_SIZE or (GPU_BATCH if on_gpu else 1)
    layer_spec = overrides.pop("layers", None) or settings.ATTENTION_LAYERS
    if isinstance(layer_spec, str):
        layers, heads = resolve_layers(layer_spec, model_config)
    else:
        layers, heads = tuple(layer_spec), overrides.pop("heads", None)
    evidence = overrides.pop("evidence_tokens", None) or settings.ATTENTION_EVIDENCE_TOKENS
    if chunk < 8 or carry < 1 or batch < 1 or evidence < 1:
        raise ValueError("attention chunk, carry, batch and evidence sizes must be positive (chunk ≥ 8)")
    return AttentionConfig(
        chunk_tokens=int(chunk),
        evidence_tokens=int(evidence),
        carry_tokens=int(carry),
        layers=layers,
        heads=heads,
        batch_size=int(batch),
        **overrides,
    )
