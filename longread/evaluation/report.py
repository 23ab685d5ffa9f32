"""The report folder of an evaluation run: `report.md` with a table per suite, and PNG charts.

Tables: by strategy (accuracy, evidence recall, LLM calls, input/output tokens, cost and wall time
per question), accuracy by context length and by task. Charts: accuracy by context length, accuracy
against cost (or tokens, for models without a price), and for NIAH a length × depth heat map.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

from longread.agents import registry
from longread.evaluation.results import ResultStore

STRATEGY_ORDER = (*registry.names(), registry.AUTO)


def length_bucket(length: int | None) -> int | None:
    """Context lengths are grouped by the power of two at or above them (4K, 8K, …)."""
    if not length or length <= 0:
        return None
    return int(2 ** math.ceil(math.log2(length)))


def length_label(bucket: int) -> str:
    return f"{bucket // 1024}K" if bucket >= 1024 else str(bucket)


def _ordered(strategies: Iterable[str]) -> list[str]:
    names = set(strategies)
    return [s for s in STRATEGY_ORDER if s in names] + sorted(names - set(STRATEGY_ORDER))


def _mean(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return mean(present) if present else None


def summarize_group(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over the finished records of one group; errors are counted, not averaged in."""
    ok = [r for r in records if not r.get("error")]
    return {
        "n": len(ok),
        "errors": len(records) - len(ok),
        "accuracy": _mean(r.get("accuracy") for r in ok),
        "evidence_recall": _mean(r.get("evidence_recall") for r in ok),
        "recall_n": sum(1 for r in ok if r.get("evidence_recall") is not None),
        "retrieval_recall": _mean(r.get("retrieval_recall") for r in ok),
        "llm_calls": _mean(r.get("llm_calls", 0) for r in ok),
        "cached_calls": _mean(r.get("cached_calls", 0) for r in ok),
        "prompt_tokens": _mean(r.get("prompt_tokens", 0) for r in ok),
        "completion_tokens": _mean(r.get("completion_tokens", 0) for r in ok),
        "cost_usd": _mean(r.get("cost_usd", 0.0) for r in ok),
        "wall_s": _mean(r.get("wall_s", 0.0) for r in ok),
    }


