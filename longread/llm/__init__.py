"""The one LLM access layer: litellm Router, retries, concurrency cap, accounting, completion cache."""

from longread.llm.client import Completion, LLMClient, LLMError
from longread.llm.usage import Usage

__all__ = ["Completion", "LLMClient", "LLMError", "Usage"]
