"""ACLSum from `aclsum==0.1.2`: full ACL papers with aspect reference summaries.

`aclsum/dataset/{train,val,test}.jsonl` hold 100/50/100 records with `id`, `title` and `summary`
(`challenge`, `approach`, `outcome`, one sentence each); `aclsum/dataset/paper_jsons/<id>.json` is
the S2ORC full text (`pdf_parse.body_text[].{section,text}`). The document is title, abstract and
body with section headings. These are summary jobs (no question): accuracy is ROUGE-Lsum F1 against
the three reference sentences, with ROUGE-1/2/L reported beside it; evidence recall does not apply.
"""

from __future__ import annotations

from typing import Any

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.data import read_json, read_jsonl
from longread.evaluation.scoring import rouge, strip_citations
from longread.ingest import normalize_text
from longread.tokens import token_counter_for

SPLITS = {"train": 100, "val": 50, "test": 100}
ASPECTS = ("challenge", "approach", "outcome")


def paper_text(paper: dict[str, Any]) -> str:
    """Title, abstract and body paragraphs, with a heading line whenever the section changes."""
    parts = [paper.get("title") or ""]
    parse = paper.get("pdf_parse") or {}
    abstract = " ".join(p.get("text", "") for p in parse.get("abstract") or []) or paper.get("abstract") or ""
    if abstract:
        parts += ["Abstract", abstract]
    section = None
    for paragraph in parse.get("body_text") or []:
        if paragraph.get("section") and paragraph["section"] != section:
            section = paragraph["section"]
            parts.append(f"{paragraph.get('sec_num') or ''} {section}".strip())
        parts.append(paragraph.get("text", ""))
    return normalize_text("\n\n".join(p for p in parts if p))


class ACLSumSuite(Suite):
    name = "aclsum"
    kind = "summary"
    accuracy_metric = "ROUGE-Lsum F1 against the challenge/approach/outcome reference"
    recall_metric = "not applicable (summaries)"

    def __init__(self, split: str = "test") -> None:
        if split not in SPLITS:
            raise ValueError(f"ACLSum split must be one of {', '.join(SPLITS)}")
        self.split = split
        self._documents: dict[str, str] = {}

    def items(self, limit: int | None = None) -> list[EvalItem]:
        counter = token_counter_for("cl100k")
        items = []
        for record in read_jsonl("aclsum", f"dataset/{self.split}.jsonl")[:limit]:
            text = self._text(record["id"])
            items.append(
                EvalItem(
                    item_id=record["id"],
                    doc_key=record["id"],
                    question=None,
                    references=tuple(record["summary"][a] for a in ASPECTS),
                    task=self.split,
                    length=counter.count(text),
                    meta={"title": record.get("title", "")},
                )
            )
        return items

    def _text(self, paper_id: str) -> str:
        if paper_id not in self._documents:
            self._documents[paper_id] = paper_text(read_json("aclsum", f"dataset/paper_jsons/{paper_id}.json"))
        return self._documents[paper_id]

    def document(self, item: EvalItem) -> tuple[str, str]:
        return f"aclsum-{item.doc_key}.txt", self._text(item.doc_key)

    def retrieval_recall(self, item: EvalItem, read: list[tuple[int, int]], text: str) -> float | None:
        return None

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        scores: dict[str, float | None] = dict(rouge(strip_citations(outcome.answer), item.references))
        scores["accuracy"] = scores["rougeLsum"]
        scores["evidence_recall"] = None
        return scores
