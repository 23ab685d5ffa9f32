"""Tree build across Celery worker processes: wall time against the critical-path bound.

A document of `--tokens` tokens is segmented once; then for N worker processes (a prefork pool of
N) a BUILD_TREE job runs the per-level chord fan-out with the scripted LLM at a fixed 200 ms per call.
The critical-path bound is sum over levels of ceil(nodes/N) x latency; the structural minimum of
calls is the number of nodes. Usage: python -m bench.service_tree_build [--tokens 1000000] [--workers 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from pathlib import Path

from bench.service_common import (
    build_tree,
    drop_tree,
    machine_busy_cpu_s,
    process_tree_cpu_s,
    running_worker,
    scratch_environment,
    store_synthetic_document,
)

LATENCY_S = 0.2
MODEL = "scripted/bench.service_tree_build.fixed_latency_reply"


def fixed_latency_reply(messages: list[dict[str, str]]) -> str:
    """A summary after a fixed provider latency: the first words of the prompt's text."""
    time.sleep(LATENCY_S)
    content = str(messages[-1].get("content", ""))
    body = content.split("Passage:", 1)[-1] if "Passage:" in content else content.split("Part 1:", 1)[-1]
    return " ".join(body.split()[:40])


def run_once(env: dict[str, str], document_id: str, n_workers: int, logs: Path) -> dict[str, float | int]:
    from sqlmodel import select

    from longread.agents.memwalker.tree import level_sizes
    from longread.storage.db import session_scope
    from longread.storage.models import JobStatus, Segment, Tree

    name = f"bench-{n_workers}-{uuid.uuid4().hex[:6]}@localhost"
    with running_worker(n_workers, name, env, logs / f"worker-{n_workers}.log") as worker:
        workers_cpu, machine_cpu = process_tree_cpu_s(worker.pid), machine_busy_cpu_s()
        done, wall = build_tree(document_id, MODEL, interval=0.1)
        workers_cpu = process_tree_cpu_s(worker.pid) - workers_cpu
        machine_cpu = machine_busy_cpu_s() - machine_cpu
        assert done.status is JobStatus.SUCCEEDED, done.error
        with session_scope() as session:
            n_leaves = len(
                list(
                    session.exec(
                        select(Segment.id).where(Segment.document_id == document_id, Segment.scheme == "cl100k:1000")
                    )
                )
            )
            fanout = session.exec(select(Tree.fanout).where(Tree.id == done.result_id)).one()
        drop_tree(done.result_id)  # the next run builds the same tree from scratch
    sizes = level_sizes(n_leaves, fanout)
    bound = sum(math.ceil(size / n_workers) for size in sizes) * LATENCY_S
    return {
        "workers": n_workers,
        "levels": len(sizes),
        "nodes": sum(sizes),
        "calls": done.llm_calls,
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "wall_s": round(wall, 2),
        "bound_s": round(bound, 2),
        "wall_over_bound": round(wall / bound, 3),
        "worker_cpu_ms_per_node": round(workers_cpu * 1000 / sum(sizes), 1),
        "machine_cpu_ms_per_node": round(machine_cpu * 1000 / sum(sizes), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=Path("bench/results/service_tree_build.json"))
    args = parser.parse_args()
    extra = {
        "LONGREAD_LLM": MODEL,
        "LONGREAD_LLM_CACHE": "false",
        "LONGREAD_SEGMENT_TOKENS": "1000",
        "LONGREAD_TREE_FANOUT": "8",
        "LONGREAD_JOB_HEARTBEAT_TIMEOUT_S": "600",
    }
    with scratch_environment(extra) as env:
        t0 = time.monotonic()
        document_id, n_tokens, n_segments = store_synthetic_document(args.tokens, MODEL)
        print(f"document: {n_tokens} tokens, {n_segments} segments (stored in {time.monotonic() - t0:.1f}s)")
        logs = Path(env["LONGREAD_DATA_DIR"])
        rows = []
        for n in args.workers:
            row = run_once(env, document_id, n, logs)
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]["wall_s"] * rows[0]["workers"] if rows else 0
    print(
        "\n| workers | levels | nodes (min calls) | calls | wall s | bound s | wall/bound | speedup | worker CPU ms/node |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        speedup = base / row["wall_s"] if row["workers"] and rows[0]["workers"] == 1 else float("nan")
        print(
            f"| {row['workers']} | {row['levels']} | {row['nodes']} | {row['calls']} | {row['wall_s']} | "
            f"{row['bound_s']} | {row['wall_over_bound']} | {speedup:.2f} | {row['worker_cpu_ms_per_node']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tokens": n_tokens, "latency_s": LATENCY_S, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
