"""Types every reading strategy shares: progress reporting and the answer draft it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from longread.progress import JobCanceled, ProgressFn, no_progress

if TYPE_CHECKING:
    from sqlmodel import Session

    from longread.llm import LLMClient
    from longread.storage.models import Document, Segment

__all__ = ["AnswerDraft", "Evidence", "JobCanceled", "ProgressFn", "ReadRequest", "UnknownStrategy", "no_progress"]


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


class UnknownStrategy(ValueError):
    """A strategy name that no declaration matches (or one that cannot do what was asked)."""


@dataclass
class ReadRequest:
    """Everything a strategy's reader gets; `question` is None for a summary."""

    session: Session
    document: Document
    question: str | None
    client: LLMClient
    progress: ProgressFn
    answer_with: str | None = None
    partial: AnswerDraft | None = None
    """The best draft so far, kept in case a budget cap stops the reading before its answer."""
    conversation: str = ""
    """A follow-up's recent turns (longread.conversation), for the answering prompt's `conversation`."""

    def note_partial(self, draft: AnswerDraft) -> None:
        """Strategies call this as they go (the chain with its unit, the tree walk with its working memory,
        retrieval with its evidence): a job stopped by a cap stores the last draft noted."""
        self.partial = draft

    def segments(self) -> list[Segment]:
        from longread.agents.segments import ensure_segments

        return ensure_segments(self.session, self.document, self.client.model)

    def require_question(self) -> str:
        if self.question is None:
            raise UnknownStrategy("this strategy needs a question")
        return self.question
