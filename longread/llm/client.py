"""LLMClient: every model call in Longread goes through here.

One litellm Router per model (timeouts; the Router is the only retry layer), a process-wide concurrency
cap, and per-call token/cost accounting into a `Usage`. Two things it uses belong to layers above it and
come in as interfaces: the completion cache (`CompletionCache`; storage provides the database-backed one,
keyed per tenant scope) and the cross-process provider slot (`ProviderSlot`; the workers install the
Redis-backed one for their processes with `use_provider_slot`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from longread.config import get_settings
from longread.failures import MODEL_FAILED, Failure, describe_model_error
from longread.llm.pricing import cost_usd
from longread.llm.prompts import COMPLETION, has_completion_variant, prompt_fingerprint, render_prompt
from longread.llm.usage import Usage
from longread.tokens import TokenCounter, token_counter_for

# litellm fetches its price map from the network at import unless told to use the bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DEFAULT_CONTEXT_WINDOW = 8192
LOCAL_CONTEXT_WINDOW = 8192
# A base model continuing a few-shot prompt goes on to invent the next worked example; every completion
# prompt separates its examples with a blank line, so the first one ends the answer.
COMPLETION_STOPS = ("\n\n", "\nQuestion:", "\nPassage:")


class LLMError(RuntimeError):
    """A model call failed after the Router's retries."""


NO_COMPLETION = "the model service returned a response without any completion"


@dataclass
class Retried:
    """The failed requests retried on the way to one answer: how many, and what the latest failed with.

    The Router retries inside one `completion` call and notes each failure in the request's metadata
    (`previous_models`, by exception class); a reply without choices is retried by `_answered_call`.
    Only the class name is kept, turned into a fixed sentence: the exception texts name the provider's
    address and quote its body.
    """

    count: int = 0
    last: Failure | None = None

    def add_router_retries(self, response: Any, metadata: dict[str, Any]) -> None:
        retried = max(_router_retries(response), _int(metadata.get("attempted_retries")))
        if not retried:
            return
        self.count += retried
        earlier = metadata.get("previous_models") or ()
        name = earlier[-1].get("exception_type") if earlier and isinstance(earlier[-1], dict) else None
        self.last = describe_model_error(str(name)) if name else MODEL_FAILED

    def add_empty_reply(self) -> None:
        self.count += 1
        self.last = Failure(MODEL_FAILED.code, NO_COMPLETION)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool


class CompletionCache(Protocol):
    """Completions kept by `cache_key`, so a re-run never pays twice for the same call."""

    def get(self, key: str) -> Completion | None: ...

    def put(self, key: str, model: str, completion: Completion) -> None: ...


class ProviderSlot(Protocol):
    """Holds one of a provider's call slots for the duration of a block (a cap shared across processes)."""

    def __call__(self, model: str) -> AbstractContextManager[None]: ...


_provider_slot: ProviderSlot | None = None


def use_provider_slot(slot: ProviderSlot | None) -> None:
    """Install the cross-process provider cap for every client in this process (None removes it).

    A process-wide setting on purpose: the cap exists for processes that share a provider (workers),
    whichever code path inside them creates the client.
    """
    global _provider_slot
    _provider_slot = slot


_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphore_lock = threading.Lock()


def _process_semaphore(limit: int) -> threading.BoundedSemaphore:
    with _semaphore_lock:
        if limit not in _semaphores:
            _semaphores[limit] = threading.BoundedSemaphore(limit)
        return _semaphores[limit]


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def is_in_process(model: str) -> bool:
    """Models served inside this process: no network, no shared rate limit."""
    return provider_of(model) in {"local", "scripted"}


def _register_providers(model: str) -> None:
    from longread.llm import scripted

    scripted.register_scripted_provider()
    if provider_of(model) == "local":
        from longread.llm.local_provider import register_local_provider

        register_local_provider()


def warm_up() -> None:
    """Import what litellm otherwise imports on a process's first call, with no network and no usage.

    litellm loads most of itself lazily: its own cl100k encoding, the Router's core, the completion
    path (about 0.3 s of CPU). A worker runs this before its pool forks, so each pool process inherits
    those imports instead of paying them on its first task. It builds a Router but never calls one:
    a Router call starts litellm's native runtime, whose threads do not survive the fork; the plain
    mock completion does not start it.
    """
    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    _ = litellm.encoding
    Router(model_list=[{"model_name": "warm-up", "litellm_params": {"model": "openai/warm-up", "api_key": "none"}}])
    litellm.completion(
        model="openai/warm-up", messages=[{"role": "user", "content": "warm up"}], mock_response="ok", api_key="none"
    )


