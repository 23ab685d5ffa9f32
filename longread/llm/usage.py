"""Per-job accounting of LLM calls, tokens and cost, safe to share between threads, and the job's budget.

The budget travels with the Usage because the Usage already reaches every model call of a job (the
client records into it), so the one LLM layer can refuse the call that would overrun a cap without any
strategy knowing about caps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TypedDict

from longread.failures import Failure

MAX_SAMPLES = 512
"""Per-call timings kept for the speed measurements; a long job's first calls are plenty."""


class BudgetExceeded(Exception):
    """A job reached one of its caps; raised before the model call that would overrun it.

    Not an LLMError: nothing failed, the job stops on purpose and keeps what it read so far.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    """A job's caps; None means no cap. Seconds count from when the budget was made (the job's start)."""

    max_cost_usd: float | None = None
    max_seconds: float | None = None
    max_tokens: int | None = None
    started: float = field(default_factory=time.monotonic, compare=False)

    @property
    def capped(self) -> bool:
        return any(cap is not None for cap in (self.max_cost_usd, self.max_seconds, self.max_tokens))

    def as_dict(self) -> dict[str, float | int | None]:
        return {"max_cost_usd": self.max_cost_usd, "max_seconds": self.max_seconds, "max_tokens": self.max_tokens}


@dataclass(frozen=True)
class CallSample:
    """One uncached model call: its tokens, the completion cap asked for and the seconds the model took
    (queueing excluded)."""

    model: str
    max_tokens: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class UsageCounters(TypedDict):
    """A usage roll-up under the column names of stored rows (answers, jobs) and evaluation records."""

    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass
class Usage:
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0  # failed provider requests retried inside paid calls; not a stored-row counter
    last_retry: Failure | None = None  # what the latest of those retried requests failed with
    budget: Budget | None = None
    samples: list[CallSample] = field(default_factory=list, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(
        self,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float,
        cached: bool,
        seconds: float | None = None,
        model: str = "",
        max_tokens: int = 0,
        retries: int = 0,
        retry_failure: Failure | None = None,
    ) -> None:
        """A cache hit counts as a cached call with no new tokens or cost: a re-run never pays twice.

        `retries` failed requests went before this call's answer, the latest failing with `retry_failure`.
        """
        with self._lock:
            if cached:
                self.cached_calls += 1
                return
            self.calls += 1
            self.retries += retries
            if retries and retry_failure is not None:
                self.last_retry = retry_failure
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cost_usd += cost_usd
            if seconds is not None and len(self.samples) < MAX_SAMPLES:
                self.samples.append(CallSample(model, max_tokens, prompt_tokens, completion_tokens, seconds))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def check_budget(self, *, prompt_tokens: int = 0, prompt_cost_usd: float = 0.0) -> None:
        """Raise BudgetExceeded when the next call (with this prompt) would go past a cap.

        Only what is known before the call counts against it: the prompt's tokens and price. The reply
        may still carry a job a little past a token or cost cap; the call after it is then refused.
        """
        budget = self.budget
        if budget is None:
            return
        if budget.max_seconds is not None:
            elapsed = time.monotonic() - budget.started
            if elapsed >= budget.max_seconds:
                raise BudgetExceeded(f"time cap reached: {elapsed:.1f} s of {budget.max_seconds:g} s")
        with self._lock:
            tokens, cost = self.tokens, self.cost_usd
        if budget.max_tokens is not None and tokens + prompt_tokens > budget.max_tokens:
            raise BudgetExceeded(
                f"token cap reached: {tokens} tokens used, the next call needs {prompt_tokens} more "
                f"(cap {budget.max_tokens})"
            )
        if budget.max_cost_usd is not None and cost + prompt_cost_usd > budget.max_cost_usd:
            raise BudgetExceeded(f"cost cap reached: ${cost:.4f} spent of ${budget.max_cost_usd:g}")

    def as_dict(self) -> UsageCounters:
        """The counters under the names every stored row uses: answers, jobs, evaluation records."""
        with self._lock:
            return {
                "llm_calls": self.calls,
                "cached_calls": self.cached_calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost_usd, 6),
            }

    @classmethod
    def of(cls, row: object) -> Usage:
        """The counters a stored row (a job, an answer) holds, as a Usage."""
        return cls(
            calls=int(getattr(row, "llm_calls", 0) or 0),
            cached_calls=int(getattr(row, "cached_calls", 0) or 0),
            prompt_tokens=int(getattr(row, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(row, "completion_tokens", 0) or 0),
            cost_usd=float(getattr(row, "cost_usd", 0.0) or 0.0),
            retries=int(getattr(row, "llm_retries", 0) or 0),
            last_retry=_stored_failure(row),
        )

    def __add__(self, other: Usage) -> Usage:
        """Counters of both (e.g. what earlier attempts of a job spent plus this attempt); no budget."""
        mine, theirs = self.as_dict(), other.as_dict()
        return Usage(
            calls=mine["llm_calls"] + theirs["llm_calls"],
            cached_calls=mine["cached_calls"] + theirs["cached_calls"],
            prompt_tokens=mine["prompt_tokens"] + theirs["prompt_tokens"],
            completion_tokens=mine["completion_tokens"] + theirs["completion_tokens"],
            cost_usd=mine["cost_usd"] + theirs["cost_usd"],
            retries=self.retries + other.retries,
            last_retry=other.last_retry or self.last_retry,
        )


def _stored_failure(row: object) -> Failure | None:
    """The last retried failure a job row holds, if any."""
    code, message = getattr(row, "llm_last_retry_code", None), getattr(row, "llm_last_retry_error", None)
    return Failure(str(code), str(message)) if code and message else None
