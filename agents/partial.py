"""Partial drafts: what a strategy would answer if it had to stop now.

A strategy hands its best draft so far to a `PartialFn` as it goes (the chain its carried unit, the
tree walk its working memory, retrieval strategies their evidence before the answering call). When a
job reaches a budget cap, the engine stores the last such draft as the answer, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from longread.agents.base import AnswerDraft

PartialFn = Callable[[AnswerDraft], None]

EVIDENCE_ONLY = "Reading stopped before the answering call; the passages found so far are cited below."


def no_partial(_draft: AnswerDraft) -> None:
    return None