def group_by(records: Iterable[dict[str, Any]], *fields: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[tuple(record.get(f) for f in fields)].append(record)
    return groups


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _cost(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def strategy_table(records: Sequence[dict[str, Any]]) -> list[str]:
    models = sorted({r["model"] for r in records})
    head = "| model | strategy |" if len(models) > 1 else "| strategy |"
    lines = [
        head + " n | accuracy % | evidence recall % | retrieval recall % | LLM calls | cached calls | input tokens "
        "| output tokens | cost USD | wall s | errors |",
        "|" + "---|" * (head.count("|") - 1 + 11),
    ]
    for model in models:
        by_strategy = group_by([r for r in records if r["model"] == model], "strategy")
        for strategy in _ordered(k[0] for k in by_strategy):
            s = summarize_group(by_strategy[(strategy,)])
            recall = _pct(s["evidence_recall"]) + (f" (n={s['recall_n']})" if s["recall_n"] != s["n"] else "")
            prefix = f"| {model} | {strategy} |" if len(models) > 1 else f"| {strategy} |"
            lines.append(
                f"{prefix} {s['n']} | {_pct(s['accuracy'])} | {recall} | {_pct(s['retrieval_recall'])} | "
                f"{_num(s['llm_calls'])} | {_num(s['cached_calls'])} | "
                f"{_num(s['prompt_tokens'], 0)} | {_num(s['completion_tokens'], 0)} | {_cost(s['cost_usd'])} | "
                f"{_num(s['wall_s'])} | {s['errors']} |"
            )
    return lines


def overview_table(records: Sequence[dict[str, Any]]) -> list[str]:
    """One row per strategy: accuracy, evidence recall, median and mean seconds per question, calls,
    tokens and cost; what a run over one kind of document (the books suite) is judged by."""
    lines = [
        "| strategy | n | accuracy % | evidence recall % | median s | mean s | LLM calls | input tokens "
        "| output tokens | cost USD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_strategy = group_by(records, "strategy")
    for strategy in _ordered(k[0] for k in by_strategy):
        group = by_strategy[(strategy,)]
        s = summarize_group(group)
        walls = sorted(float(r.get("wall_s", 0.0)) for r in group if not r.get("error"))
        middle = (walls[(len(walls) - 1) // 2] + walls[len(walls) // 2]) / 2 if walls else None
        lines.append(
            f"| {strategy} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['evidence_recall'])} | {_num(middle)} | "
            f"{_num(s['wall_s'])} | {_num(s['llm_calls'])} | {_num(s['prompt_tokens'], 0)} | "
            f"{_num(s['completion_tokens'], 0)} | {_cost(s['cost_usd'])} |"
        )
    return lines


def pivot_table(records: Sequence[dict[str, Any]], row_field: str, label: str, metric: str = "accuracy") -> list[str]:
    """metric % (n) with one row per value of row_field and one column per strategy."""
    strategies = _ordered({r["strategy"] for r in records})
    present = {r[row_field] for r in records if r.get(row_field) is not None}
    rows: list[Any] = sorted(present, key=lambda v: (str(type(v)), v))
    if not rows:
        return []
    groups = group_by(records, row_field, "strategy")
    lines = [f"| {label} | " + " | ".join(strategies) + " |", "|---|" + "---|" * len(strategies)]
    for row in rows:
        cells = []
        for strategy in strategies:
            s = summarize_group(groups.get((row, strategy), []))
            cells.append(f"{_pct(s[metric])} (n={s['n']})" if s["n"] and s[metric] is not None else "—")
        shown = length_label(row) if row_field == "bucket" else row
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    return lines


def _with_buckets(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "bucket": length_bucket(r.get("length"))} for r in records]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart_accuracy_by_length(
    records: Sequence[dict[str, Any]], path: Path, title: str, metric: str = "accuracy"
) -> Path | None:
    """One line per strategy: the metric (accuracy, or retrieval recall) against context length."""
    ok = [r for r in records if not r.get("error") and r.get("bucket") and r.get(metric) is not None]
    if not ok:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    buckets = sorted({r["bucket"] for r in ok})
    groups = group_by(ok, "strategy", "bucket")
    for strategy in _ordered({r["strategy"] for r in ok}):
        xs, ys = [], []
        for bucket in buckets:
            s = summarize_group(groups.get((strategy, bucket), []))
            if s["n"] and s[metric] is not None:
                xs.append(bucket)
                ys.append(100 * s[metric])
        ax.plot(xs, ys, marker="o", label=strategy)
    ax.set_xscale("log", base=2)
    ax.set_xticks(buckets, [length_label(b) for b in buckets])
    ax.minorticks_off()
    ax.set_ylim(-3, 103)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("retrieval recall %" if metric == "retrieval_recall" else "accuracy %")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def chart_accuracy_vs_cost(records: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    ok = [r for r in records if not r.get("error") and r.get("accuracy") is not None]
    if not ok:
        return None
    priced = any((r.get("cost_usd") or 0) > 0 for r in ok)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    xs = []
    markers = "osD^vP*Xh"
    groups = group_by(ok, "strategy")
    for i, strategy in enumerate(_ordered(k[0] for k in groups)):
        s = summarize_group(groups[(strategy,)])
        if s["accuracy"] is None:
            continue
        x = s["cost_usd"] if priced else (s["prompt_tokens"] or 0) + (s["completion_tokens"] or 0)
        xs.append(x or 0.0)
        ax.scatter([xs[-1]], [100 * s["accuracy"]], s=70, marker=markers[i % len(markers)], label=strategy, alpha=0.8)
    positive = [x for x in xs if x > 0]
    if len(positive) == len(xs) and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.legend(fontsize=8)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("cost per question (USD)" if priced else "model tokens per question (input + output)")
    ax.set_ylabel("accuracy %")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def chart_niah_heatmap(records: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    ok = [
        r
        for r in records
        if not r.get("error")
        and r.get("accuracy") is not None
        and r.get("meta", {}).get("depth") is not None
        and r.get("length")
    ]
    if not ok:
        return None
    plt = _plt()
    strategies = _ordered({r["strategy"] for r in ok})
    lengths = sorted({r["length"] for r in ok})
    depths = sorted({r["meta"]["depth"] for r in ok})
    fig, axes = plt.subplots(1, len(strategies), figsize=(2.2 + 2.6 * len(strategies), 3.6), dpi=120, squeeze=False)
    image = None
    for ax, strategy in zip(axes[0], strategies, strict=True):
        grid = []
        for depth in depths:
            row = []
            for length in lengths:
                cell = [
                    r for r in ok if r["strategy"] == strategy and r["length"] == length and r["meta"]["depth"] == depth
                ]
                row.append(100 * mean(r["accuracy"] for r in cell) if cell else math.nan)
            grid.append(row)
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [length_label(length_bucket(n) or n) for n in lengths], fontsize=8)
        ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths] if ax is axes[0][0] else [], fontsize=8)
        ax.set_title(strategy, fontsize=10)
        ax.set_xlabel("length")
    axes[0][0].set_ylabel("needle depth")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="accuracy %")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _metric_lines(suite: str) -> list[str]:
    from longread.evaluation.suites import suite_class

    try:
        cls = suite_class(suite)
    except ValueError:
        return []
    return [f"- accuracy: {cls.accuracy_metric}", f"- evidence recall: {cls.recall_metric}"]


def write_report(out_dir: Path, records: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write report.md and the charts into out_dir from its results.jsonl (or the given records)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if records is None:
        records = ResultStore(out_dir / "results.jsonl").records()
    if not records:
        raise ValueError(f"no results in {out_dir / 'results.jsonl'}")
    lines = [
        "# Longread evaluation report",
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from `results.jsonl` "
        f"({len(records)} results). Means are per question; a strategy's first question on a document also "
        "pays for what it builds there (the summary tree), so costs include that setup. Calls answered from "
        "the completion cache (for example `auto` repeating the strategy it routes to) are counted as cached "
        "calls and add no tokens or cost.",
    ]
    for (suite,), suite_records in sorted(group_by(records, "suite").items()):
        rows = _with_buckets(suite_records)
        models = ", ".join(sorted({r["model"] for r in rows}))
        judges = sorted({r["judge_model"] for r in rows if r.get("judge_model")})
        items = len({r["item_id"] for r in rows})
        lines += ["", f"## {suite}", "", f"Model: `{models}`" + (f"; judge: `{', '.join(judges)}`" if judges else "")]
        lines += [f"Items: {items} (sample sizes per cell are in the tables).", ""]
        lines += _metric_lines(suite) + ["", "### By strategy", ""] + strategy_table(rows)
        several_lengths = len({r["bucket"] for r in rows}) > 1
        several_tasks = len({r.get("task") for r in rows}) > 1
        for metric, title in (("accuracy", "Accuracy"), ("retrieval_recall", "Retrieval recall")):
            if not any(r.get(metric) is not None for r in rows):
                continue
            if several_lengths:
                lines += ["", f"### {title} % by context length", ""] + pivot_table(
                    rows, "bucket", "context length", metric
                )
            if several_tasks:
                lines += ["", f"### {title} % by task", ""] + pivot_table(rows, "task", "task", metric)
        slug = suite.replace("/", "-")
        charts = [
            chart_accuracy_by_length(
                rows, out_dir / by_length_chart_name(suite, "accuracy"), f"{suite}: accuracy by context length"
            ),
            chart_accuracy_vs_cost(rows, out_dir / f"{slug}-accuracy-vs-cost.png", f"{suite}: accuracy vs cost"),
            chart_accuracy_by_length(
                rows,
                out_dir / by_length_chart_name(suite, "retrieval_recall"),
                f"{suite}: retrieval recall by context length",
                metric="retrieval_recall",
            ),
        ]
        if suite == "niah":
            charts.append(
                chart_niah_heatmap(rows, out_dir / f"{slug}-heatmap.png", "niah: accuracy by length and depth")
            )
        lines.append("")
        lines += [f"![{chart.stem}]({chart.name})" for chart in charts if chart is not None]
        failures = [r for r in rows if r.get("error")]
        if failures:
            lines += ["", f"{len(failures)} results failed; first error: `{failures[0]['error'][:300]}`"]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)/]+\.png)\)")


