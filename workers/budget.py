"""A job's budget caps as the tasks that do its work see them: what is left of each cap.

The caps live in the job's params (`max_cost_usd`, `max_seconds`, `max_tokens`, set by the API and the
CLI). A job's work is spread over tasks (tree nodes, chain steps, the answer), each with its own Usage,
so every task gets the caps less what the job already spent, and a clock that started when the job did.
"""

from __future__ import annotations

import time
from typing import Any

from longread.llm.usage import Budget, BudgetExceeded, Usage
from longread.storage.jobs import as_utc
from longread.storage.models import Job, utcnow

CAP_PARAMS = ("max_cost_usd", "max_seconds", "max_tokens")


def caps_params(*, max_cost_usd: float | None, max_seconds: float | None, max_tokens: int | None) -> dict[str, Any]:
    """The caps as job params (unset caps are left out)."""
    values = {"max_cost_usd": max_cost_usd, "max_seconds": max_seconds, "max_tokens": max_tokens}
    return {name: value for name, value in values.items() if value is not None}


def remaining_caps(job: Job) -> Budget | None:
    """The job's caps less what it has spent so far; None when the job has no caps."""
    params = job.params or {}
    if not any(params.get(name) is not None for name in CAP_PARAMS):
        return None
    started = as_utc(job.started_at)
    elapsed = (utcnow() - started).total_seconds() if started else 0.0
    cost, seconds, tokens = (params.get(name) for name in CAP_PARAMS)
    return Budget(
        max_cost_usd=None if cost is None else float(cost) - job.cost_usd,
        max_seconds=None if seconds is None else float(seconds),
        max_tokens=None if tokens is None else int(tokens) - job.prompt_tokens - job.completion_tokens,
        started=time.monotonic() - elapsed,
    )


def stay_local(job: Job) -> bool | None:
    value = (job.params or {}).get("stay_local")
    return None if value is None else bool(value)


def exhausted(job: Job) -> str | None:
    """Why the job can make no further call (a cap it already reached), or None."""
    caps = remaining_caps(job)
    if caps is None:
        return None
    try:
        Usage(budget=caps).check_budget()
    except BudgetExceeded as exc:
        return exc.reason
    return None
