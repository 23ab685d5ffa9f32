"""Choosing a strategy for `auto`: by document length, the model's window and the kind of question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.util import find_spec

_AGGREGATION = re.compile(
    r"\b(summar\w*|overall|main (themes?|points?|arguments?|ideas?)|list (all|every)|all the|every\b|"
    r"how many times|throughout|over the course|timeline|evolv\w*|compare|contrast|whole (book|document|report)|"
    r"in general|trends?)\b",
    re.I,
)
FULL_WINDOW_SHARE = 0.75


@dataclass(frozen=True)
class Route:
    strategy: str
    reason: str


def local_model_available() -> bool:
    return all(find_spec(name) is not None for name in ("torch", "transformers"))


def is_aggregation(question: str) -> bool:
    """Questions about the whole text rather than one place in it."""
    return bool(_AGGREGATION.search(question))


def choose_strategy(question: str, document_tokens: int, context_window: int, *, local_available: bool) -> Route:
    if document_tokens <= context_window * FULL_WINDOW_SHARE:
        return Route("full", f"the document ({document_tokens} tokens) fits the model's {context_window}-token window")
    if is_aggregation(question):
        return Route("chain", "the question asks about the whole text, so every part is read in order")
    if local_available:
        return Route(
            "attention",
            f"a retrieval-like question over {document_tokens} tokens: a local model's attention finds the evidence",
        )
    return Route("tree", f"a retrieval-like question over {document_tokens} tokens: navigate the summary tree")
