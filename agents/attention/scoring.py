"""Scoring context tokens by the attention the question pays them (ICR/InfiniRetri style).

For a batch of chunks: prefill `[intro, context]` with SDPA into a KV cache through the decoder body
only (no LM head, so no vocabulary-sized logits), then feed only the question tokens over that cache
while the slice capture reads their attention rows in the scoring layers. The cache is cropped back
and the content-free query "N/A" is fed the same way; its scores are subtracted (ICR calibration),
which removes the attention every query pays to positions regardless of content (sinks, recency).
Finally a width-8 ones kernel smooths the scores over neighbouring tokens (InfiniRetri's phrase
smoothing), so a multi-token answer outranks a single stray token.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from longread.agents.attention.config import AttentionConfig
from longread.agents.attention.slice import SliceCapture, capturing, slice_attention
from longread.llm.prompts import render_prompt
from longread.local_model import with_cache

_MARK = "\u2063LONGREAD_CONTEXT\u2063"


@dataclass(frozen=True)
class PromptLayout:
    """Token ids around the context: `head` before it, `query`/`null` (the N/A query) after it."""

    head: list[int]
    query: list[int]
    null: list[int]


def _encode(tokenizer: Any, text: str, *, first: bool) -> list[int]:
    bos = getattr(tokenizer, "bos_token", None)
    add_special = first and not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def build_layout(tokenizer: Any, question: str, null_query: str = "N/A") -> PromptLayout:
    """The scoring prompt in the model's own format: a chat turn if it has a template, else plain."""
    intro = render_prompt("attention_score_intro")

    def halves(q: str) -> tuple[str, str]:
        body = f"{intro}\n\n{_MARK}\n\n{render_prompt('attention_score_query', question=q)}"
        if getattr(tokenizer, "chat_template", None):
            body = tokenizer.apply_chat_template(
                [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
            )
        before, after = body.split(_MARK, 1)
        return before, after

    head_text, query_text = halves(question)
    _, null_text = halves(null_query)
    return PromptLayout(
        head=_encode(tokenizer, head_text, first=True),
        query=_encode(tokenizer, query_text, first=False),
        null=_encode(tokenizer, null_text, first=False),
    )


def smooth(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Centred moving sum with a ones kernel of `width` (zero padding), like convolve(..., 'same')."""
    if width <= 1 or scores.numel() == 0:
        return scores
    left = width // 2
    right = width - 1 - left
    padded = torch.nn.functional.pad(scores.reshape(1, 1, -1), (left, right))
    kernel = torch.ones(1, 1, width, dtype=scores.dtype, device=scores.device)
    return torch.nn.functional.conv1d(padded, kernel).reshape(-1)


def _decoder(model: Any) -> Any:
    """The transformer body without the LM head (Gemma3ForCausalLM.model, LlamaForCausalLM.model…)."""
    body = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    return body if body is not None else model.get_decoder()


@contextmanager
def through_layer(body: Any, deepest: int) -> Iterator[None]:
    """Run only the decoder layers up to `deepest` for the duration, then restore them all.

    A layer's attention depends only on the layers before it, so the layers after the deepest scoring
    layer cannot change what is read; computing them is waste (a third of Gemma 3 270M's forward when
    the 'band' layer 11 of 18 scores). Callers hold the model's lock, as every use of the model does.
    """
    layers = getattr(body, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or deepest + 1 >= len(layers):
        yield
        return
    body.layers = torch.nn.ModuleList(list(layers)[: deepest + 1])
    try:
        yield
    finally:
        body.layers = layers


def _sum(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """Element-wise sum of same-shaped tensors (the builtin `sum` would start from the int 0)."""
    total: torch.Tensor = functools.reduce(operator.add, tensors)
    return total


def _query_pass(
    body: Any,
    cache: Any,
    ids: list[int],
    lengths: torch.Tensor,
    mask: torch.Tensor,
    config: AttentionConfig,
    device: str,
) -> dict[int, torch.Tensor]:
    batch = lengths.shape[0]
    q = torch.tensor(ids, device=device).unsqueeze(0).expand(batch, -1)
    positions = lengths.unsqueeze(1) + torch.arange(len(ids), device=device).unsqueeze(0)
    full_mask = torch.cat([mask, torch.ones(batch, len(ids), dtype=mask.dtype, device=device)], dim=1)
    capture = SliceCapture(layers=set(config.layers), heads=config.heads)
    with capturing(capture):
        body(input_ids=q, attention_mask=full_mask, position_ids=positions, use_cache=True, **with_cache(body, cache))
    return capture.reduced


def raw_token_scores(
    lm: Any,
    layout: PromptLayout,
    contexts: list[list[int]],
    config: AttentionConfig,
    *,
    query: list[int] | None = None,
    calibrate: bool | None = None,
) -> list[torch.Tensor]:
    """Attention of the question rows over each context's tokens (summed over layers/heads).

    Returns one fp32 CPU tensor per context, aligned with its token ids. Calibrated by the N/A query
    when `calibrate` (default: config.calibrate). Not smoothed.
    """
    from transformers.cache_utils import DynamicCache

    calibrate = config.calibrate if calibrate is None else calibrate
    query = layout.query if query is None else query
    model, device = lm.model, lm.device
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    rows = [layout.head + ctx for ctx in contexts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    pads = [width - len(row) for row in rows]
    for i, row in enumerate(rows):
        # Left padding: every row's last real token sits right before the query, so sliding-window
        # layers (windows counted in cache slots) see the same neighbours as in an unpadded run.
        ids[i, pads[i] :] = torch.tensor(row)
        mask[i, pads[i] :] = 1
    ids, mask = ids.to(device), mask.to(device)
    lengths = mask.sum(dim=1)
    positions = (torch.cumsum(mask, dim=1) - 1).clamp(min=0)
    body = _decoder(model)
    with lm.lock, torch.inference_mode(), slice_attention(model), through_layer(body, max(config.layers)):
        # A cache without the model config keeps every layer whole, so it can be cropped and reused.
        cache = DynamicCache()
        body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **with_cache(body, cache))
        scores = _query_pass(body, cache, query, lengths, mask, config, device)
        total = _sum(s[:, :width] for s in scores.values())
        if calibrate:
            # Negative = tokens to remove: the form every transformers version accepts.
            cache.crop(-(cache.get_seq_length() - width))
            null = _query_pass(body, cache, layout.null, lengths, mask, config, device)
            total = total - _sum(s[:, :width] for s in null.values())
    total = total.float().cpu()
    head = len(layout.head)
    return [total[i, pads[i] + head : pads[i] + head + len(ctx)].clone() for i, ctx in enumerate(contexts)]


def token_scores(
    lm: Any, layout: PromptLayout, contexts: list[list[int]], config: AttentionConfig, *, query: list[int] | None = None
) -> list[torch.Tensor]:
    """Calibrated (per config) and smoothed token scores for each context."""
    raw = raw_token_scores(lm, layout, contexts, config, query=query)
    return [smooth(r, config.smooth_width) for r in raw]


def unit_score(scores: torch.Tensor) -> float:
    """A sentence's score: its best token plus a small tie-break from its next-best two.

    A raw sum would favour long sentences; the maximum alone ties too often after smoothing.
    """
    if scores.numel() == 0:
        return float("-inf")
    top = torch.topk(scores, k=min(3, scores.numel())).values
    return float(top[0] + 0.1 * top.sum())
