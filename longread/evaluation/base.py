"""What a suite hands the runner (items and their documents) and what scoring hands back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Judge = Callable[[str, str, str], bool]
"""judge(question, official_answer, candidate_answer) -> correct?"""


@dataclass(frozen=True)
class EvalItem:
    """One question (or one summary job when `question` is None) about one document."""

    item_id: str
    doc_key: str
    question: str | None
    references: tuple[str, ...]
    task: str = ""
    length: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Outcome:
    """What a strategy produced for an item, in the stored answer's shape."""

    answer: str
    citations: list[dict[str, Any]]
    read: list[tuple[int, int]] | None = None
    """Character spans the strategy showed the model, where the strategy reports them (the baselines)."""


class Suite(ABC):
    """A benchmark: its items, their documents, and how an answer is scored."""

    name: str = ""
    kind: Literal["qa", "summary"] = "qa"
    accuracy_metric: str = "accuracy"
    recall_metric: str = "evidence recall"

    @abstractmethod
    def items(self, limit: int | None = None) -> list[EvalItem]:
        """Items in a fixed order; `limit` keeps a fixed sample (see each suite for its meaning)."""

    @abstractmethod
    def document(self, item: EvalItem) -> tuple[str, str]:
        """(filename, normalised text) of the item's document."""

    def retrieval_recall(self, item: EvalItem, read: list[tuple[int, int]], text: str) -> float | None:
        """Share of the gold strings occurring in the document that lie inside the shown spans."""
        from longread.evaluation.scoring import strings_in

        present = strings_in(text, item.references)
        if not present:
            return None
        shown = "\n".join(text[a:b] for a, b in read).lower()
        return sum(1.0 for s in present if s.lower() in shown) / len(present)

    @abstractmethod
    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        """At least `accuracy` (0–1) and `evidence_recall` (0–1, or None where it does not apply)."""
