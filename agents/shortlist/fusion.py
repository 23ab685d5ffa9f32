"""Reciprocal-rank fusion of several rankings of the same passages into one shortlist.

RRF (Cormack et al., 2009) scores an item by Σ weight / (k + rank) over the rankings that hold it. It
needs no score calibration between BM25 (unbounded) and cosine similarity (−1..1), and an item near
the top of either ranking stays near the top of the fusion, which is what a shortlist must guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RRF_K = 60
"""The constant from the RRF paper: damps the difference between the first few ranks."""


@dataclass(frozen=True)
class Fused:
    """One item of the fused ranking, with its 1-based rank in each input ranking (None: absent)."""

    item: int
    score: float
    ranks: dict[str, int | None] = field(default_factory=dict)

    def best_rank(self) -> int:
        present = [r for r in self.ranks.values() if r is not None]
        return min(present) if present else 1 << 30


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[int]],
    *,
    k: int = RRF_K,
    weights: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[Fused]:
    """Fuse rankings (each a sequence of item ids, best first) into one, best first.

    Ties are broken by the best rank an item reached in any ranking, then by the item id, so the result
    is deterministic. A repeated item counts at its first (best) position only.
    """
    if k < 0:
        raise ValueError("the RRF constant k must not be negative")
    weights = weights or {}
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int | None]] = {}
    for name, ranking in rankings.items():
        weight = float(weights.get(name, 1.0))
        seen: set[int] = set()
        for position, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + position)
            ranks.setdefault(item, dict.fromkeys(rankings))[name] = position
    fused = [Fused(item, score, ranks[item]) for item, score in scores.items()]
    fused.sort(key=lambda f: (-f.score, f.best_rank(), f.item))
    return fused[:limit] if limit is not None else fused
