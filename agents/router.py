"""What `auto` knows about a question and the machine: its kind (look-up or whole text) and whether the local
model can run. The choice itself is `agents.planner`'s, by expected quality and measured cost."""

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
