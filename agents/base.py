"""Types every reading strategy shares: progress reporting and the answer draft it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total); may raise JobCanceled to stop the work between steps."""


class JobCanceled(Exception):
    """Raised from a progress callback when the user canceled the job."""


def no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class Evidence:
    """One passage a strategy actually read and may cite: a segment, or a span inside one."""

    segment_index: int
    start: int
    end: int


@dataclass
class AnswerDraft:
    """What a strategy hands back before citations are checked and the answer is stored.

    `cited` are the segment indexes (or exact spans) the model named; `read` is what the strategy
    actually showed the model, which is the only evidence a citation may point to.
    """

    answer: str
    strategy: str
    cited: list[Evidence] = field(default_factory=list)
    read: list[Evidence] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    strategy_reason: str = ""
    unknown_citations: int = 0
    segment_tokens: int | None = None
    """Size of the segmentation the [S<n>] labels refer to, when not the configured default."""
