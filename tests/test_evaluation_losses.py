"""longread.evaluation.losses places each book question where the shortlist reader lost it, from the reader's trace."""

from __future__ import annotations

from typing import Any

from longread.evaluation.losses import analyse, summarise

TEXT = "Alpha speaks. Beta holds Donwell Abbey. Gamma talks. Delta also names Donwell."
SPANS = {"alpha": (0, 13), "beta": (14, 38), "gamma": (39, 52), "delta": (53, 79)}


def _candidate(name: str, fused: int, attention: int, evidence: bool, bm25: int | None = None) -> dict[str, Any]:
    start, end = SPANS[name]
    return {
        "start": start,
        "end": end,
        "fused_rank": fused,
        "bm25_rank": bm25 if bm25 is not None else fused,
        "dense_rank": None,
        "attention_rank": attention,
        "evidence": evidence,
    }


def _trace(*candidates: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"stage": "index"},
        {"stage": "shortlist", "hop": 0, "candidates": list(candidates)},
        {"stage": "shortlist", "hop": 1, "candidates": []},
    ]


def _words(text: str) -> int:
    return len(text.split())


def test_outcomes_follow_where_the_expected_phrase_was() -> None:
    read_it = _trace(_candidate("beta", 2, 1, True), _candidate("alpha", 1, 2, False))
    assert analyse(TEXT, read_it, True, ("Donwell",), _words, 4)["outcome"] == "right"
    assert analyse(TEXT, read_it, False, ("Donwell",), _words, 4)["outcome"] == "not chosen"

    ranked_out = _trace(_candidate("alpha", 2, 1, True), _candidate("beta", 1, 2, False))
    found = analyse(TEXT, ranked_out, False, ("donwell",), _words, 4)
    assert found["outcome"] == "ranked out"
    assert found["attention_ranks_holding"] == [2]

    missing = _trace(_candidate("alpha", 1, 1, True), _candidate("gamma", 2, 2, False))
    assert analyse(TEXT, missing, False, ("Donwell",), _words, 4)["outcome"] == "not shortlisted"


def test_other_orders_and_budgets_are_scored_on_the_same_shortlist() -> None:
    # Attention puts alpha first; the fused order puts beta (which holds the phrase) first. Each passage is
    # alpha is 2 words and beta 4, so a 4-word budget reads one of them and twice that reads both.
    trace = _trace(_candidate("alpha", 2, 1, True, bm25=2), _candidate("beta", 1, 2, False, bm25=1))
    found = analyse(TEXT, trace, False, ("Donwell",), _words, 4)
    recall = found["evidence_recall_if"]
    assert recall["attention"] is False
    assert recall["fused"] is True
    assert recall["attention_x2.0"] is True


def test_only_the_first_round_counts() -> None:
    """A second hop reads an expanded query; the first round is the question as asked."""
    trace = _trace(_candidate("gamma", 1, 1, True))
    trace[2]["candidates"] = [_candidate("beta", 1, 1, True)]
    assert analyse(TEXT, trace, False, ("Donwell",), _words, 4)["outcome"] == "not shortlisted"


def test_summary_counts_outcomes_and_recall() -> None:
    rows = [
        {
            "outcome": "right",
            "cited_evidence": True,
            "attention_ranks_holding": [1],
            "seconds": 2.0,
            "evidence_recall_if": {"attention": True, "fused": False},
        },
        {
            "outcome": "not shortlisted",
            "cited_evidence": False,
            "attention_ranks_holding": [],
            "seconds": 4.0,
            "evidence_recall_if": {"attention": False, "fused": False},
        },
    ]
    summary = summarise(rows)
    assert summary["outcomes"] == {"right": 1, "not chosen": 0, "ranked out": 0, "not shortlisted": 1}
    assert summary["accuracy_pct"] == 50.0
    assert summary["shortlist_recall_pct"] == 50.0
    assert summary["evidence_recall_if_pct"] == {"attention": 50.0, "fused": 0.0}
    assert summary["median_s"] == 3.0
