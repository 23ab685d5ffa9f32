"""Calls, tokens and shape of a summary-tree build and a chain-of-agents pass over a long document.

Uses the scripted model (served through litellm) so the figures are structural: how many LLM calls and
tokens each strategy spends for a given document length, segment size, fan-out and worker window.

    python -m bench.tree_and_chain_calls --tokens 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="document length in cl100k tokens")
    parser.add_argument("--segment-tokens", type=int, default=1000)
    parser.add_argument("--fanout", type=int, default=8)
    parser.add_argument("--chain-window", type=int, default=8000)
    args = parser.parse_args()

    os.environ["LONGREAD_DATA_DIR"] = tempfile.mkdtemp(prefix="longread-bench-")
    os.environ["LONGREAD_SEGMENT_TOKENS"] = str(args.segment_tokens)
    os.environ["LONGREAD_TREE_FANOUT"] = str(args.fanout)
    os.environ["LONGREAD_CHAIN_CHUNK_TOKENS"] = str(args.chain_window)

    from longread import engine
    from longread.agents.memwalker.tree import level_sizes, segment_count
    from longread.llm import Usage
    from longread.storage.db import session_scope
    from longread.testing.factories import document_with_facts
    from longread.tokens import token_counter_for

    counter = token_counter_for("cl100k")
    paragraphs = max(1, args.tokens // 137)  # filler paragraphs average ~137 cl100k tokens
    text = document_with_facts(paragraphs, {paragraphs * 2 // 3: "The code of the violet harbor is 4721."})
    model = "scripted/longread.testing.doubles.reader"
    with session_scope() as session:
        document, _ = engine.store_text(session, filename="bench.txt", text=text)
        n_tokens = counter.count(text)
        usage = Usage()
        started = time.perf_counter()
        tree = engine.build_tree(session, document, model=model, usage=usage)
        build_s = time.perf_counter() - started
        sizes = level_sizes(segment_count(session, tree), args.fanout)
        ask_usage = Usage()
        answer = engine.ask(
            session, document, "What is the code of the violet harbor?", strategy="tree", model=model, usage=ask_usage
        )
        chain_usage = Usage()
        engine.ask(
            session,
            document,
            "What is the code of the violet harbor?",
            strategy="chain",
            model=model,
            usage=chain_usage,
        )

    print(f"document: {n_tokens} tokens, {sizes[0]} segments of <= {args.segment_tokens} tokens")
    print(
        f"tree: levels {sizes} (fan-out {args.fanout}), {usage.calls} calls for {sum(sizes)} nodes "
        f"(structural minimum {sum(sizes)}), {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"{build_s:.1f}s with the scripted model"
    )
    print(
        f"tree navigation: {ask_usage.calls} calls ({len(answer.trace)} steps), answer cites "
        f"{[c['label'] for c in answer.citations]}"
    )
    print(
        f"chain of agents: {chain_usage.calls} calls ({chain_usage.calls - 1} workers + 1 manager), "
        f"{chain_usage.prompt_tokens} prompt tokens ({chain_usage.prompt_tokens / n_tokens:.2f}x the document)"
    )


if __name__ == "__main__":
    main()
