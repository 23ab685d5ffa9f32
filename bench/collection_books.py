"""The book QA questions asked across all its novels as one collection, beside each novel asked alone.

Every novel of the books folder (`../shared/bookqa` by default, or `--books DIR`: `texts/` plus
`questions.json`, as `longread eval books` reads it) is stored and joins one collection, and each
document's retrieval index is built once as it joins. Then every question is asked twice with the same
reader (`--strategy`, the shortlist reader by default) and model (`LONGREAD_LLM`, the bundled model by
default): about its own novel alone, and across the whole collection. Printed per question and in
total: accuracy (the answer contains the expected phrase), evidence recall (a quote cited from the
question's own novel contains it; whitespace collapsed, as the books suite scores) and seconds.
The figures are also written to `bench/results/collection_books.json`.

    python -m bench.collection_books [--books DIR] [--strategy shortlist] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.embedded_runs import add_books_arguments, use_embedded_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def _scores(answer: str, citations: list[dict[str, Any]], expected: tuple[str, ...], filename: str) -> dict[str, Any]:
    """Accuracy and evidence recall of one answer; only quotes from the question's own book count."""
    quoted = _flat(" ".join(str(c.get("quote", "")) for c in citations if c.get("filename", filename) == filename))
    wanted = [_flat(e) for e in expected]
    return {
        "accuracy": any(w in _flat(answer) for w in wanted),
        "evidence": any(w in quoted for w in wanted),
    }


def _summary(rows: list[dict[str, Any]], side: str) -> dict[str, Any]:
    n = len(rows)
    seconds = [r[side]["seconds"] for r in rows]
    return {
        "accuracy_pct": round(100 * sum(r[side]["accuracy"] for r in rows) / n, 1),
        "evidence_recall_pct": round(100 * sum(r[side]["evidence"] for r in rows) / n, 1),
        "median_s": round(statistics.median(seconds), 1),
        "mean_s": round(statistics.fmean(seconds), 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_books_arguments(parser)
    parser.add_argument("--strategy", default="shortlist", choices=("shortlist", "bm25", "dense"))
    parser.add_argument("--model", default=None, help="model string (default: LONGREAD_LLM, the bundled model)")
    args = parser.parse_args(argv)
    use_embedded_database(args.data_dir, "longread-collection-books-")

    from longread import collection_reading, engine
    from longread.config import get_settings
    from longread.evaluation.suites.books import BooksSuite
    from longread.storage import collections
    from longread.storage.db import session_scope

    model = args.model or get_settings().LLM
    suite = BooksSuite(args.books)
    items = suite.items(args.limit)
    with session_scope() as session:
        collection = collections.create_collection(session, "books")
        documents: dict[str, Any] = {}
        for item in items:
            if item.doc_key not in documents:
                filename, text = suite.document(item)
                document, _ = engine.store_text(session, filename=filename, text=text)
                collections.add_documents(session, collection, [document.id])
                documents[item.doc_key] = document
        started = time.perf_counter()
        collection_reading.index_members(session, [d.id for d in documents.values()], model=model)
        index_s = time.perf_counter() - started
        print(f"{len(documents)} books, {len(items)} questions; indexes built in {index_s:.1f} s", flush=True)
        if model.startswith("local/"):  # a cold model load is no question's time
            from longread.local_model import load_local_model

            load_local_model(model)

        rows: list[dict[str, Any]] = []
        for item in items:
            document, question = documents[item.doc_key], str(item.question)
            started = time.perf_counter()
            alone = engine.ask(session, document, question, strategy=args.strategy, model=model)
            alone_s = time.perf_counter() - started
            started = time.perf_counter()
            across = collection_reading.ask_collection(
                session, collection, question, strategy=args.strategy, model=model
            )
            across_s = time.perf_counter() - started
            row = {
                "id": item.item_id,
                "question": question,
                "expected": list(item.references),
                "alone": {
                    "answer": alone.answer,
                    "seconds": round(alone_s, 1),
                    **_scores(alone.answer, alone.citations, item.references, document.filename),
                },
                "collection": {
                    "answer": across.answer,
                    "seconds": round(across_s, 1),
                    "cited_books": sorted({str(c.get("filename")) for c in across.citations}),
                    **_scores(across.answer, across.citations, item.references, document.filename),
                },
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "books": len(documents),
        "questions": len(rows),
        "strategy": args.strategy,
        "model": model,
        "index_s": round(index_s, 1),
        "alone": _summary(rows, "alone"),
        "collection": _summary(rows, "collection"),
        "per_question": rows,
    }
    print("alone", json.dumps(result["alone"]))
    print("collection", json.dumps(result["collection"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collection_books.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
