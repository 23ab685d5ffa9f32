"""The one way passages are picked under a token budget, shared by every strategy that ranks passages.

Items come best first; each is taken if it fits what is left of the budget. An item too large for what
is left is skipped rather than ending the selection, so one long high-ranked passage never starves the
shorter ones after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def within_budget(
    ranked: Iterable[T],
    budget: int,
    cost: Callable[[T], int],
    *,
    first_always: bool = False,
    max_items: int | None = None,
) -> list[T]:
    """The items of `ranked` (best first, order kept) whose costs fit `budget` together.

    `first_always` takes the first item even when it alone is over budget (a reader must see something);
    `max_items` caps the count, so a budget does not fill up with many tiny passages.
    """
    chosen: list[T] = []
    left = budget
    for item in ranked:
        if max_items is not None and len(chosen) >= max_items:
            break
        n = cost(item)
        if n <= left or (first_always and not chosen):
            chosen.append(item)
            left -= n
    return chosen
