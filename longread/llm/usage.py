"""Per-job accounting of LLM calls, tokens and cost, safe to share between threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Usage:
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, *, prompt_tokens: int, completion_tokens: int, cost_usd: float, cached: bool) -> None:
        """A cache hit counts as a cached call with no new tokens or cost: a re-run never pays twice."""
        with self._lock:
            if cached:
                self.cached_calls += 1
                return
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cost_usd += cost_usd

    def as_dict(self) -> dict[str, float | int]:
        """The counters under the names every stored row uses (`USAGE_COLUMNS`): answers, jobs, eval records."""
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
        )

    def __add__(self, other: Usage) -> Usage:
        """Counters of both (e.g. what earlier attempts of a job spent plus this attempt); no budget."""
        mine, theirs = self.as_dict(), other.as_dict()
        total = {name: mine[name] + theirs[name] for name in USAGE_COLUMNS}
        return Usage(
            calls=int(total["llm_calls"]),
            cached_calls=int(total["cached_calls"]),
            prompt_tokens=int(total["prompt_tokens"]),
            completion_tokens=int(total["completion_tokens"]),
            cost_usd=float(total["cost_usd"]),
        )


USAGE_COLUMNS = ("llm_calls", "cached_calls", "prompt_tokens", "completion_tokens", "cost_usd")
"""The names of the usage counters on stored rows, in `Usage.as_dict()` order."""
