"""ChatRAG-Bench doc2dial (test) from `nvidia-lm-eval`: `lm_eval/tasks/chatrag_bench/dataset/`.

`documents.json` maps four government-site collections (ssa 170 chunks, va 356, dmv 438, studentaid
275; 65K–154K tokens) to chunk lists; `nvidia_dragon_multiturn_retrieved.jsonl` is one JSON array of
3,939 conversational turns with `document`, `messages`, `answers` and `ground_truth_ctx` (the gold
chunk index). A collection's chunks, joined by blank lines, are one long document. Accuracy is
ChatRAG's token F1 against the gold agent turn; evidence recall is whether a cited span overlaps the
gold chunk. `--limit N` takes the first N of a fixed seeded shuffle, so a sample spans all four.
"""

from __future__ import annotations

import random
from typing import Any

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.data import read_json
from longread.evaluation.scoring import span_evidence_recall, strip_citations, token_f1
from longread.ingest import normalize_text
from longread.tokens import token_counter_for

_DATASET = "tasks/chatrag_bench/dataset"
QUESTIONS = 3939
DOMAINS = {"ssa": 1055, "va": 1131, "dmv": 1006, "studentaid": 747}
CHUNKS = {"ssa": 170, "va": 356, "dmv": 438, "studentaid": 275}
SAMPLE_SEED = 0


def merge_turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """ChatRAG's process_messages: consecutive turns of one role are joined."""
    merged: list[dict[str, str]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {"role": message["role"], "content": merged[-1]["content"] + " " + message["content"]}
        else:
            merged.append({"role": message["role"], "content": message["content"]})
    return merged


def conversation_question(messages: list[dict[str, str]]) -> str:
    """The last user turn, preceded by the earlier turns it depends on."""
    turns = merge_turns(messages)
    last = turns[-1]["content"].strip()
    if len(turns) == 1:
        return last
    history = "\n".join(f"{'User' if t['role'] == 'user' else 'Assistant'}: {t['content'].strip()}" for t in turns[:-1])
    return f"Conversation so far:\n{history}\n\nLatest user question: {last}"


def join_chunks(chunks: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """One normalised document from the chunks, with each chunk's character span in it."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for chunk in chunks:
        piece = normalize_text(chunk)
        if pieces:
            pos += 2
        spans.append((pos, pos + len(piece)))
        pieces.append(piece)
        pos += len(piece)
    return "\n\n".join(pieces), spans


class Doc2DialSuite(Suite):
    name = "doc2dial"
    accuracy_metric = "ChatRAG token F1 against the gold agent turn"
    recall_metric = "a cited span overlaps the gold chunk"

    def __init__(self) -> None:
        self._documents: dict[str, tuple[str, list[tuple[int, int]]]] = {}
        self._records: list[dict[str, Any]] | None = None

    def _load(self) -> list[dict[str, Any]]:
        if self._records is None:
            documents = read_json("lm_eval", f"{_DATASET}/documents.json")
            for domain, chunks in documents.items():
                self._documents[domain] = join_chunks(chunks)
            self._records = read_json("lm_eval", f"{_DATASET}/nvidia_dragon_multiturn_retrieved.jsonl")
        return self._records

    def items(self, limit: int | None = None) -> list[EvalItem]:
        records = self._load()
        order = list(range(len(records)))
        random.Random(SAMPLE_SEED).shuffle(order)
        counter = token_counter_for("cl100k")
        lengths = {domain: counter.count(text) for domain, (text, _) in self._documents.items()}
        items = []
        for index in order[:limit]:
            record = records[index]
            domain = record["document"]
            gold = int(record["ground_truth_ctx"])
            items.append(
                EvalItem(
                    item_id=f"{domain}/{index:04d}",
                    doc_key=domain,
                    question=conversation_question(record["messages"]),
                    references=tuple(record["answers"]),
                    task=domain,
                    length=lengths[domain],
                    meta={"gold_chunk": gold, "gold_span": self._documents[domain][1][gold]},
                )
            )
        return items

    def document(self, item: EvalItem) -> tuple[str, str]:
        self._load()
        return f"doc2dial-{item.doc_key}.txt", self._documents[item.doc_key][0]

    def retrieval_recall(self, item: EvalItem, read: list[tuple[int, int]], text: str) -> float | None:
        start, end = item.meta["gold_span"]
        return 1.0 if any(a < end and start < b for a, b in read) else 0.0

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        f1 = max(token_f1(strip_citations(outcome.answer), ref) for ref in item.references if ref.strip())
        start, end = item.meta["gold_span"]
        return {"accuracy": f1, "evidence_recall": span_evidence_recall(outcome.citations, (start, end))}
