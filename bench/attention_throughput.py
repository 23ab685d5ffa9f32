"""Throughput of the attention retriever against a plain forward pass of the same model, plus peak memory.

The plain forward reads the same document tokens in the same W-token chunks with `model(input_ids)`
(logits for every position, the usual forward) and with `logits_to_keep=1` (body only, what a prefill
costs). The retriever reads the document once (carried cache, question and N/A passes included).
Runs alternate, `--repeats` times, and the median is reported, so background load hits both alike.

    python -m bench.attention_throughput --tokens 8192 --device cpu

`--random-weights SHAPE` measures a model of a real architecture's shape with random weights and a
byte-level tokenizer trained on the haystack (`longread.testing.random_weights`): nothing is read
from a hub or a package, so it runs on an accelerator with no network. The haystack is then
synthetic text, and whether the needle is found means nothing; speed and memory are the shape's:

    python -m bench.attention_throughput --device cuda --random-weights qwen2.5-0.5b --tokens 131072
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
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

QUESTION = "What is the special magic number for quiet-river mentioned in the provided text?"
NEEDLE = "One of the special magic numbers for quiet-river is: 4417203."


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: "5" resets the process's peak resident set size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def haystack(tokenizer: Any, n_tokens: int) -> str:
    """Paul Graham essays (RULER's haystack) cut to n_tokens, with one needle in the middle."""
    from longread.evaluation.data import read_json

    essays = str(read_json("long_context_eval", "data/synthetic/json/PaulGrahamEssays.json")["text"])
    enc = tokenizer(essays[: n_tokens * 8], add_special_tokens=False, return_offsets_mapping=True)
    cut = enc["offset_mapping"][min(n_tokens, len(enc["input_ids"])) - 1][1]
    text = essays[:cut]
    middle = text.find(". ", len(text) // 2) + 2
    return text[:middle] + NEEDLE + " " + text[middle:]


def random_weight_setup(shape: str, n_tokens: int, device: str | None) -> tuple[Any, str]:
    """A random-weight model of `shape`, its tokenizer trained on a synthetic haystack of about
    `n_tokens` of its tokens, and that haystack with the needle in the middle."""
    from bench.service_common import synthetic_text
    from longread.testing.random_weights import random_weight_model, trained_tokenizer

    text = synthetic_text(n_tokens)
    tokenizer = trained_tokenizer([text[:2_000_000], NEEDLE, QUESTION])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < n_tokens:  # a byte-level BPE fits its own text more tightly than cl100k does
        text += "\n\n" + synthetic_text(n_tokens - len(ids) + 1024, seed=len(ids))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    cut = len(tokenizer.decode(ids[:n_tokens]))
    text = text[:cut]
    middle = text.find(". ", len(text) // 2) + 2
    text = text[:middle] + NEEDLE + " " + text[middle:]
    return random_weight_model(shape, tokenizer, device if device and device != "auto" else None), text


def plain_forward(lm: Any, ids: list[int], chunk: int, *, logits_to_keep: int | None) -> float:
    import torch

    started = time.perf_counter()
    with lm.lock, torch.inference_mode():
        for first in range(0, len(ids), chunk):
            batch = torch.tensor([ids[first : first + chunk]], device=lm.device)
            kwargs = {"logits_to_keep": logits_to_keep} if logits_to_keep else {}
            lm.model(input_ids=batch, use_cache=False, **kwargs)
    if lm.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--random-weights", metavar="SHAPE", default=None, help="qwen2.5-0.5b, gemma3-270m, tiny-llama")
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--layers", default=None)
    parser.add_argument("--out", default="bench/results/attention")
    args = parser.parse_args()

    from longread.agents.attention.config import attention_config
    from longread.agents.attention.retriever import retrieve
    from longread.config import get_settings
    from longread.local_model import load_local_model

    if args.device:
        os.environ["LONGREAD_LOCAL_DEVICE"] = args.device
        get_settings.cache_clear()
    if args.random_weights:
        lm, text = random_weight_setup(args.random_weights, args.tokens, args.device)
    else:
        lm = load_local_model(args.model)
        text = haystack(lm.tokenizer, args.tokens)
    config = attention_config(
        lm.model.config, lm.device, chunk_tokens=args.chunk, batch_size=args.batch, layers=args.layers
    )
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    n = len(ids)
    print(
        f"model {lm.name} on {lm.device}; {n} tokens; W={config.chunk_tokens}; carry={config.carry_tokens}; "
        f"layers={config.layers}; batch={config.batch_size}"
    )
    plain_forward(lm, ids[: config.chunk_tokens], config.chunk_tokens, logits_to_keep=None)  # warm-up
    timings: dict[str, list[float]] = {"full_logits": [], "logits_to_keep_1": [], "retriever": []}
    peaks: dict[str, float] = {}
    found = None
    for _ in range(args.repeats):
        for name in timings:
            _reset_peak(lm.device)
            if name == "retriever":
                started = time.perf_counter()
                result = retrieve(lm, text, QUESTION, config)
                timings[name].append(time.perf_counter() - started)
                found = any("4417203" in text[s.unit.start : s.unit.end] for s in result.evidence)
            else:
                keep = 1 if name == "logits_to_keep_1" else None
                timings[name].append(plain_forward(lm, ids, config.chunk_tokens, logits_to_keep=keep))
            peaks[name] = max(peaks.get(name, 0.0), _peak_mib(lm.device))
    report: dict[str, Any] = {
        "model": lm.name,
        "device": lm.device,
        "tokens": n,
        "chunk": config.chunk_tokens,
        "carry": config.carry_tokens,
        "batch": config.batch_size,
        "needle_found": found,
    }
    lines = ["| pass | median s | tokens/s | peak memory MiB |", "|---|---|---|---|"]
    for name, values in timings.items():
        median = statistics.median(values)
        report[name] = {
            "seconds": round(median, 3),
            "tokens_per_s": round(n / median, 1),
            "peak_mib": round(peaks[name], 1),
        }
        lines.append(f"| {name} | {median:.2f} | {n / median:.0f} | {peaks[name]:.0f} |")
    for base in ("full_logits", "logits_to_keep_1"):
        ratio = report[base]["seconds"] / report["retriever"]["seconds"]
        report[f"ratio_vs_{base}"] = round(ratio, 3)
        lines.append(f"\nretriever throughput / plain forward ({base}): **{ratio:.2f}×**")
    lines.append(f"\nneedle found by the retriever: {found}")
    table = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{lm.device}-{n}" + (f"-random-{args.random_weights}" if args.random_weights else "")
    (out / f"attention_throughput-{tag}.md").write_text(table + "\n", encoding="utf-8")
    (out / f"attention_throughput-{tag}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
