"""Questions about whole books: any folder of texts plus a `questions.json`.

The folder holds `texts/` (any format `longread ingest` reads) and `questions.json`, either a list or
`{"questions": [...]}` of `{doc, question, expect}`; `expect` is a short answer (or a list of accepted
answers) that occurs word for word in the book. The default folder is the project's development set
(`../shared/bookqa` beside the repository: three Austen novels, 24 questions); `LONGREAD_BOOKS_DIR` or
`longread eval books --books DIR` points it at your own books.

Accuracy: the answer contains `expect` (case-insensitive). Evidence recall: a cited quote, the exact
span a citation quotes rather than its whole segment, contains it. Both ignore how whitespace runs: a
phrase broken across the book's printed lines still counts.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.scoring import cited_text, string_match_part, strings_in, strip_citations

ENV = "LONGREAD_BOOKS_DIR"
QUESTIONS_FILE = "questions.json"


def default_folder() -> Path:
    """`LONGREAD_BOOKS_DIR`, else the development set in `shared/bookqa` beside the repository."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared" / "bookqa"


def flat(text: str) -> str:
    """Lower case with every run of whitespace one space."""
    return " ".join(text.split()).lower()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "book"


class BooksSuite(Suite):
    name = "books"
    accuracy_metric = "the answer contains the expected phrase (case-insensitive)"
    recall_metric = "a cited quote contains the expected phrase (case-insensitive)"

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self._questions: list[dict[str, Any]] | None = None
        self._documents: dict[str, tuple[str, str]] = {}

    def _text_path(self, doc: str) -> Path:
        for base in (self.folder / "texts", self.folder):
            path = base / doc
            if path.is_file():
                return path
        raise ValueError(f"{QUESTIONS_FILE} names '{doc}', which is not in {self.folder.name}/texts")

    def _load(self) -> list[dict[str, Any]]:
        if self._questions is not None:
            return self._questions
        path = self.folder / QUESTIONS_FILE
        if not path.is_file():
            raise ValueError(f"no {QUESTIONS_FILE} in the books folder {self.folder} (set {ENV} or --books)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{QUESTIONS_FILE} is not valid JSON (line {exc.lineno})") from None
        entries = raw.get("questions") if isinstance(raw, dict) else raw
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{QUESTIONS_FILE} holds no questions (a list, or an object with 'questions')")
        questions = []
        for n, entry in enumerate(entries, start=1):
            expect = entry.get("expect") if isinstance(entry, dict) else None
            accepted = [expect] if isinstance(expect, str) else expect
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("doc"), str)
                or not str(entry.get("question") or "").strip()
                or not isinstance(accepted, list)
                or not accepted
                or not all(isinstance(a, str) and a.strip() for a in accepted)
            ):
                raise ValueError(f"question {n} in {QUESTIONS_FILE} needs 'doc', 'question' and 'expect'")
            self._text_path(entry["doc"])
            questions.append({"doc": entry["doc"], "question": entry["question"].strip(), "expect": accepted})
        self._questions = questions
        return questions

    def items(self, limit: int | None = None) -> list[EvalItem]:
        """Questions in the file's order, numbered within their book; `limit` keeps the first N."""
        items = []
        seen: dict[str, int] = {}
        for entry in self._load():
            book = _slug(Path(entry["doc"]).stem)
            seen[book] = seen.get(book, 0) + 1
            items.append(
                EvalItem(
                    item_id=f"{book}-{seen[book]:02d}",
                    doc_key=entry["doc"],
                    question=entry["question"],
                    references=tuple(entry["expect"]),
                    task=book,
                )
            )
        return items[:limit] if limit else items

    def document(self, item: EvalItem) -> tuple[str, str]:
        if item.doc_key not in self._documents:
            from longread.ingest import load_document

            path = self._text_path(item.doc_key)
            self._documents[item.doc_key] = (path.name, load_document(path.name, path.read_bytes()))
        return self._documents[item.doc_key]

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        # A book keeps its printed line breaks ("Box\nHill"): phrases are matched with whitespace collapsed.
        book = flat(text)
        present = [flat(s) for s in strings_in(book, [flat(r) for r in item.references])]
        quoted = flat(cited_text(outcome.citations, text, whole_segments=False))
        return {
            "accuracy": string_match_part(flat(strip_citations(outcome.answer)), [flat(r) for r in item.references]),
            "evidence_recall": (1.0 if any(s in quoted for s in present) else 0.0) if present else None,
        }
