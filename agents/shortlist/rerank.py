"""In-context re-ranking (ICR): the local model reads the shortlist with the question last, and the
attention the question's tokens pay each passage, calibrated, ranks the passages.

One forward pass over `[intro, passages]` fills a KV cache; the question and then the content-free
query "N/A" are fed over that same cache (`agents.attention.scoring.raw_token_scores`, which reads only
the question rows of the scoring layers' attention). A token's score is the question's attention minus
the N/A query's, which removes what every query pays to positions regardless of content (attention
sinks, recency). Passages go in reverse shortlist order, the best candidates nearest the question, as
in ICR's experiments. A passage's score is the sum of its token scores after dropping tokens below
mean − 2σ of that passage (ICR's masking), so one stray negative token cannot sink a passage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from longread.agents.attention.config import AttentionConfig, attention_config
from longread.agents.attention.scoring import build_layout, raw_token_scores
from longread.local_model import LocalModel, load_local_model

_config_lock = threading.Lock()
_configs: dict[tuple[int, str], AttentionConfig] = {}


@dataclass(frozen=True)
class Reranking:
    """ICR scores, one per passage in the order given, and what the pass cost."""

    scores: list[float]
    tokens: int
    seconds: float


def rerank_config(lm: LocalModel, layers: str) -> AttentionConfig:
    """Scoring layers (global layers only) and calibration for this model, resolved once per process."""
    key = (id(lm.model), layers)
    with _config_lock:
        if key not in _configs:
            _configs[key] = attention_config(lm.model.config, lm.device, layers=layers)
        return _configs[key]


def passage_score(scores: torch.Tensor) -> float:
    """ICR's passage score: calibrated token scores summed, tokens below mean − 2σ masked out."""
    if scores.numel() == 0:
        return float("-inf")
    if scores.numel() > 1:
        floor = scores.mean() - 2 * scores.std()
        scores = scores[scores >= floor]
    return float(scores.sum())


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def rerank(question: str, passages: Sequence[str], *, layers: str = "all", lm: LocalModel | None = None) -> Reranking:
    """Score each passage by the question's calibrated attention in one read of the whole shortlist.

    `passages` are given best first (the shortlist order); they are laid out in reverse, numbered, so
    the strongest candidates sit nearest the question.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    if not passages:
        return Reranking([], 0, 0.0)
    started = time.perf_counter()
    lm = lm or load_local_model(None)
    config = rerank_config(lm, layers)
    layout = build_layout(lm.tokenizer, question, config.null_query)
    ids: list[int] = []
    spans: dict[int, tuple[int, int]] = {}
    for position in reversed(range(len(passages))):
        ids.extend(_ids(lm.tokenizer, f"[{len(passages) - position}] "))
        body = _ids(lm.tokenizer, passages[position].strip())
        spans[position] = (len(ids), len(ids) + len(body))
        ids.extend(body)
        ids.extend(_ids(lm.tokenizer, "\n\n"))
    token_scores = raw_token_scores(lm, layout, [ids], config)[0]
    scores = [passage_score(token_scores[a:b]) for a, b in (spans[i] for i in range(len(passages)))]
    total = len(layout.head) + len(ids) + len(layout.query) + len(layout.null)
    return Reranking(scores, total, time.perf_counter() - started)


def load_reranker() -> LocalModel:
    """The local model, loaded once per process (before the first question's timings start)."""
    return load_local_model(None)
