"""Prices per token from litellm's bundled price map, for budgets and plans made before any call.

In-process models (`local/`, `scripted/`) cost nothing; a model litellm does not know (self-hosted
servers) is priced at zero too, since nothing better is known about it.
"""

from __future__ import annotations

import os
from functools import lru_cache

# litellm fetches its price map from the network at import unless told to use the bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

IN_PROCESS_PROVIDERS = frozenset({"local", "scripted"})


def provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def runs_in_process(model: str) -> bool:
    """Models served inside this process: no network, no price, no shared rate limit."""
    return provider(model) in IN_PROCESS_PROVIDERS


@lru_cache(maxsize=64)
def token_prices(model: str) -> tuple[float, float]:
    """(USD per prompt token, USD per completion token); (0, 0) when unpriced."""
    if runs_in_process(model):
        return 0.0, 0.0
    try:
        import litellm

        prompt, completion = litellm.cost_per_token(model=model, prompt_tokens=1_000_000, completion_tokens=1_000_000)
    except Exception:  # unknown to the price map (self-hosted, renamed): no price is known
        return 0.0, 0.0
    return float(prompt) / 1_000_000, float(completion) / 1_000_000


def priced(model: str) -> bool:
    """Whether litellm's price map knows this model (a zero cost then means free, not unknown)."""
    return runs_in_process(model) or token_prices(model) != (0.0, 0.0)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = token_prices(model)
    return prompt * prompt_tokens + completion * completion_tokens
