"""RULER evidence recall of the attention retriever against BM25 and dense retrieval, depth × length.

Samples come from RULER's own generator (`nvidia-long-context-eval==26.3`, run offline through
`longread.evaluation.suites.ruler`, which carries the tiktoken/punkt shims). For each sample the
document is split from the question; every method picks evidence within the same budget of local-model
tokens, and a sample counts as found when the evidence text contains every gold answer (NIAH, VT:
RULER's string_match_all) or any of them (QA: string_match_part). This measures retrieval, the part
the local model does; answering is a separate step.

    python -m bench.attention_ruler --tasks niah_single_1,niah_multikey_1 --lengths 4k,8k --samples 3

Writes results as JSONL (one line per sample and method, appended, so a long run can be resumed),
a Markdown table and a PNG heat map (depth × length) under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DEPTH_BINS = 5


def parse_lengths(value: str) -> list[int]:
    out = []
    for part in value.split(","):
        part = part.strip().lower()
        out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
    return out


def found(evidence_text: str, references: list[str], task: str) -> bool:
    text = evidence_text.lower()
    hits = [ref.lower() in text for ref in references]
    return any(hits) if task.startswith("qa") else all(hits)


def depth_of(document: str, references: list[str]) -> float | None:
    """Relative position (0..1) of the gold answers in the document (mean when several)."""
    spots = [document.find(ref) for ref in references]
    spots = [s for s in spots if s >= 0]
    if not spots or not document:
        return None
    return sum(spots) / len(spots) / len(document)


def _load_samples(task: str, length: int, samples: int, cache: Path) -> list[dict[str, Any]]:
    from longread.evaluation.suites import ruler

    path = ruler.generate(task, length, samples, cache)
    with path.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    out = []
    for record in records[:samples]:
        document, question = ruler.split_input(str(record["input"]), task)
        out.append(
            {
                "index": record["index"],
                "document": document,
                "question": question,
                "references": [str(o) for o in record["outputs"]],
            }
        )
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from longread.agents.attention.config import attention_config
    from longread.config import get_settings
    from longread.local_model import load_local_model
    from longread.tokens import HFTokenCounter

    if args.device:
        os.environ["LONGREAD_LOCAL_DEVICE"] = args.device
        get_settings.cache_clear()
    settings = get_settings()
    lm = load_local_model(args.model)
    counter = HFTokenCounter(lm.tokenizer)
    config = attention_config(
        lm.model.config,
        lm.device,
        evidence_tokens=args.budget,
        layers=args.layers,
        chunk_tokens=args.chunk,
        batch_size=args.batch,
        multi_hop_rounds=args.hops,
    )
    print(
        f"model {lm.name} on {lm.device}; layers {config.layers}; W={config.chunk_tokens}; "
        f"carry={config.carry_tokens}; budget={config.evidence_tokens}; batch={config.batch_size}"
    )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "attention_ruler.jsonl"
    done = set()
    rows: list[dict[str, Any]] = []
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            row = json.loads(line)
            rows.append(row)
            done.add((row["task"], row["length"], row["index"], row["method"]))
    cache = Path(args.cache or settings.DATA_DIR / "ruler")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    with results_path.open("a", encoding="utf-8") as sink:
        for length in parse_lengths(args.lengths):
            for task in [t.strip() for t in args.tasks.split(",")]:
                for sample in _load_samples(task, length, args.samples, cache):
                    for method in methods:
                        key = (task, length, sample["index"], method)
                        if key in done or (
                            method == "attention"
                            and args.multi_hop_vt
                            and task == "vt"
                            and (task, length, sample["index"], "attention_mh") in done
                        ):
                            continue
                        row = _score(method, sample, task, length, lm, counter, config, args)
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                        rows.append(row)
                        print(
                            f"{task:16s} {length:>7d} #{sample['index']} {method:10s} "
                            f"found={row['found']} depth={row['depth']} tokens={row['doc_tokens']} "
                            f"{row['seconds']:.1f}s",
                            flush=True,
                        )
    return rows


def _score(
    method: str,
    sample: dict[str, Any],
    task: str,
    length: int,
    lm: Any,
    counter: Any,
    config: Any,
    args: argparse.Namespace,
) -> dict[str, Any]:
    from longread.agents.attention.retriever import retrieve
    from longread.agents.baselines import bm25_evidence, dense_evidence

    document, question, refs = sample["document"], sample["question"], sample["references"]
    started = time.perf_counter()
    if method.startswith("attention"):
        multi_hop = method == "attention_mh" or (args.multi_hop_vt and task == "vt")
        result = retrieve(lm, document, question, config, multi_hop=multi_hop)
        spans = [(s.unit.start, s.unit.end) for s in result.evidence]
    elif method == "bm25":
        spans = [
            (e.start, e.end)
            for e in bm25_evidence(
                document, question, counter=counter, budget_tokens=config.evidence_tokens, units="sentence"
            )
        ]
    elif method == "dense":
        spans = [
            (e.start, e.end)
            for e in dense_evidence(
                document, question, counter=counter, budget_tokens=config.evidence_tokens, units="sentence"
            )
        ]
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    evidence_text = "\n".join(document[a:b] for a, b in spans)
    if method == "attention" and args.multi_hop_vt and task == "vt":
        method = "attention_mh"  # label what actually ran
    return {
        "task": task,
        "length": length,
        "index": sample["index"],
        "method": method,
        "found": found(evidence_text, refs, task),
        "depth": depth_of(document, refs),
        "doc_tokens": counter.count(document),
        "evidence_tokens": counter.count(evidence_text),
        "seconds": round(seconds, 2),
    }


def summarise(rows: list[dict[str, Any]], out_dir: Path) -> str:
    """Markdown table (accuracy per task × length × method) and the depth × length heat map."""
    cells: dict[tuple[str, int, str], list[bool]] = defaultdict(list)
    for row in rows:
        cells[(row["task"], row["length"], row["method"])].append(bool(row["found"]))
    tasks = sorted({r["task"] for r in rows})
    lengths = sorted({r["length"] for r in rows})
    methods = sorted({r["method"] for r in rows}, key=lambda m: (not m.startswith("attention"), m))
    lines = ["| task | length | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for task in tasks:
        for length in lengths:
            vals = []
            for method in methods:
                hits = cells.get((task, length, method))
                vals.append(f"{sum(hits) / len(hits):.0%} ({sum(hits)}/{len(hits)})" if hits else "–")
            if any(v != "–" for v in vals):
                lines.append(f"| {task} | {length // 1024}K | " + " | ".join(vals) + " |")
    throughput = [r for r in rows if r["method"].startswith("attention")]
    if throughput:
        tok = sum(r["doc_tokens"] for r in throughput)
        sec = sum(r["seconds"] for r in throughput)
        lines.append("")
        lines.append(
            f"Attention retrieval read {tok} document tokens in {sec:.0f} s ({tok / max(sec, 1e-9):.0f} tokens/s)."
        )
    table = "\n".join(lines)
    (out_dir / "attention_ruler.md").write_text(table + "\n", encoding="utf-8")
    niah = [r for r in rows if r["task"].startswith("niah")] or rows
    _heatmap(niah, out_dir / "attention_ruler_heatmap.png", methods, sorted({r["length"] for r in niah}))
    return table


def _heatmap(rows: list[dict[str, Any]], path: Path, methods: list[str], lengths: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods) + 1, 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        grid = np.full((DEPTH_BINS, len(lengths)), np.nan)
        for j, length in enumerate(lengths):
            for i in range(DEPTH_BINS):
                hits = [
                    r["found"]
                    for r in rows
                    if r["method"] == method
                    and r["length"] == length
                    and r["depth"] is not None
                    and min(int(r["depth"] * DEPTH_BINS), DEPTH_BINS - 1) == i
                ]
                if hits:
                    grid[i, j] = sum(hits) / len(hits)
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [f"{n // 1024}K" for n in lengths])
        ax.set_yticks(range(DEPTH_BINS), [f"{100 * i // DEPTH_BINS}%" for i in range(DEPTH_BINS)])
        ax.set_title(f"{method} ({'NIAH' if all(r['task'].startswith('niah') for r in rows) else 'all tasks'})")
        ax.set_xlabel("length")
        ax.set_ylabel("depth")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="evidence recall")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="niah_single_1,niah_single_2,niah_single_3")
    parser.add_argument("--lengths", default="4k,8k")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--methods", default="attention,bm25,dense")
    parser.add_argument("--budget", type=int, default=None, help="evidence tokens (ATTENTION_EVIDENCE_TOKENS)")
    parser.add_argument("--layers", default=None, help="ATTENTION_LAYERS override (last, band, all, 5,11)")
    parser.add_argument("--chunk", type=int, default=None, help="chunk tokens W")
    parser.add_argument("--batch", type=int, default=None, help="chunks per forward (GPU)")
    parser.add_argument("--hops", type=int, default=3, help="multi-hop rounds (VT chains need one per hop)")
    parser.add_argument("--multi-hop-vt", action="store_true", help="multi-hop mode for variable tracking")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--model", default=None, help="LOCAL_MODEL override (bundled, hub id, folder, .gguf)")
    parser.add_argument("--cache", default=None, help="folder for generated RULER samples")
    parser.add_argument("--out", default="bench/results/attention")
    args = parser.parse_args()
    rows = run(args)
    print(summarise(rows, Path(args.out)))


if __name__ == "__main__":
    main()