@lru_cache(maxsize=32)
def _router(model: str, api_base: str | None, api_key: str | None, timeout: float, retries: int) -> Any:
    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    params: dict[str, Any] = {"model": model, "timeout": timeout}
    if api_base:
        params["api_base"] = api_base
    if api_key:
        params["api_key"] = api_key
    return Router(
        model_list=[{"model_name": model, "litellm_params": params}],
        num_retries=0 if provider_of(model) == "local" else retries,
        timeout=timeout,
        retry_after=1,
    )


def cache_key(
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    raw: bool = False,
    scope: str = "",
) -> str:
    """Hash of everything that decides a completion, plus the cache scope (a tenant sees only its own hits)."""
    payload = json.dumps(
        {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        | ({"raw": True} if raw else {})
        | ({"scope": scope} if scope else {}),
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


ANSWER_PROMPTS = frozenset({"baseline_answer", "chain_manager", "nav_final", "attention_answer_hosted"})
"""Prompts whose completion is the answer a user reads: these stream to `on_answer_text` when it is set."""


class LLMClient:
    """A model, its accounting and its cache. Cheap to create; Routers are shared per process.

    `cache` is where completions are kept (none: every call goes to the model); `scope` separates cache
    entries of different tenants, so a hit never tells one tenant what another asked.
    `on_answer_text`, when set, receives the final answer's text as the model writes it (ANSWER_PROMPTS
    stream through litellm; a cached or non-streaming model's answer arrives in one piece).
    """

    on_answer_text: Callable[[str], None] | None = None

    def __init__(
        self,
        model: str | None = None,
        usage: Usage | None = None,
        *,
        use_cache: bool | None = None,
        cache: CompletionCache | None = None,
        scope: str = "",
    ) -> None:
        settings = get_settings()
        self.model = model or settings.LLM
        self.usage = usage if usage is not None else Usage()
        enabled = settings.LLM_CACHE if use_cache is None else use_cache
        self.cache = cache if enabled else None
        self.scope = scope
        self.max_output_tokens = settings.LLM_MAX_OUTPUT_TOKENS
        self._settings = settings
        _register_providers(self.model)

    @property
    def use_cache(self) -> bool:
        return self.cache is not None

    def with_model(self, model: str) -> LLMClient:
        """Another model with this client's accounting, cache and scope (e.g. a hosted answer model)."""
        other = LLMClient(model, self.usage, use_cache=self.use_cache, cache=self.cache, scope=self.scope)
        other.on_answer_text = self.on_answer_text
        return other

    @property
    def counter(self) -> TokenCounter:
        return token_counter_for(self.model)

    @property
    def context_window(self) -> int:
        if self._settings.LLM_CONTEXT_WINDOW:
            return self._settings.LLM_CONTEXT_WINDOW
        if provider_of(self.model) == "local":
            return LOCAL_CONTEXT_WINDOW
        try:
            import litellm

            info = litellm.get_model_info(self.model)
            return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_WINDOW)
        except Exception:  # unknown to litellm's price map (self-hosted, scripted): use a safe default
            return DEFAULT_CONTEXT_WINDOW

    @property
    def prompt_style(self) -> str:
        """'completion' for a base model (few-shot continuation prompts), 'chat' for an instruction model."""
        style = self._settings.LLM_PROMPT_STYLE
        if style != "auto":
            return style
        if provider_of(self.model) == "local":
            from longread.llm.local_provider import is_base_model

            return COMPLETION if is_base_model(self.model) else "chat"
        return "chat"

    def complete(
        self,
        prompt_name: str,
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        stream_to: Callable[[str], None] | None = None,
        **variables: object,
    ) -> Completion:
        """Render prompts/<prompt_name>.txt and complete it as one user message.

        A base model gets the prompt's completion variant instead, continued as plain text. The text
        streams to `stream_to` when given, else to `on_answer_text` for ANSWER_PROMPTS (a caller that
        knows which part of a reply is the answer passes a filter of its own, e.g. a navigation leaf).
        """
        text, raw = self.render_prompt(prompt_name, **variables)
        stream = stream_to or (self.on_answer_text if prompt_name in ANSWER_PROMPTS else None)
        if raw:
            return self.complete_messages(
                [{"role": "user", "content": text}], max_tokens=max_tokens, raw=True, stream_to=stream
            )
        messages: list[dict[str, str]] = []
        if system is not None:
            messages.append({"role": "system", "content": render_prompt(system, **variables)})
        messages.append({"role": "user", "content": text})
        return self.complete_messages(messages, max_tokens=max_tokens, stream_to=stream)

    def prompt_fingerprint(self, *prompt_names: str) -> str:
        """Hash of the prompt files this model gets for these names (changes when any of them is edited)."""
        return prompt_fingerprint(prompt_names, completion=self.prompt_style == COMPLETION)

    def render_prompt(self, prompt_name: str, **variables: object) -> tuple[str, bool]:
        """(text, raw): the prompt this model gets; raw when it is a completion variant to continue as is."""
        if self.prompt_style == COMPLETION and has_completion_variant(prompt_name):
            return render_prompt(f"{COMPLETION}/{prompt_name}", **variables), True
        return render_prompt(prompt_name, **variables), False

    def complete_messages(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        raw: bool = False,
        stream_to: Callable[[str], None] | None = None,
    ) -> Completion:
        """Complete a conversation; `raw` sends one user message as a text to continue (base models).

        `stream_to` receives the text as it arrives (streamed through litellm where the provider streams).
        """
        max_tokens = max_tokens or self.max_output_tokens
        key = None  # hashing a long prompt costs CPU on every call; only a cache needs it
        if self.cache is not None:
            key = cache_key(self.model, messages, max_tokens, temperature, raw, self.scope)
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.record(prompt_tokens=0, completion_tokens=0, cost_usd=0.0, cached=True)
                if stream_to is not None:
                    stream_to(hit.text)
                return hit
        if self.usage.budget is not None:  # a capped job: refuse the call that would overrun a cap
            n_prompt = sum(self.counter.count(m["content"]) for m in messages)
            self.usage.check_budget(prompt_tokens=n_prompt, prompt_cost_usd=cost_usd(self.model, n_prompt, 0))
        retried = Retried()
        with self._slot():
            started = time.perf_counter()
            if stream_to is not None:
                # A base model's text loses its repeated lines (below); its stream loses them as they come.
                lines = UniqueLines(stream_to) if raw else None
                response = self._streamed_call(messages, max_tokens, temperature, raw, lines or stream_to, retried)
                if lines is not None:
                    lines.finish()
            else:
                response = self._answered_call(messages, max_tokens, temperature, raw, retried)
                if stream_to is not None and getattr(response, "choices", None):
                    stream_to(str(response.choices[0].message.content or ""))
            seconds = time.perf_counter() - started
        completion = _to_completion(response)
        if raw:
            completion = dataclasses.replace(completion, text=drop_repeated_lines(completion.text))
        self.usage.record(
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=completion.cost_usd,
            cached=False,
            seconds=seconds,
            model=self.model,
            max_tokens=max_tokens,
            retries=retried.count,
            retry_failure=retried.last,
        )
        if self.cache is not None and key is not None:
            self.cache.put(key, self.model, completion)
        return completion

    def _answered_call(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float, raw: bool, retried: Retried
    ) -> Any:
        """`_call`, again when the provider answered 200 with no completion in it.

        The Router retries failed requests (429, 5xx, timeouts, unreadable bodies); a well-formed reply
        without choices is not a failure to it, so this kind alone is retried here, as many times.
        """
        attempts = self._settings.LLM_NUM_RETRIES + 1
        for attempt in range(attempts):
            metadata: dict[str, Any] = {}
            response = self._call(messages, max_tokens, temperature, raw, metadata=metadata)
            retried.add_router_retries(response, metadata)
            if getattr(response, "choices", None):
                return response
            if attempt + 1 < attempts:
                retried.add_empty_reply()
        return response  # `_to_completion` turns the empty reply into an LLMError

    def _streamed_call(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        raw: bool,
        stream_to: Callable[[str], None],
        retried: Retried,
    ) -> Any:
        """`_call` streamed: each piece of text goes to `stream_to`, then the pieces make one response."""
        import litellm

        chunks: list[Any] = []
        metadata: dict[str, Any] = {}
        try:
            for chunk in self._call(messages, max_tokens, temperature, raw, stream=True, metadata=metadata):
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    stream_to(delta)
            response = litellm.stream_chunk_builder(chunks, messages=messages)
            retried.add_router_retries(response, metadata)
            return response
        except LLMError:
            raise
        except Exception as exc:  # a stream that breaks midway: one error type for callers, as in `_call`
            raise LLMError(f"{self.model}: {type(exc).__name__}: {exc}") from exc

    def _call(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        raw: bool,
        stream: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        """One Router call. The Router writes its retries into `metadata` (read by `Retried`)."""
        settings = self._settings
        router = _router(
            self.model, settings.LLM_API_BASE, settings.LLM_API_KEY, settings.LLM_TIMEOUT_S, settings.LLM_NUM_RETRIES
        )
        extra: dict[str, Any] = {}
        if raw:
            extra["stop"] = list(COMPLETION_STOPS)
            if provider_of(self.model) == "local":
                # The local provider then skips the chat layout; a hosted server applies its own template.
                extra["raw_prompt"] = True
        if stream:
            extra["stream"] = True
            extra["stream_options"] = {"include_usage": True}
        try:
            return router.completion(
                model=self.model,
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                metadata=metadata if metadata is not None else {},
                **extra,
            )
        except Exception as exc:  # litellm raises provider-specific types; callers need one
            raise LLMError(f"{self.model}: {type(exc).__name__}: {exc}") from exc

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Cap concurrent calls per process, and per provider across processes when a slot is installed."""
        with _process_semaphore(self._settings.LLM_MAX_CONCURRENCY):
            slot = _provider_slot
            if slot is not None and not is_in_process(self.model):
                with slot(self.model):
                    yield
            else:
                yield


def _line_key(line: str) -> str:
    return line.strip().lstrip("-*• ").strip().lower()


class UniqueLines:
    """`drop_repeated_lines` on a stream: a line is passed on as it arrives once it cannot turn out a
    repeat of an earlier one (its start no longer matches any); one that still could is held to its end,
    and a held line that was kept waits for the next kept line (the last kept line may still go).

    What it passes on adds up to the text `drop_repeated_lines` keeps (up to the spaces at the ends).
    Call `finish` after the last piece.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink
        self.seen: set[str] = set()
        self.line = ""
        self.passing = False
        self.pending: str | None = None  # a held line that was kept, not yet passed on
        self.sent_lines = 0

    def __call__(self, piece: str) -> None:
        *ended, rest = piece.split("\n")
        for part in ended:
            self._add(part)
            self._end_line()
        self._add(rest)

    def _add(self, part: str) -> None:
        self.line += part
        if self.passing:
            if part:
                self.sink(part)
            return
        key = _line_key(self.line)
        if key and not any(seen.startswith(key) for seen in self.seen):
            self.passing = True
            self._send(self.line)

    def _send(self, text: str) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._send(pending)
        self.sink(("\n" if self.sent_lines else "") + text)
        self.sent_lines += 1

    def _end_line(self) -> None:
        key = _line_key(self.line)
        if not self.passing and not (key and key in self.seen):
            if self.pending is not None:
                pending, self.pending = self.pending, None
                self._send(pending)
            self.pending = self.line
        self.seen.add(key)
        self.line, self.passing = "", False

    def finish(self) -> None:
        """The lines still held: kept unless a repeat, the last kept one unless it only restarts another."""
        if self.line and not self.passing:
            key = _line_key(self.line)
            if not (key and key in self.seen):
                self._end_line()
        if self.pending is None:
            return
        tail = _line_key(self.pending)
        if self.sent_lines and any(seen.startswith(tail) for seen in self.seen - {tail}):
            self.pending = None
            return
        pending, self.pending = self.pending, None
        self._send(pending)


def drop_repeated_lines(text: str) -> str:
    """A base model continuing a list tends to loop on one line; keep each line's first occurrence."""
    seen: set[str] = set()
    kept: list[str] = []
    for line in text.splitlines():
        key = line.strip().lstrip("-*• ").strip().lower()
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(line)
    # The output budget often cuts the loop mid-line: a last line that only restarts an earlier one goes too.
    if len(kept) > 1:
        tail = kept[-1].strip().lstrip("-*• ").strip().lower()
        if any(key.startswith(tail) for key in seen - {tail}):
            kept.pop()
    return "\n".join(kept).strip()


def _router_retries(response: Any) -> int:
    """How many failed requests the Router retried before this response (litellm's retry header)."""
    headers = (getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {}
    try:
        return int(headers.get("x-litellm-attempted-retries", 0) or 0)
    except (TypeError, ValueError, AttributeError):
        return 0


def _to_completion(response: Any) -> Completion:
    if not getattr(response, "choices", None):  # a 200 with no answer in it: a provider fault, said plainly
        raise LLMError(NO_COMPLETION)
    text = response.choices[0].message.content or ""
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    cost = 0.0
    hidden = getattr(response, "_hidden_params", {}) or {}
    if hidden.get("response_cost") is not None:
        cost = float(hidden["response_cost"])
    else:
        try:
            import litellm

            cost = float(litellm.completion_cost(completion_response=response))
        except Exception:  # self-hosted and scripted models have no price
            cost = 0.0
    return Completion(text.strip(), prompt_tokens, completion_tokens, cost, cached=False)
