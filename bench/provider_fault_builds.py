"""Tree builds of a long document while 30% of provider calls fail: how many complete, and at what cost.

A document of `--tokens` tokens (200K by default) is stored and segmented once; then `--builds` BUILD_TREE
jobs (20 by default) run one after another on a Celery worker, each from scratch, with the model
`openai/fake-model` reached through litellm's HTTP client at the loopback fault-injecting server of
the fault tests (`longread/testing/fault_provider.py`: 429 with Retry-After, 500, 503, replies past the 2 s
timeout, malformed bodies, replies without a completion, drawn evenly). Recovery and retry settings are
the defaults. Printed and written to `--out` (after every build, so a run stopped early keeps what it measured): builds completed, faults injected, retries counted on the
job rows, wall time per build. `scripts/robustness_report.py` adds the result to the README's fault
matrix. Usage: python -m bench.provider_fault_builds [--tokens 200000] [--builds 20] [--rate 0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.service_common import build_tree, drop_tree, running_worker, scratch_environment, store_synthetic_document
from longread.testing.fault_provider import FAULT_KINDS, FaultyProvider

MODEL = "openai/fake-model"
OUT = Path("bench/results/provider_fault_builds.json")


def build_once(document_id: str) -> dict[str, Any]:
    """One tree build from scratch; the tree is deleted afterwards so the next build starts over."""
    from longread.storage.models import JobStatus

    done, wall = build_tree(document_id, MODEL, interval=0.2)
    drop_tree(done.result_id)
    return {
        "succeeded": done.status is JobStatus.SUCCEEDED,
        "error_code": done.error_code,
        "calls": done.llm_calls,
        "llm_retries": done.llm_retries,
        "attempts": done.attempts,
        "wall_s": round(wall, 1),
    }


def summarise(rows: list[dict[str, Any]], n_tokens: int, n_segments: int, rate: float, planned: int) -> dict[str, Any]:
    walls = [row["wall_s"] for row in rows]
    by_kind: Counter[str] = Counter()
    for row in rows:
        by_kind.update(row["by_kind"])
    return {
        "tokens": n_tokens,
        "segments": n_segments,
        "rate": rate,
        "planned": planned,
        "builds": len(rows),
        "completed": sum(1 for row in rows if row["succeeded"]),
        "requests": sum(row["requests"] for row in rows),
        "faults": sum(row["faults"] for row in rows),
        "faults_by_kind": dict(sorted(by_kind.items())),
        "llm_retries": sum(row["llm_retries"] for row in rows),
        "wall_s_median": round(statistics.median(walls), 1) if walls else None,
        "wall_s_max": max(walls) if walls else None,
        "at": time.time(),
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with FaultyProvider(rate=0.0) as provider:
        extra = {
            "LONGREAD_LLM": MODEL,
            "LONGREAD_LLM_CACHE": "false",
            "LONGREAD_LLM_API_BASE": provider.url,
            "LONGREAD_LLM_API_KEY": "sk-bench-fault-0000000000000000",
            "LONGREAD_LLM_TIMEOUT_S": "2",
            "LONGREAD_ALLOWED_MODELS": f'["{MODEL}"]',
            "TRANSFORMERS_OFFLINE": "1",
        }
        with scratch_environment(extra) as env:
            document_id, n_tokens, n_segments = store_synthetic_document(args.tokens, MODEL)
            print(f"document: {n_tokens} tokens, {n_segments} segments; {args.builds} builds at {args.rate:.0%} faults")
            name = f"bench-faults-{uuid.uuid4().hex[:6]}@localhost"
            rows = []
            with running_worker(args.concurrency, name, env, Path(env["LONGREAD_DATA_DIR"]) / "worker.log"):
                provider.rate = args.rate
                for index in range(args.builds):
                    before = Counter(provider.counts)
                    row = build_once(document_id)
                    drawn = Counter(provider.counts) - before
                    row["requests"] = sum(drawn.values())
                    row["faults"] = sum(n for kind, n in drawn.items() if kind != "ok")
                    row["by_kind"] = {kind: drawn[kind] for kind in FAULT_KINDS if drawn[kind]}
                    rows.append(row)
                    print(f"build {index + 1}: {json.dumps(row)}", flush=True)
                    # Written after every build: a run stopped early still leaves what it measured.
                    summary = summarise(rows, n_tokens, n_segments, args.rate, args.builds)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(summary, indent=2) + "\n")
                provider.rate = 0.0
    summary = summarise(rows, n_tokens, n_segments, args.rate, args.builds)
    print(
        f"\n{summary['completed']} of {summary['builds']} builds of {n_tokens} tokens completed; "
        f"{summary['faults']} of {summary['requests']} requests failed ({summary['faults_by_kind']}); "
        f"{summary['llm_retries']} retries on the job rows; wall per build median {summary['wall_s_median']} s, "
        f"max {summary['wall_s_max']} s"
    )


if __name__ == "__main__":
    main()
