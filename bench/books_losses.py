"""Where the shortlist reader loses a book question: not shortlisted, ranked out, or read but not chosen.

Every question of the books folder (`../shared/bookqa` by default, or `--books DIR`: `texts/` plus
`questions.json`, as `longread eval books` reads it) is asked of its novel with the shortlist reader and
the bundled model, end to end (`engine.ask`); `longread.evaluation.losses` places it from the reader's
trace (right, not chosen, ranked out, not shortlisted) and scores the same shortlist in other orders and
budgets. Figures go to `bench/results/books_losses.json`.

    python -m bench.books_losses [--books DIR] [--limit N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.embedded_runs import add_books_arguments, use_embedded_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_books_arguments(parser)
    args = parser.parse_args(argv)
    use_embedded_database(args.data_dir, "longread-books-losses-")

    from longread import engine
    from longread.config import get_settings
    from longread.evaluation.base import Outcome
    from longread.evaluation.losses import analyse, summarise
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
            scored = suite.score(item, Outcome(answer.answer, answer.citations), document.text, None)
            right = scored["accuracy"] == 1.0
            found = analyse(document.text, answer.trace, right, tuple(item.references), counter.count, budget)
            row = {
                "id": item.item_id,
                "question": question,
                "expected": list(item.references),
                "answer": answer.answer,
                "seconds": round(seconds, 1),
                "cited_evidence": scored["evidence_recall"] == 1.0,
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
