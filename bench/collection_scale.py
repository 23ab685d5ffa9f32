"""A collection at scale: index build time and memory, a question's peak memory, adding one more document.

`--documents` synthetic documents of `--tokens` cl100k tokens each are made offline from the book QA
set's novels (their sentences shuffled and recombined, a different mix per document) with one planted
fact per document: "The keeper of <place> locked ledger number <n> in the <colour> cabinet." Each
document is stored and joins one collection, and its retrieval index is built as it joins
(`collection_reading.index_members`, what the index job runs), one document at a time. Printed:

- index build seconds per document (min, median, max) and in total, and the process's peak RSS after
  the build;
- one question over the whole collection ("Which ledger number did the keeper of <place> lock ...?",
  about a document in the middle), answered in a fresh process so that its peak RSS is the question's
  own (`ru_maxrss` of that process): seconds, peak RSS, the answer, and whether it cites the document
  holding the fact;
- the time of adding document N+1 to the built collection (storing it, joining, building its index).

The figures are also written to `bench/results/collection_scale.json`.

Figures scale linearly in documents and tokens for the build; the question reads one document's
stored index and text at a time, so its memory does not grow with the collection.

    nice -n 10 python -m bench.collection_scale --documents 100 --tokens 150000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.embedded_runs import use_embedded_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PLACES = [
    "Ashcombe", "Brackenridge", "Coldharbour", "Dunmere", "Elmstead", "Foxholt", "Greywater", "Hallowmere",
    "Ivybridge", "Juniper Vale", "Kestrel Down", "Larkspur", "Marlowe", "Nettlecombe", "Oakhurst", "Pennyfield",
    "Quarrington", "Ravensworth", "Saltmarsh", "Thornbury", "Upton Reach", "Varley", "Westerhope", "Yarrowby",
]  # fmt: skip
RESULTS = Path(__file__).parent / "results"
COLOURS = ["green", "blue", "red", "yellow", "black", "white", "grey", "brown"]


def _rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, which (unlike `ru_maxrss`) starts afresh in a
    process started by exec, so the question's child does not report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _place(n: int) -> str:
    return f"{PLACES[n % len(PLACES)]} {n // len(PLACES) + 1}" if n >= len(PLACES) else PLACES[n]


def fact(n: int) -> tuple[str, str, str]:
    """Document n's planted sentence, the question that asks for it, and the expected answer."""
    rng = random.Random(1000 + n)
    number = str(rng.randint(10_000, 99_999))
    place, colour = _place(n), COLOURS[n % len(COLOURS)]
    sentence = f"The keeper of {place} locked ledger number {number} in the {colour} cabinet."
    question = f"Which ledger number did the keeper of {place} lock in the {colour} cabinet?"
    return sentence, question, number


def sentences(folder: Path) -> list[str]:
    from longread.ingest import normalize_text

    found: list[str] = []
    for path in sorted((folder / "texts").glob("*.txt")):
        text = " ".join(normalize_text(path.read_text(encoding="utf-8")).split())
        found.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if 3 <= len(s.split()) <= 80)
    return found


