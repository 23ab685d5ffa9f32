"""Where the shortlist reader lost a question: not shortlisted, ranked out, or read but not chosen.

The reader's trace names every shortlisted passage with its BM25, dense, fused and attention ranks and
whether it was read as evidence, so one answered question falls in one place:

- `right`: the answer contains the expected phrase;
- `not chosen`: the evidence held it, the answering model chose another phrase;
- `ranked out`: a shortlisted passage held it, the attention re-ranking left it below the evidence budget;
- `not shortlisted`: neither BM25 nor the dense ranking brought a passage holding it into the shortlist.

The same shortlist is also scored as other orders would have read it within the budget (the fused BM25 +
dense order without re-ranking; a fusion of all three ranks) and as the attention order would at 1.5× and
2× the budget, so a change of ranking or budget can be weighed without running the reader again
(`bench/books_losses.py` runs it over a books folder). Whether the answer is right and whether its
quotes hold the phrase is the books suite's scoring (`BooksSuite.score`); this module only reads the trace.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

from longread.agents.selection import within_budget
from longread.evaluation.suites.books import flat

OUTCOMES = ("right", "not chosen", "ranked out", "not shortlisted")
FUSION_K = 60
"""RRF constant for the three-rank fusion, as the shortlist's own fusion uses."""


def first_round(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """The first shortlist round: the question as asked (a second hop reads an expanded query)."""
    return next(step for step in trace if step.get("stage") == "shortlist")


def _read_within(order: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Candidates in `order` that fit `budget` tokens together, as the reader fills its evidence."""
    return within_budget(order, budget, lambda c: int(c["tokens"])) or order[:1]


def _three_rank_fusion(candidate: dict[str, Any]) -> float:
    ranks: list[int | None] = [candidate["attention_rank"], candidate["bm25_rank"], candidate["dense_rank"]]
    return -sum(1.0 / (FUSION_K + r) for r in ranks if r)


def orders(candidates: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The shortlist in each order the bench compares."""
    return {
        "attention": sorted(candidates, key=lambda c: c["attention_rank"]),
        "fused": sorted(candidates, key=lambda c: c["fused_rank"]),
        "three_rank_fusion": sorted(candidates, key=_three_rank_fusion),
    }


def outcome(right: bool, in_evidence: bool, in_shortlist: bool) -> str:
    if right:
        return "right"
    if in_evidence:
        return "not chosen"
    return "ranked out" if in_shortlist else "not shortlisted"


def analyse(
    text: str,
    trace: list[dict[str, Any]],
    right: bool,
    expected: tuple[str, ...],
    count: Callable[[str], int],
    budget: int,
) -> dict[str, Any]:
    """One question's outcome and its counterfactual evidence recall, from the reader's trace.

    `right`: the answer holds the expected phrase, as the books suite scores it.
    """
    wanted = [flat(e) for e in expected]
    step = first_round(trace)
    candidates = [dict(c) for c in step["candidates"]]
    for c in candidates:
        passage = flat(text[c["start"] : c["end"]])
        c["holds"] = any(w in passage for w in wanted)
        c["tokens"] = count(text[c["start"] : c["end"]])
    read = [c for c in candidates if c.get("evidence")]
    in_evidence = any(c["holds"] for c in read)
    holding = sorted(c["attention_rank"] for c in candidates if c["holds"])
    ranked = orders(candidates)
    recall = {name: any(c["holds"] for c in _read_within(order, budget)) for name, order in ranked.items()}
    for factor in (1.5, 2.0):
        recall[f"attention_x{factor}"] = any(
            c["holds"] for c in _read_within(ranked["attention"], int(budget * factor))
        )
    return {
        "outcome": outcome(right, in_evidence, bool(holding)),
        "attention_ranks_holding": holding,
        "shortlisted": len(candidates),
        "read": len(read),
        "budget_tokens": budget,
        "evidence_recall_if": recall,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    outcomes = Counter(r["outcome"] for r in rows)
    alternatives = rows[0]["evidence_recall_if"].keys() if rows else []
    return {
        "questions": n,
        "outcomes": {name: outcomes.get(name, 0) for name in OUTCOMES},
        "accuracy_pct": round(100 * outcomes["right"] / n, 1),
        "evidence_recall_pct": round(100 * sum(r["cited_evidence"] for r in rows) / n, 1),
        "shortlist_recall_pct": round(100 * sum(bool(r["attention_ranks_holding"]) for r in rows) / n, 1),
        "evidence_recall_if_pct": {
            name: round(100 * sum(r["evidence_recall_if"][name] for r in rows) / n, 1) for name in alternatives
        },
        "median_s": round(statistics.median(r["seconds"] for r in rows), 1),
    }
