"""Progress reporting shared by every layer: strategies report through it, the job repository implements it.

It sits at the bottom so that storage (the job rows that record progress and honour cancel) need not
import the strategies that call it.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total); may raise JobCanceled to stop the work between steps."""


class JobCanceled(Exception):
    """Raised from a progress callback when the user canceled the job."""


def no_progress(_stage: str, _done: int, _total: int) -> None:
    return None
