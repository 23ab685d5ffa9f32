"""The shortlist strategy as the engine calls it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longread.agents.base import AnswerDraft
    from longread.agents.registry import ReadRequest

STRATEGY = "shortlist"


def read_with_shortlist(request: ReadRequest) -> AnswerDraft:
    """Shortlist passages by BM25 + dense fusion, re-rank them by attention, answer from the best."""
    raise NotImplementedError("the shortlist reader is being built")