def synthetic_document(pool: list[str], n: int, n_tokens: int) -> str:
    """Sentences of the novels in a document-specific order, in paragraphs, until `n_tokens`, the fact planted."""
    from longread.tokens import token_counter_for

    counter = token_counter_for("cl100k")
    rng = random.Random(n)
    paragraphs: list[str] = []
    total = 0
    while total < n_tokens:
        paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(4, 9)))
        paragraphs.append(paragraph)
        total += counter.count(paragraph) + 1
    at = rng.randint(len(paragraphs) // 5, 4 * len(paragraphs) // 5)
    paragraphs[at] = f"{paragraphs[at]} {fact(n)[0]}"
    return "\n\n".join(paragraphs)


def _add(session: Any, collection: Any, pool: list[str], n: int, n_tokens: int, model: str) -> dict[str, Any]:
    from longread import collection_reading, engine
    from longread.storage import collections

    started = time.perf_counter()
    text = synthetic_document(pool, n, n_tokens)
    made = time.perf_counter()
    document, _ = engine.store_text(
        session, filename=f"synthetic-{n:03d}.txt", text=text, tenant_id=collection.tenant_id
    )
    tokens = document.n_tokens
    collections.add_documents(session, collection, [document.id])
    stored = time.perf_counter()
    built = collection_reading.index_members(session, [document.id], model=model)
    finished = time.perf_counter()
    return {
        "document": n,
        "document_id": document.id,
        "tokens": tokens,
        "passages": built[0]["passages"],
        "generate_s": round(made - started, 2),
        "store_s": round(stored - made, 2),
        "index_s": round(finished - stored, 2),
        "total_s": round(finished - made, 2),
        "rss_mb": round(_rss_mb(), 1),
    }


def ask(collection_id: str, question: str, strategy: str, model: str | None) -> dict[str, Any]:
    """The question over the collection in this process (run as a child so its peak RSS is its own)."""
    from longread import collection_reading
    from longread.storage.collections import find_collection
    from longread.storage.db import session_scope

    with session_scope() as session:
        collection = find_collection(session, collection_id)
        assert collection is not None
        started = time.perf_counter()
        answer = collection_reading.ask_collection(session, collection, question, strategy=strategy, model=model)
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
            "answer": answer.answer,
            "strategy": answer.strategy,
            "cited": sorted({str(c.get("filename")) for c in answer.citations}),
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=150_000, help="cl100k tokens per document")
    parser.add_argument("--model", default=None, help="model string (default: LONGREAD_LLM, the bundled model)")
    parser.add_argument("--strategy", default="shortlist", choices=("shortlist", "bm25", "dense"))
    parser.add_argument("--folder", type=Path, default=None, help="book QA folder (texts/)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where the SQLite database goes (a temporary folder)"
    )
    parser.add_argument("--ask", nargs=2, metavar=("COLLECTION", "QUESTION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ask:
        result = ask(args.ask[0], args.ask[1], args.strategy, args.model)
        print(json.dumps(result))
        return result

    data_dir = use_embedded_database(args.data_dir, "longread-collection-scale-")

    from longread.config import get_settings
    from longread.evaluation.suites.books import default_folder
    from longread.storage import collections
    from longread.storage.db import session_scope

    model = args.model or get_settings().LLM
    pool = sentences(args.folder or default_folder())
    print(f"{len(pool)} sentences from the novels; {args.documents} documents of {args.tokens} tokens; {data_dir}")
    rows: list[dict[str, Any]] = []
    with session_scope() as session:
        collection = collections.create_collection(session, "scale")
        collection_id = collection.id
        for n in range(args.documents):
            rows.append(_add(session, collection, pool, n, args.tokens, model))
            print(json.dumps(rows[-1]), flush=True)
    build_rss = _rss_mb()
    index_s = [r["index_s"] for r in rows]
    build = {
        "documents": len(rows),
        "tokens": sum(r["tokens"] for r in rows),
        "index_s_per_document": {
            "min": min(index_s),
            "median": round(statistics.median(index_s), 2),
            "max": max(index_s),
        },
        "index_s_total": round(sum(index_s), 1),
        "peak_rss_mb_after_build": round(build_rss, 1),
    }
    print("build", json.dumps(build), flush=True)

    target = args.documents // 2
    _, question, expected = fact(target)
    env = {**os.environ, "LONGREAD_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "bench.collection_scale", "--ask", collection_id, question]
    command += ["--strategy", args.strategy] + (["--model", args.model] if args.model else [])
    started = time.perf_counter()
    child = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        print(child.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the question failed (exit {child.returncode})")
    asked = json.loads(child.stdout.strip().splitlines()[-1])
    asked |= {
        "question": question,
        "expected": expected,
        "expected_document": f"synthetic-{target:03d}.txt",
        "correct": expected in asked["answer"],
        "cites_document": f"synthetic-{target:03d}.txt" in asked["cited"],
        "process_wall_s": round(wall, 1),
    }
    print("question", json.dumps(asked), flush=True)

    with session_scope() as session:
        collection = collections.find_collection(session, collection_id)
        assert collection is not None
        added = _add(session, collection, pool, args.documents, args.tokens, model)
    print("added", json.dumps(added), flush=True)
    result = {"build": build, "question": asked, "added": added, "per_document": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collection_scale.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
