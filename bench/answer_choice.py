"""Other ways for the local model to choose its answer phrase, on the shortlist reader's own evidence.

Every question of the books folder (`../shared/bookqa` by default, or `--books DIR`) is read with the
shortlist reader and the bundled model (`engine.ask`); the evidence of its first round (the passages it
answered from, best first) is kept, and the answer phrase is chosen again from that same evidence:

- `reader`: the reader's rule (`strategy.scored_phrases`: likelihood plus the evidence prior);
- `top3`: the same rule over the re-ranker's best three passages only;
- `per_passage`: each passage alone as the evidence; a phrase's best score over the passages holding it;
- `token_attention`: the reader's score plus the question's calibrated attention at the phrase's
  mentions in the evidence (summed over its tokens, best mention, z-scored over the phrases);
- `sentence_upr`: the evidence sentences holding one of the reader's ten best phrases, ranked by how
  likely the model finds the question after them (query likelihood, as UPR re-ranks); the reader's best
  phrase within the best sentence.

Accuracy is the books suite's (the phrase contains the expected answer). Figures go to
`bench/results/answer_choice.json`.

    python -m bench.answer_choice [--books DIR] [--limit N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from pathlib import Path
from typing import Any

from bench.embedded_runs import add_books_arguments, use_embedded_database

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"
MODEL = "local/default"
_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"”’']?\s+")
_UPR_PROMPT = "question_likelihood"


def evidence_passages(text: str, trace: list[dict[str, Any]]) -> list[str]:
    """The first round's evidence, best first, whitespace collapsed."""
    from longread.evaluation.losses import first_round

    read = sorted((c for c in first_round(trace)["candidates"] if c["evidence"]), key=lambda c: c["attention_rank"])
    return [" ".join(text[c["start"] : c["end"]].split()) for c in read]


def best_of(scores: dict[str, float]) -> str:
    return max(scores, key=lambda phrase: scores[phrase])


def per_passage(question: str, passages: list[str]) -> str:
    from longread.agents.shortlist.strategy import NOT_STATED, scored_phrases

    best: dict[str, float] = {}
    for passage in passages:
        for phrase, score, _ in scored_phrases(MODEL, question, [passage])[0]:
            if phrase != NOT_STATED:
                best[phrase] = max(best.get(phrase, float("-inf")), score)
    return best_of(best) if best else NOT_STATED


def mention_attention(question: str, passages: list[str], phrases: list[str]) -> dict[str, float]:
    """Per phrase: the question's calibrated attention summed over its best mention's tokens."""
    from longread.agents.attention.scoring import build_layout, raw_token_scores
    from longread.agents.shortlist.rerank import rerank_config
    from longread.local_model import load_local_model

    lm = load_local_model(None)
    config = rerank_config(lm, "all")
    joined = "\n\n".join(reversed(passages))
    encoded = lm.tokenizer(joined, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    scores = raw_token_scores(
        lm, build_layout(lm.tokenizer, question, config.null_query), [list(encoded["input_ids"])], config
    )[0]
    found: dict[str, float] = {}
    for phrase in phrases:
        for match in re.finditer(re.escape(phrase), joined, re.IGNORECASE):
            tokens = [i for i, (a, b) in enumerate(offsets) if b > match.start() and a < match.end()]
            if tokens:
                found[phrase] = max(found.get(phrase, float("-inf")), float(scores[tokens].float().sum()))
    return found


def token_attention(question: str, passages: list[str], reader: dict[str, float]) -> str:
    attention = mention_attention(question, passages, list(reader))
    if len(attention) < 2:
        return best_of(reader)
    mean, spread = statistics.mean(attention.values()), statistics.pstdev(attention.values()) or 1.0
    return best_of({p: s + (attention[p] - mean) / spread for p, s in reader.items() if p in attention})


def question_likelihood(question: str, sentences: list[str]) -> list[float]:
    """Mean log-probability per token of the question after each sentence, in padded batches."""
    import torch

    from longread.llm.prompts import render_prompt
    from longread.local_model import load_local_model

    lm = load_local_model(None)
    asked = list(lm.tokenizer(" " + question, add_special_tokens=False)["input_ids"])
    scores: list[float] = []
    for first in range(0, len(sentences), 16):
        rows = [
            list(lm.tokenizer(render_prompt(_UPR_PROMPT, sentence=s), add_special_tokens=True)["input_ids"]) + asked
            for s in sentences[first : first + 16]
        ]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        with lm.lock, torch.inference_mode():
            logp = (
                lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits.float().log_softmax(-1)
            )
        for i, row in enumerate(rows):
            start = len(row) - len(asked)
            scores.append(sum(float(logp[i, t - 1, row[t]]) for t in range(start, len(row))) / len(asked))
    return scores


def sentence_upr(question: str, passages: list[str], reader: dict[str, float]) -> str:
    top = sorted(reader, key=lambda p: -reader[p])[:10]
    sentences = [
        (sentence, held)
        for passage in passages
        for sentence in _SENTENCE_END.split(passage)
        if len(sentence) > 20 and (held := [p for p in top if p.lower() in sentence.lower()])
    ]
    if not sentences:
        return best_of(reader)
    likelihood = question_likelihood(question, [s[:500] for s, _ in sentences])
    held = sentences[max(range(len(sentences)), key=lambda i: likelihood[i])][1]
    return max(held, key=lambda p: reader[p])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_books_arguments(parser)
    args = parser.parse_args(argv)
    use_embedded_database(args.data_dir, "longread-answer-choice-")

    from longread import engine
    from longread.agents.shortlist.strategy import NOT_STATED, scored_phrases
    from longread.evaluation.base import Outcome
    from longread.evaluation.suites.books import BooksSuite
    from longread.local_model import load_local_model
    from longread.storage.db import session_scope

    suite = BooksSuite(args.books)
    load_local_model(MODEL)
    rows: list[dict[str, Any]] = []
    with session_scope() as session:
        documents: dict[str, Any] = {}
        for item in suite.items(args.limit):
            if item.doc_key not in documents:
                filename, text = suite.document(item)
                documents[item.doc_key] = engine.store_text(session, filename=filename, text=text)[0]
            document, question = documents[item.doc_key], str(item.question)
            answer = engine.ask(session, document, question, strategy="shortlist", model=MODEL)
            passages = evidence_passages(document.text, answer.trace)
            ranked = scored_phrases(MODEL, question, passages)[0]
            reader = {phrase: score for phrase, score, _ in ranked if phrase != NOT_STATED}
            chosen = {
                "reader": ranked[0][0],
                "top3": scored_phrases(MODEL, question, passages[:3])[0][0][0],
                "per_passage": per_passage(question, passages),
                "token_attention": token_attention(question, passages, reader) if reader else NOT_STATED,
                "sentence_upr": sentence_upr(question, passages, reader) if reader else NOT_STATED,
            }
            right = {
                way: suite.score(item, Outcome(phrase, []), document.text, None)["accuracy"] == 1.0
                for way, phrase in chosen.items()
            }
            rows.append({"id": item.item_id, "expected": list(item.references), "chosen": chosen, "right": right})
            print(item.item_id, " ".join(f"{w}={'+' if r else '-'}" for w, r in right.items()), flush=True)
    summary = {way: sum(r["right"][way] for r in rows) for way in rows[0]["right"]} if rows else {}
    result = {"model": MODEL, "questions": len(rows), "right": summary, "per_question": rows}
    print(json.dumps({"questions": len(rows), "right": summary}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "answer_choice.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
