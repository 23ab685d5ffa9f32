"""The question→context slice of a model's attention, without ever materialising full matrices.

A custom attention function is registered with transformers' AttentionInterface under the name
`longread_slice`. It always computes the layer's output with SDPA; while a `SliceCapture` is active
it additionally computes softmax(q·Kᵀ·scale + mask) for the current *query rows only* (the question
tokens fed over the chunk's KV cache) of the chosen layers. It sees the post-norm, post-RoPE query
and key exactly as the model uses them (q_norm/k_norm, rotary, GQA through `repeat_kv`), and the
softmax runs over the full key row in fp32, so the rows equal the corresponding rows of an eager
attention matrix. Memory per layer is heads × query rows × keys, not keys².
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

IMPLEMENTATION = "longread_slice"
_CAPTURE: contextvars.ContextVar[SliceCapture | None] = contextvars.ContextVar("slice_capture", default=None)
_register_lock = threading.Lock()
_registered = False


@dataclass
class SliceCapture:
    """Which layers/heads to read, and what was read.

    `reduced[layer]` is (batch, keys): the attention mass each key receives from the captured query
    rows, summed over the chosen heads and averaged over the rows. With `keep_rows`, `rows[layer]`
    holds the raw (batch, heads, rows, keys) probabilities (tests compare them with eager attention).
    """

    layers: set[int]
    heads: dict[int, list[int]] | None = None
    keep_rows: bool = False
    reduced: dict[int, torch.Tensor] = field(default_factory=dict)
    rows: dict[int, torch.Tensor] = field(default_factory=dict)

    def record(
        self,
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: torch.Tensor | None,
        scaling: float | None,
        softcap: float | None,
    ) -> None:
        layer = int(module.layer_idx)
        heads = (self.heads or {}).get(layer)
        if heads is not None:
            query = query[:, heads]
        groups = int(getattr(module, "num_key_value_groups", 1))
        if heads is not None and groups > 1:
            key = key[:, [h // groups for h in heads]]
        elif groups > 1:
            key = key.repeat_interleave(groups, dim=1)  # GQA: the same expansion as repeat_kv
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        logits = _apply_mask(logits, mask)
        probs = torch.softmax(logits, dim=-1)  # over the whole key row
        if self.keep_rows:
            self.rows[layer] = probs
        self.reduced[layer] = probs.sum(dim=1).mean(dim=1)


def _apply_mask(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    q_len, kv_len = logits.shape[-2], logits.shape[-1]
    if mask is None:
        # No mask means plain causal attention of the last q_len positions.
        q_pos = torch.arange(kv_len - q_len, kv_len, device=logits.device)[:, None]
        allowed = torch.arange(kv_len, device=logits.device)[None, :] <= q_pos
        return logits.masked_fill(~allowed, float("-inf"))
    mask = mask[..., -q_len:, :kv_len]
    if mask.dtype == torch.bool:
        return logits.masked_fill(~mask, float("-inf"))
    return logits + mask.float()


def slice_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """SDPA for the output; the captured slice on the side for the chosen layers."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    capture = _CAPTURE.get()
    if capture is not None and int(module.layer_idx) in capture.layers:
        capture.record(module, query, key, attention_mask, scaling, kwargs.get("softcap"))
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)


def register() -> None:
    """Register the slice implementation (with SDPA's mask builder) once per process."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(IMPLEMENTATION, slice_attention_forward)
        AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)
        _registered = True


@contextlib.contextmanager
def slice_attention(model: Any) -> Iterator[None]:
    """Run the model with the slice-capable attention for the duration (then restore its own)."""
    register()
    previous = model.config._attn_implementation
    if previous == IMPLEMENTATION:
        yield
        return
    model.set_attn_implementation(IMPLEMENTATION)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


@contextlib.contextmanager
def capturing(capture: SliceCapture) -> Iterator[SliceCapture]:
    """Make forwards in this context record the slice into `capture`."""
    token = _CAPTURE.set(capture)
    try:
        yield capture
    finally:
        _CAPTURE.reset(token)
