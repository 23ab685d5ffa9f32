"""The one LLM access layer: litellm Router, retries, concurrency cap, accounting, completion cache."""

from longread.llm.client import Completion, CompletionCache, LLMClient, LLMError, ProviderSlot
from longread.llm.usage import Usage

__all__ = ["Completion", "CompletionCache", "LLMClient", "LLMError", "ProviderSlot", "Usage"]