def publish_report(out_dir: Path, docs_file: Path, command: str) -> Path:
    """Publish a report into a docs page: its charts into `<docs>/img/`, its tables into a section of
    the page named after the report folder, with the command that regenerates it.

    Other sections of the page (other runs, and any text before the first section) are kept, so one
    page can hold several runs, each rewritten by its own command.
    """
    out_dir, docs_file = Path(out_dir), Path(docs_file)
    name = out_dir.resolve().name
    report = (out_dir / "report.md").read_text(encoding="utf-8")
    images = docs_file.parent / "img"
    images.mkdir(parents=True, exist_ok=True)

    def move(match: re.Match[str]) -> str:
        target = f"{name}-{match.group(2)}"
        shutil.copyfile(out_dir / match.group(2), images / target)
        return f"![{match.group(1)}](img/{target})"

    body = _IMAGE.sub(move, report).split("\n", 1)[1].strip()  # without the report's own title
    body = re.sub(r"^(#{2,5}) ", lambda m: "#" + m.group(1) + " ", body, flags=re.M)
    section = (
        f"<!-- eval:{name} -->\n## Run `{name}`\n\nRegenerate with:\n\n```\n{command}\n```\n\n{body}\n"
        f"<!-- /eval:{name} -->"
    )
    page = docs_file.read_text(encoding="utf-8") if docs_file.exists() else "# Evaluation results\n"
    marker = re.compile(rf"<!-- eval:{re.escape(name)} -->.*?<!-- /eval:{re.escape(name)} -->", re.S)
    page = marker.sub(lambda _m: section, page) if marker.search(page) else page.rstrip() + "\n\n" + section
    docs_file.write_text(page.rstrip() + "\n", encoding="utf-8")
    return docs_file


