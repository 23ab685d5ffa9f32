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
        return {
            "llm_calls": self.calls,
            "cached_calls": self.cached_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }
