"""`bm25s` against `rank-bm25` on a ~1M-token document: index time, query time, and whether they rank alike.

The document is the book QA set's novels repeated until it reaches `--tokens` cl100k tokens, cut into the
same passages the retrieval strategies rank (`agents.baselines.split_units`, whole sentences packed to
`RETRIEVAL_UNIT_TOKENS`) and tokenised for BM25 by the same `bm25_terms`. Ranking quality: for each of the
set's questions, is a passage holding the expected answer among the top k; and how far the two libraries'
top-k sets agree.

    python -m bench.bm25_libraries --tokens 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"


def _document(folder: Path, n_tokens: int) -> str:
    from longread.ingest import normalize_text
    from longread.tokens import token_counter_for

    counter = token_counter_for("cl100k")
    books = [normalize_text(p.read_text(encoding="utf-8")) for p in sorted((folder / "texts").glob("*.txt"))]
    parts: list[str] = []
    total = 0
    while total < n_tokens:
        for book in books:
            parts.append(book)
            total += counter.count(book)
            if total >= n_tokens:
                break
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import numpy as np

    from longread.agents.baselines import bm25_terms, split_units
    from longread.evaluation.suites.books import default_folder
    from longread.tokens import token_counter_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=None, help="book QA folder (texts/ + questions.json)")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    folder = args.folder or default_folder()
    counter = token_counter_for("cl100k")
    text = _document(folder, args.tokens)
    started = time.perf_counter()
    units = split_units(text, counter)
    split_s = time.perf_counter() - started
    corpus = [bm25_terms(text[u.start : u.end]) or ["\x00"] for u in units]
    questions = json.loads((folder / "questions.json").read_text(encoding="utf-8"))["questions"]
    queries = [bm25_terms(q["question"]) for q in questions]
    low = [text[u.start : u.end].lower() for u in units]

    def run(name: str, build: Any, score: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        index = build()
        index_s = time.perf_counter() - t0
        times, hits, tops = [], 0, []
        for q, query in zip(questions, queries, strict=True):
            t1 = time.perf_counter()
            scores = np.asarray(score(index, query))
            times.append(time.perf_counter() - t1)
            top = np.argsort(-scores, kind="stable")[: args.top]
            tops.append({int(i) for i in top})
            hits += any(q["expect"].lower() in low[i] for i in top)
        return {
            "library": name,
            "index_s": round(index_s, 2),
            "query_ms_median": round(1000 * statistics.median(times), 3),
            f"hit_at_{args.top}": hits,
            "questions": len(questions),
            "_tops": tops,
        }

    def build_rank_bm25() -> Any:
        from rank_bm25 import BM25Okapi

        return BM25Okapi(corpus)

    def build_bm25s() -> Any:
        import bm25s

        index = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        index.index(corpus, show_progress=False)
        return index

    rows = [
        run("rank-bm25 0.2.2 (BM25Okapi)", build_rank_bm25, lambda i, q: i.get_scores(q)),
        run("bm25s (lucene)", build_bm25s, lambda i, q: i.get_scores(q)),
    ]
    agree = statistics.mean(len(a & b) / args.top for a, b in zip(rows[0]["_tops"], rows[1]["_tops"], strict=True))
    for row in rows:
        row.pop("_tops")
    report = {
        "tokens_cl100k": counter.count(text),
        "passages": len(units),
        "split_s": round(split_s, 2),
        "rows": rows,
        f"top{args.top}_agreement": round(agree, 3),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bm25_libraries.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
