"""The completion cache in the database: the `CompletionCache` the LLM layer is given.

Keys come from `longread.llm.client.cache_key`, which hashes the model, the messages, the decoding
parameters and the scope. The scope is the tenant: a cached call tells a tenant only that it asked the
same thing before, never that someone else did.
"""

from __future__ import annotations

import contextlib

from sqlalchemy.exc import IntegrityError

from longread.llm import Completion, LLMClient, Usage
from longread.storage.db import session_scope
from longread.storage.models import LOCAL_TENANT, CompletionCache


class DbCompletionCache:
    """Completions in the `completioncache` table; each call opens its own short session."""

    def get(self, key: str) -> Completion | None:
        with session_scope() as session:
            row = session.get(CompletionCache, key)
            if row is None:
                return None
            return Completion(row.response, row.prompt_tokens, row.completion_tokens, row.cost_usd, cached=True)

    def put(self, key: str, model: str, completion: Completion) -> None:
        with session_scope() as session:
            if session.get(CompletionCache, key) is not None:
                return
            session.add(
                CompletionCache(
                    key=key,
                    model=model,
                    response=completion.text,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    cost_usd=completion.cost_usd,
                )
            )
            with contextlib.suppress(IntegrityError):  # a concurrent writer stored the same key
                session.commit()


def cache_scope(tenant_id: str) -> str:
    """The local tenant (CLI, evaluation, keyless service) keeps the unscoped keys; others get their own."""
    return "" if tenant_id == LOCAL_TENANT else f"tenant:{tenant_id}"


def stored_client(
    model: str | None = None,
    usage: Usage | None = None,
    *,
    tenant_id: str = LOCAL_TENANT,
    use_cache: bool | None = None,
) -> LLMClient:
    """An LLM client whose completions are kept in the database, scoped to `tenant_id`."""
    return LLMClient(model, usage, use_cache=use_cache, cache=DbCompletionCache(), scope=cache_scope(tenant_id))
