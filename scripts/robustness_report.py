"""Render the README's fault matrix and bad-input table from the results the test run wrote.

    .venv/bin/python -m pytest tests/faults tests/test_bad_inputs.py   # writes data/*-results.*
    .venv/bin/python scripts/robustness_report.py                      # rewrites the README section

The fault tier appends one JSON line per measured outcome to data/fault-results.jsonl (the latest
line per case wins); the bad-input corpus writes data/bad-input-results.json; the benchmark of repeated
tree builds under provider faults (`python -m bench.provider_fault_builds`) writes
bench/results/provider_fault_builds.json, shown as one more row of the fault matrix. Nothing here is typed by
hand: the section between the markers is replaced with what those files say.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- robustness:start -->", "<!-- robustness:end -->"


def _faults(path: Path) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                latest[row["case"]] = row
    return sorted(latest.values(), key=lambda row: (row["kind"], row["case"]))


def fault_matrix(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["_No fault-tier results yet: run `pytest tests/faults`._"]
    lines = [
        "| fault | handled | time to recover or finish | what was checked |",
        "|---|---|---|---|",
    ]
    for row in rows:
        seconds = row.get("recovered_s", row.get("seconds"))
        if "resumed_s" in row:  # a service (Redis, the workers' database) went away mid-build and came back
            checked = (
                f"{row.get('nodes', '—')} tree nodes each stored once; {row.get('paid_twice', 0)} finished calls "
                f"paid twice; claimed {row.get('attempts')} time(s)"
            )
            timing = f"resumed {row['resumed_s']} s after it was back, finished after {row.get('finished_s')} s"
        elif row["kind"] == "database" and "error_code" in row:
            checked = f"job failed with `{row.get('error_code')}`: “{row.get('error')}”"
            timing = f"{seconds} s to fail once it was back"
        elif row["kind"] == "worker":
            stored = (
                f"{row['nodes']} tree nodes each stored once; "
                if "nodes" in row
                else f"{row['answers']} answer(s) stored for the question; "
                if "answers" in row
                else ""
            )
            checked = (
                f"{stored}{row.get('paid_twice', 0)} finished calls paid twice; claimed {row.get('attempts')} time(s)"
            )
            timing = f"{seconds} s after a live worker was available"
        elif row["kind"] == "database":
            checked = f"statuses during the outage: {', '.join(map(str, row.get('statuses', [])))} (JSON `database_unavailable`)"
            timing = f"{seconds} s to answer normally once it was back"
        elif row["kind"] == "upload":
            checked = "request refused; its temporary file removed; nothing stored"
            timing = f"{seconds} s to clean up after the client left"
        elif "faults" in row:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(row.get("by_kind", {}).items()) if k != "ok")
            checked = (
                f"{row['faults']} of {row['requests']} requests failed ({kinds}); summary stored; "
                f"`llm_retries` {row.get('llm_retries', '—')} in the job row"
            )
            timing = f"{seconds} s for the whole build"
        else:
            checked = f"job failed with `{row.get('error_code')}`: “{row.get('error')}”; nothing stored"
            timing = f"{seconds} s to fail"
        lines.append(f"| {row['case']} | {'yes' if row.get('handled') else '**no**'} | {timing} | {checked} |")
    return lines


def provider_bench_row(path: Path) -> list[str]:
    """The row of `bench/provider_fault_builds.py`'s last run (repeated long tree builds at a fault rate)."""
    if not path.exists():
        return []
    run = json.loads(path.read_text())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(run.get("faults_by_kind", {}).items()))
    case = (
        f"{run['builds']} tree builds of a {run['tokens'] // 1000}K-token document, {run['rate']:.0%} of calls fail "
        "(`bench/provider_fault_builds.py`)"
    )
    timing = f"{run['wall_s_median']} s per build (median), {run['wall_s_max']} s at most"
    checked = (
        f"{run['completed']} of {run['builds']} builds completed; {run['faults']} of {run['requests']} requests "
        f"failed ({kinds}); `llm_retries` {run['llm_retries']} in the job rows"
    )
    if run.get("planned", run["builds"]) > run["builds"]:
        checked += f" (the run was stopped after {run['builds']} of {run['planned']} planned builds)"
    handled = run["completed"] == run["builds"]
    return [f"| {case} | {'yes' if handled else '**no**'} | {timing} | {checked} |"]


def bad_input_table(path: Path) -> list[str]:
    if not path.exists():
        return ["_No bad-input results yet: run `pytest tests/test_bad_inputs.py`._"]
    everything = json.loads(path.read_text())
    rows = [row for row in everything if row["status"] >= 400]
    accepted = [row for row in everything if row["status"] < 400]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    handled = sum(1 for row in rows if row["handled"])
    lines = [
        f"{handled} of {len(rows)} bad inputs were refused as expected (JSON body, expected status and code, "
        "no SQL, traceback, path or key in the response, nothing stored, nothing lost).",
        "",
        "| group | cases | handled | statuses and codes | examples |",
        "|---|---|---|---|---|",
    ]
    for group, members in sorted(groups.items()):
        codes = sorted({f"{m['got_status']} `{m['got_code']}`" for m in members})
        examples = "; ".join(m["name"] for m in members[:4]) + ("; …" if len(members) > 4 else "")
        ok = sum(1 for m in members if m["handled"])
        lines.append(f"| {group} | {len(members)} | {ok} | {', '.join(codes)} | {examples} |")
    for row in accepted:
        lines.append(
            f"\nAlso: {row['name']}: {'as expected' if row['handled'] else '**not as expected**'}, {row['got_code']}."
        )
    failed = [row for row in rows if not row["handled"]]
    for row in failed:
        lines.append(
            f"\n**Not handled:** {row['name']}: expected {row['status']} `{row['code']}`, "
            f"got {row['got_status']} `{row['got_code']}`"
        )
    return lines


def render(fault_path: Path, bad_path: Path, bench_path: Path | None = None) -> str:
    return "\n".join(
        [
            START,
            "**Faults** (`tests/faults/`: real PostgreSQL, Redis, uvicorn and Celery worker processes with default "
            "recovery settings; provider faults from a loopback OpenAI-compatible server reached through litellm):",
            "",
            *fault_matrix(_faults(fault_path)),
            *(provider_bench_row(bench_path) if bench_path is not None else []),
            "",
            "**Bad inputs** (`tests/fixtures/bad/`, run by `tests/test_bad_inputs.py`):",
            "",
            *bad_input_table(bad_path),
            "",
            "Regenerate: `pytest tests/faults tests/test_bad_inputs.py && python scripts/robustness_report.py` "
            "(the repeated-build row: `python -m bench.provider_fault_builds` first).",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=Path, default=ROOT / "data" / "fault-results.jsonl")
    parser.add_argument("--bad-inputs", type=Path, default=ROOT / "data" / "bad-input-results.json")
    parser.add_argument(
        "--provider-bench", type=Path, default=ROOT / "bench" / "results" / "provider_fault_builds.json"
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--print", action="store_true", help="print the section instead of writing the README")
    args = parser.parse_args()
    section = render(args.faults, args.bad_inputs, args.provider_bench)
    if args.print:
        print(section)
        return
    text = args.readme.read_text()
    if START not in text:
        raise SystemExit(f"{args.readme} has no {START} marker")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    args.readme.write_text(pattern.sub(lambda _m: section, text, count=1))


if __name__ == "__main__":
    main()
