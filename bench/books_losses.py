"""Where the shortlist reader loses a book question: not shortlisted, ranked out, or read but not chosen.

Every question of the books folder (`../shared/bookqa` by default, or `--books DIR`: `texts/` plus
`questions.json`, as `longread eval books` reads it) is asked of its novel with the shortlist reader and
the bundled model, end to end (`engine.ask`). The reader's trace names every shortlisted passage with its
BM25, dense, fused and attention ranks and whether it was read as evidence, so each question's outcome
falls in one place:

- `right`: the answer contains the expected phrase;
- `not chosen`: the evidence held it, the answering model chose another phrase;
- `ranked out`: a shortlisted passage held it, the attention re-ranking left it below the evidence budget;
- `not shortlisted`: neither BM25 nor the dense ranking brought a passage holding it into the shortlist.

Beside the reader's evidence recall, the same shortlist is scored as other orders would have read it
within the same budget (the fused BM25 + dense order without re-ranking; a fusion of all three ranks)
and as the attention order would at 1.5× and 2× the budget, so a change of ranking or budget can be
weighed without running the reader again. Figures go to `bench/results/books_losses.json`.

    python -m bench.books_losses [--books DIR] [--limit N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"
OUTCOMES = ("right", "not chosen", "ranked out", "not shortlisted")
FUSION_K = 60
"""RRF constant for the three-rank fusion, as the shortlist's own fusion uses."""


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def _first_round(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """The first shortlist round: the question as asked (a second hop reads an expanded query)."""
    return next(step for step in trace if step.get("stage") == "shortlist")


def _read_within(order: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Candidates in `order` that fit `budget` tokens together, as the reader fills its evidence."""
    chosen, used = [], 0
    for candidate in order:
        if used + candidate["tokens"] <= budget:
            chosen.append(candidate)
            used += candidate["tokens"]
    return chosen or order[:1]


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
    answer: str,
    expected: tuple[str, ...],
    count: Callable[[str], int],
    budget: int,
) -> dict[str, Any]:
    """One question's outcome and its counterfactual evidence recall, from the reader's trace."""
    wanted = [_flat(e) for e in expected]
    step = _first_round(trace)
    candidates = [dict(c) for c in step["candidates"]]
    for c in candidates:
        passage = _flat(text[c["start"] : c["end"]])
        c["holds"] = any(w in passage for w in wanted)
        c["tokens"] = count(text[c["start"] : c["end"]])
    read = [c for c in candidates if c.get("evidence")]
    in_evidence = any(c["holds"] for c in read)
    holding = sorted(c["attention_rank"] for c in candidates if c["holds"])
    recall: dict[str, bool] = {}
    for name, order in orders(candidates).items():
        recall[name] = any(c["holds"] for c in _read_within(order, budget))
    for factor in (1.5, 2.0):
        recall[f"attention_x{factor}"] = any(
            c["holds"] for c in _read_within(orders(candidates)["attention"], int(budget * factor))
        )
    right = any(w in _flat(answer) for w in wanted)
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=Path, default=None, help="books folder (texts/ and questions.json)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions only")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the SQLite database goes")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="longread-books-losses-"))
    os.environ["LONGREAD_DATA_DIR"] = str(data_dir)
    os.environ.pop("LONGREAD_DATABASE_URL", None)

    from longread import engine
    from longread.config import get_settings
    from longread.evaluation.suites.books import BooksSuite
    from longread.local_model import load_local_model
    from longread.storage.db import session_scope
    from longread.tokens import token_counter_for

    model = "local/default"
    suite = BooksSuite(args.books)
    items = suite.items(args.limit)
    counter = token_counter_for(model)
    budget = get_settings().EVIDENCE_TOKENS
    load_local_model(model)  # a cold model load is no question's time
    rows: list[dict[str, Any]] = []
    with session_scope() as session:
        documents: dict[str, Any] = {}
        for item in items:
            if item.doc_key not in documents:
                filename, text = suite.document(item)
                documents[item.doc_key] = engine.store_text(session, filename=filename, text=text)[0]
            document, question = documents[item.doc_key], str(item.question)
            started = time.perf_counter()
            answer = engine.ask(session, document, question, strategy="shortlist", model=model)
            seconds = time.perf_counter() - started
            references = tuple(item.references)
            found = analyse(document.text, answer.trace, answer.answer, references, counter.count, budget)
            quoted = _flat(" ".join(str(c.get("quote", "")) for c in answer.citations))
            row = {
                "id": item.item_id,
                "question": question,
                "expected": list(item.references),
                "answer": answer.answer,
                "seconds": round(seconds, 1),
                "cited_evidence": any(_flat(e) in quoted for e in references),
                **found,
            }
            rows.append(row)
            print(
                f"{row['outcome']:<16} {', '.join(row['expected'])[:18]:<18} answer={row['answer'][:30]!r:<34} "
                f"attention ranks holding={row['attention_ranks_holding'][:5]} {row['seconds']} s",
                flush=True,
            )
    result = {"model": model, "summary": summarise(rows), "per_question": rows}
    print(json.dumps(result["summary"], indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "books_losses.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
