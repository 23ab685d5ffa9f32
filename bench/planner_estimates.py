"""How close the planner's estimates come to what each strategy then does.

Reads one multi-segment document with every strategy the scripted model can drive (full, bm25, dense,
tree, chain), each time estimating first, and prints estimated / actual calls and tokens. `cold` is a
fresh deployment (default completion fills); `warm` is the next document, after the first one's calls
were measured. Writes bench/results/planner_estimates.json.

    python -m bench.planner_estimates [--paragraphs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

MODEL = "scripted/longread.testing.doubles.reader"
QUESTION = "What is the code of the violet harbor?"
FACT = "The code of the violet harbor is 4721."
STRATEGIES = ("full", "bm25", "dense", "tree", "chain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=40)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="planner-bench-")
    os.environ.update(
        {
            "LONGREAD_DATA_DIR": data,
            "LONGREAD_SEGMENT_TOKENS": "150",
            "LONGREAD_LLM_CONTEXT_WINDOW": "2000",
            "LONGREAD_CHAIN_CHUNK_TOKENS": "1400",
            "LONGREAD_CHAIN_UNIT_TOKENS": "200",
            "LONGREAD_LLM_CACHE": "false",
        }
    )
    from longread import engine
    from longread.agents.planner import plan_question
    from longread.llm import LLMClient
    from longread.storage.db import session_scope
    from longread.testing.factories import document_with_facts

    rows = []
    with session_scope() as session:
        for run, seed in (("cold", 0), ("warm", 1)):
            text = document_with_facts(args.paragraphs, {args.paragraphs * 2 // 3: FACT}, seed=seed)
            document, _ = engine.store_text(session, filename=f"bench-{seed}.txt", text=text)
            for name in STRATEGIES:
                option = plan_question(session, document, QUESTION, LLMClient(MODEL), strategy=name).option(name)
                assert option is not None
                answer = engine.ask(session, document, QUESTION, strategy=name, model=MODEL)
                actual_tokens = answer.prompt_tokens + answer.completion_tokens
                row = {
                    "run": run,
                    "strategy": name,
                    "calls": [option.calls, answer.llm_calls],
                    "prompt_tokens": [option.prompt_tokens, answer.prompt_tokens],
                    "tokens": [option.tokens, actual_tokens],
                    "tokens_ratio": round(option.tokens / max(actual_tokens, 1), 2),
                }
                rows.append(row)
                print(
                    f"{run:4} {name:6} calls {option.calls}/{answer.llm_calls}  "
                    f"prompt {option.prompt_tokens}/{answer.prompt_tokens}  "
                    f"tokens {option.tokens}/{actual_tokens} ({row['tokens_ratio']}x)"
                )
    out = Path(__file__).parent / "results" / "planner_estimates.json"
    out.write_text(json.dumps({"model": MODEL, "paragraphs": args.paragraphs, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