def by_length_chart_name(suite: str, metric: str) -> str:
    """File name of a report's metric-by-context-length chart (the report writes it, the README links it)."""
    kind = "accuracy" if metric == "accuracy" else "retrieval"
    return f"{suite.replace('/', '-')}-{kind}-by-length.png"


def headline_metric(records: Sequence[dict[str, Any]]) -> str:
    """The metric a run is judged by: accuracy when a model answered, retrieval recall otherwise."""
    return "accuracy" if any(r.get("accuracy") is not None for r in records) else "retrieval_recall"


def publish_summary(out_dir: Path, page_file: Path, docs_file: Path, command: str) -> Path:
    """Put a run's headline into a page (the README): its metric by strategy and context length (or by
    strategy alone), its chart as published with the docs page, a link to the full tables and the
    command that regenerates it, in a section marked with the run's name that a rerun rewrites.
    """
    out_dir, page_file, docs_file = Path(out_dir), Path(page_file), Path(docs_file)
    name = out_dir.resolve().name
    records = _with_buckets(ResultStore(out_dir / "results.jsonl").records())
    if not records:
        raise ValueError(f"no results in {out_dir / 'results.jsonl'}")
    metric = headline_metric(records)
    title = "accuracy" if metric == "accuracy" else "retrieval recall"
    suites = ", ".join(sorted({r["suite"] for r in records}))
    models = ", ".join(sorted({r["model"] for r in records}))
    if len({r["bucket"] for r in records}) > 1:
        overall = pivot_table([{**r, "all": "all"} for r in records], "all", "context length", metric)[2:]
        table = pivot_table(records, "bucket", "context length", metric) + overall
    else:
        table = overview_table(records)
    chart = docs_file.parent / "img" / f"{name}-{by_length_chart_name(suites, metric)}"
    lines = [
        f"<!-- eval-summary:{name} -->",
        f"**{suites}**, {title} % by strategy (`{models}`; n = items per cell). "
        f"Full tables: [{docs_file.name}]({os.path.relpath(docs_file, page_file.parent)}#run-{name}).",
        "",
        *table,
    ]
    if chart.exists():
        lines += ["", f"![{name}]({os.path.relpath(chart, page_file.parent)})"]
    lines += ["", "```", command, "```", f"<!-- /eval-summary:{name} -->"]
    section = "\n".join(lines)
    page = page_file.read_text(encoding="utf-8")
    marker = re.compile(rf"<!-- eval-summary:{re.escape(name)} -->.*?<!-- /eval-summary:{re.escape(name)} -->", re.S)
    if not marker.search(page):
        raise ValueError(
            f"{page_file} has no section for run '{name}': add the line "
            f"'<!-- eval-summary:{name} --><!-- /eval-summary:{name} -->' where it belongs"
        )
    page_file.write_text(marker.sub(lambda _m: section, page), encoding="utf-8")
    return page_file
