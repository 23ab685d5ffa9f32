"""CPU one model call costs in this process, by layer, with no network and no provider latency.

A tree node is one model call; this measures what that call costs on the calling machine before any
of Longread's own per-node work (its task, its SQL), so the tree-build figures can be read against it.
Each layer is called with the same request, a tree leaf's own summary prompt (`tree_leaf_summary`)
over a `--passage-tokens` passage (1,000 by default, a tree's segment size), through the in-process scripted provider
(`longread.llm.scripted`), which answers at once:

- `provider`: the scripted provider's own work (its token counts), called directly;
- `litellm.completion`: litellm's call path around it (dispatch, response building, cost calculation);
- `Router.completion`: the same behind a litellm Router (the client's retry and timeout layer);
- `LLMClient`: Longread's client (`longread.llm.client`): the Router plus the cap, accounting and retries.

For each layer, after a warm-up: CPU per call of the calling thread, and of the whole process (which
adds litellm's success-logging thread; the process rests a moment after each batch so that thread ends
its work inside the measurement). Median of `--repeats` batches of `--calls` calls.

    python -m bench.litellm_call_cost [--passage-tokens 1000] [--calls 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

RESULTS = Path(__file__).parent / "results"
MODEL = "scripted/bench.litellm_call_cost.instant_reply"
SENTENCE = "The quick brown fox jumps over the lazy dog. "
"""Ten cl100k tokens."""
REPLY = " ".join(["summary"] * 40)
SETTLE_S = 0.3


def instant_reply(messages: list[dict[str, str]]) -> str:
    """A 40-word summary at once: the provider's latency is left out, its CPU is what it does."""
    return REPLY


def per_call_ms(call: Callable[[], Any], calls: int, repeats: int) -> dict[str, float]:
    """Median CPU milliseconds per call: the calling thread's, and the whole process's."""
    for _ in range(20):
        call()
    time.sleep(SETTLE_S)
    thread, process = [], []
    for _ in range(repeats):
        started_thread, started_process = time.thread_time(), time.process_time()
        for _ in range(calls):
            call()
        thread_s = time.thread_time() - started_thread
        time.sleep(SETTLE_S)  # litellm's logging thread finishes this batch's work
        process_s = time.process_time() - started_process
        thread.append(thread_s * 1000 / calls)
        process.append(process_s * 1000 / calls)
    return {"thread_ms": round(statistics.median(thread), 2), "process_ms": round(statistics.median(process), 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passage-tokens", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "litellm_call_cost.json")
    args = parser.parse_args(argv)

    import litellm

    from longread.agents.memwalker.tree import LEAF_SUMMARY_WORDS, words_to_tokens
    from longread.config import get_settings
    from longread.llm import scripted
    from longread.llm.client import LLMClient, _router, warm_up

    scripted.register_scripted_provider()
    warm_up()
    handler = next(e["custom_handler"] for e in litellm.custom_provider_map if e["provider"] == "scripted")
    client = LLMClient(MODEL, use_cache=False)
    passage = SENTENCE * (args.passage_tokens // 10)
    prompt = client.render_prompt("tree_leaf_summary", text=passage, max_words=LEAF_SUMMARY_WORDS)[0]
    messages = [{"role": "user", "content": prompt}]
    max_tokens = words_to_tokens(LEAF_SUMMARY_WORDS)
    settings = get_settings()  # the client's own Router (one per model and settings)
    router = _router(
        MODEL, settings.LLM_API_BASE, settings.LLM_API_KEY, settings.LLM_TIMEOUT_S, settings.LLM_NUM_RETRIES
    )
    layers: dict[str, Callable[[], Any]] = {
        "provider": lambda: handler.completion(MODEL, messages),
        "litellm.completion": lambda: litellm.completion(model=MODEL, messages=messages, max_tokens=max_tokens),
        "Router.completion": lambda: router.completion(
            model=MODEL, messages=messages, max_tokens=max_tokens, metadata={}
        ),
        "LLMClient": lambda: client.complete_messages(messages, max_tokens=max_tokens),
    }
    rows = {name: per_call_ms(call, args.calls, args.repeats) for name, call in layers.items()}
    result = {
        "prompt_tokens": client.counter.count(prompt),
        "calls": args.calls,
        "repeats": args.repeats,
        "layers": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| layer | calling thread ms/call | process ms/call |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['thread_ms']} | {row['process_ms']} |")
    return result


if __name__ == "__main__":
    main()
