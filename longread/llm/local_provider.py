"""litellm custom provider `local`: chat completions from the in-process local model.

Model strings look like `local/default` (the configured LOCAL_MODEL), `local/bundled`,
`local/Qwen/Qwen2.5-0.5B-Instruct`, or `local//path/to/model.gguf`. Decoding is greedy so answers
are reproducible and cacheable.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.llms.openai import ChatCompletionUsageBlock
from litellm.types.utils import GenericStreamingChunk, ModelResponse

from longread.config import get_settings
from longread.llm.prompts import render_prompt
from longread.local_model import LocalModelError, load_local_model, local_tokenizer, with_cache
from longread.tokens import register_local_tokenizer_factory

PROVIDER = "local"
_PLAIN_STOPS = ("\nUser:", "\n\nUser:")
_register_lock = threading.Lock()


def _content(message: dict[str, Any]) -> str:
    """Message content as text; list-of-parts content (OpenAI style) is joined."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def render_messages(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """(prompt text, stop strings): the tokenizer's chat template, else a User:/Assistant: layout."""
    plain = [{"role": m.get("role", "user"), "content": _content(m)} for m in messages]
    if not plain:
        raise ValueError("a chat completion needs at least one message")
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        return text, ()
    return render_prompt("attention_local_chat", messages=plain), _PLAIN_STOPS


def _cut_at_stops(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _stop_on_text(tokenizer: Any, n_prompt: int, stops: tuple[str, ...]) -> Any:
    """Stop once the decoded continuation contains a stop string.

    transformers' own `stop_strings` preprocesses the whole vocabulary (262K entries for Gemma 3) and
    fails on tokenizers without byte-level pieces; decoding a few dozen new tokens per step is cheap.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            text = tokenizer.decode(input_ids[0, n_prompt:], skip_special_tokens=True)
            return any(stop in text for stop in stops)

    return StoppingCriteriaList([StopOnText()] if stops else [])


def _encode_prompt(tokenizer: Any, prompt: str) -> Any:
    """The prompt's tensors, with the BOS token added unless the prompt already starts with it."""
    has_bos = bool(tokenizer.bos_token) and prompt.startswith(tokenizer.bos_token)
    return tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_bos)


def _prepared(model: str, prompt: str, max_tokens: int | None) -> tuple[Any, dict[str, Any], int, int]:
    """The loaded model, the encoded prompt on its device, the prompt's length and the output budget;
    refused when prompt and budget together pass the model's window."""
    local = load_local_model(model)
    budget = int(max_tokens or get_settings().LLM_MAX_OUTPUT_TOKENS)
    enc = _encode_prompt(local.tokenizer, prompt)
    n_prompt = int(enc["input_ids"].shape[1])
    if n_prompt + budget > local.context_window:
        raise LocalModelError(
            f"prompt of {n_prompt} tokens + {budget} output tokens exceeds the local model's "
            f"window of {local.context_window} tokens"
        )
    return local, {k: v.to(local.device) for k, v in enc.items()}, n_prompt, budget


def _generate(model: str, prompt: str, *, max_tokens: int | None, stops: tuple[str, ...]) -> tuple[str, int, int, str]:
    """Greedy continuation of a prompt: (text, prompt_tokens, completion_tokens, finish_reason)."""
    import torch

    local, enc, n_prompt, budget = _prepared(model, prompt, max_tokens)
    tokenizer = local.tokenizer
    with local.lock, torch.inference_mode():
        output = local.model.generate(
            **enc,
            max_new_tokens=budget,
            do_sample=False,
            stopping_criteria=_stop_on_text(tokenizer, n_prompt, stops),
            pad_token_id=tokenizer.pad_token_id,
        )
    new_ids = output[0, n_prompt:]
    raw = tokenizer.decode(new_ids, skip_special_tokens=True)
    text, stopped = _cut_at_stops(raw, stops)
    finish = "stop" if stopped or len(new_ids) < budget else "length"
    return text.strip(), n_prompt, int(len(new_ids)), finish


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could be the start of a stop string."""
    return max((n for stop in stops for n in range(1, len(stop)) if text.endswith(stop[:n])), default=0)


def _generate_stream(
    model: str, prompt: str, *, max_tokens: int | None, stops: tuple[str, ...], usage: dict[str, Any]
) -> Iterator[str]:
    """`_generate`, its text given piece by piece as the model writes it (transformers' TextIteratorStreamer).

    The pieces add up to the text `_generate` returns: leading and trailing spaces are held until more
    text follows, and so is an ending that may be the start of a stop string, which ends the text.
    `usage` receives prompt_tokens, completion_tokens and finish_reason at the end.
    """
    import torch
    from transformers import TextIteratorStreamer

    local, enc, n_prompt, budget = _prepared(model, prompt, max_tokens)
    tokenizer = local.tokenizer
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with local.lock, torch.inference_mode():
                outcome["output"] = local.model.generate(
                    **enc,
                    max_new_tokens=budget,
                    do_sample=False,
                    stopping_criteria=_stop_on_text(tokenizer, n_prompt, stops),
                    pad_token_id=tokenizer.pad_token_id,
                    streamer=streamer,
                )
        except BaseException as exc:  # raised again in the caller's thread, once the stream is closed
            outcome["error"] = exc
            streamer.end()  # type: ignore[no-untyped-call]  # transformers leaves it unannotated

    worker = threading.Thread(target=run, name="local-generate", daemon=True)
    worker.start()
    written, sent, stopped = "", "", False
    for piece in streamer:
        if stopped:
            continue  # generation ends within a token or two of a stop string
        written += piece
        text, stopped = _cut_at_stops(written, stops)
        ready = text if stopped else text[: len(text) - _held_back(text, stops)]
        ready = ready.strip()
        if len(ready) > len(sent):
            yield ready[len(sent) :]
            sent = ready
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    text, stopped = _cut_at_stops(written, stops)
    text = text.strip()
    if len(text) > len(sent):
        yield text[len(sent) :]
    n_out = int(outcome["output"].shape[1]) - n_prompt
    usage.update(
        prompt_tokens=n_prompt, completion_tokens=n_out, finish_reason="stop" if stopped or n_out < budget else "length"
    )


def is_base_model(model: str) -> bool:
    """A model without a chat template was not instruction-tuned: it gets few-shot completion prompts."""
    return not getattr(load_local_model(model).tokenizer, "chat_template", None)


def generate_text(
    model: str, messages: list[dict[str, Any]], *, max_tokens: int | None = None, stop: list[str] | None = None
) -> tuple[str, int, int, str]:
    """Chat completion, greedy: (text, prompt_tokens, completion_tokens, finish_reason)."""
    prompt, stops = render_messages(load_local_model(model).tokenizer, messages)
    return _generate(model, prompt, max_tokens=max_tokens, stops=tuple(stops) + tuple(stop or ()))


def generate_raw(
    model: str, prompt: str, *, max_tokens: int | None = None, stop: list[str] | None = None
) -> tuple[str, int, int]:
    """Plain-text continuation (few-shot prompts for a base model): (text, prompt_tokens, completion_tokens)."""
    text, n_prompt, n_out, _ = _generate(model, prompt, max_tokens=max_tokens, stops=tuple(stop or ()))
    return text, n_prompt, n_out


@dataclass(frozen=True)
class Choice:
    """How likely the model finds each given continuation, and what it would write itself."""

    scores: list[tuple[float, int]]
    """(log-probability, tokens) per continuation, in the order given."""
    free: str
    """The greedy continuation up to `stop` (empty when none was asked for)."""
    free_logprob: float
    prompt_tokens: int


_CHOICE_BATCH = 16
"""Continuations scored in one forward pass (each copies the prompt's KV cache: tens of MB each)."""


def _score_batch(local: Any, cache: Any, n_prompt: int, first: Any, batch: list[list[int]]) -> list[tuple[float, int]]:
    """(log-probability, tokens) of each continuation, fed together as one right-padded batch over the cache."""
    import copy

    import torch

    rows = [c[:-1] for c in batch]
    width = max((len(r) for r in rows), default=0)
    scored = [(float(first[c[0]]) if c else float("-inf"), len(c)) for c in batch]
    if width == 0:
        return scored
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), n_prompt + width), dtype=torch.long)
    mask[:, :n_prompt] = 1
    for i, row in enumerate(rows):
        if row:
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, n_prompt : n_prompt + len(row)] = 1
    expanded = copy.deepcopy(cache)
    expanded.batch_repeat_interleave(len(rows))
    positions = (n_prompt + torch.arange(width)).unsqueeze(0).expand(len(rows), -1)
    out = local.model(
        input_ids=ids.to(local.device),
        attention_mask=mask.to(local.device),
        position_ids=positions.to(local.device),
        use_cache=True,
        **with_cache(local.model, expanded),
    )
    logp = out.logits.float().log_softmax(-1)
    for i, cont in enumerate(batch):
        if len(cont) > 1:
            follow = float(sum(logp[i, j, cont[j + 1]] for j in range(len(cont) - 1)))
            scored[i] = (scored[i][0] + follow, len(cont))
    return scored


def choose_continuation(
    model: str,
    prompt: str,
    continuations: list[str],
    *,
    free_tokens: int = 0,
    stop: str = "\n",
    also: Callable[[str], list[str]] | None = None,
) -> Choice:
    """Log-probability of each continuation after the prompt, and the model's own greedy continuation.

    One forward pass over the prompt fills a KV cache; the continuations are then fed over copies of it in
    batches, so scoring forty short phrases costs little more than reading the prompt once.
    This is how a small base model picks among phrases it could copy (multiple choice by likelihood),
    which it does far more reliably than it writes a phrase freely. With `free_tokens`, the model also
    writes up to that many tokens greedily over the same cache (until `stop`) first, and `also` may turn
    what it wrote into more continuations to score (its answer, cleaned, competing on the same scale).
    """
    import torch
    from transformers.cache_utils import DynamicCache

    local = load_local_model(model)
    tokenizer = local.tokenizer
    ids = _encode_prompt(tokenizer, prompt)["input_ids"].to(local.device)
    n_prompt = int(ids.shape[1])
    encoded = [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in continuations]
    longest = max([len(c) for c in encoded] + [free_tokens])
    if n_prompt + longest > local.context_window:
        raise LocalModelError(
            f"prompt of {n_prompt} tokens exceeds the local model's window of {local.context_window} tokens"
        )
    scores: list[tuple[float, int]] = []
    free_ids: list[int] = []
    free_logprob = 0.0
    with local.lock, torch.inference_mode():
        # A cache built without the model config keeps every layer whole, so it can be cropped and reused.
        cache = DynamicCache()
        out = local.model(input_ids=ids, use_cache=True, logits_to_keep=1, **with_cache(local.model, cache))
        first = out.logits[0, -1].float().log_softmax(-1)
        logp = first
        for _ in range(free_tokens):
            token = int(logp.argmax())
            free_ids.append(token)
            free_logprob += float(logp[token])
            if stop in tokenizer.decode(free_ids, skip_special_tokens=True) or token == tokenizer.eos_token_id:
                break
            step = local.model(
                input_ids=torch.tensor([[token]], device=local.device), use_cache=True, **with_cache(local.model, cache)
            )
            logp = step.logits[0, -1].float().log_softmax(-1)
        if cache.get_seq_length() > n_prompt:
            cache.crop(-(cache.get_seq_length() - n_prompt))
        free = tokenizer.decode(free_ids, skip_special_tokens=True).split(stop)[0] if free_ids else ""
        if also is not None:
            extra = [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in also(free)]
            encoded += [e for e in extra if n_prompt + len(e) <= local.context_window]
        for first_row in range(0, len(encoded), _CHOICE_BATCH):
            batch = encoded[first_row : first_row + _CHOICE_BATCH]
            scores.extend(_score_batch(local, cache, n_prompt, first, batch))
    return Choice(scores, free, free_logprob, n_prompt)


class LocalLLM(CustomLLM):
    """litellm's view of the local model."""

    def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> ModelResponse:
        params = kwargs.get("optional_params") or {}
        response: ModelResponse = kwargs.get("model_response") or ModelResponse()
        stop = params.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        if params.get("raw_prompt"):
            # A completion prompt: the text itself is continued, with no chat layout around it.
            prompt = "".join(_content(m) for m in messages)
            text, n_prompt, n_out, finish = _generate(model, prompt, max_tokens=max_tokens, stops=tuple(stop or ()))
        else:
            text, n_prompt, n_out, finish = generate_text(model, messages, max_tokens=max_tokens, stop=stop)
        response.choices[0].message.content = text
        response.choices[0].finish_reason = finish  # type: ignore[assignment]  # 'stop' or 'length', as litellm expects
        response.model = f"{PROVIDER}/{model}" if not model.startswith(f"{PROVIDER}/") else model
        response.created = int(time.time())
        response.usage = litellm.Usage(  # type: ignore[attr-defined]  # set on the response object by litellm's own handlers too
            prompt_tokens=n_prompt, completion_tokens=n_out, total_tokens=n_prompt + n_out
        )
        return response

    async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> ModelResponse:
        return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

    def streaming(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        """The completion as the model writes it, a chunk per decoded piece; the last carries the usage."""
        params = kwargs.get("optional_params") or {}
        stop = params.get("stop")
        stops = tuple([stop] if isinstance(stop, str) else stop or ())
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        if params.get("raw_prompt"):
            prompt = "".join(_content(m) for m in messages)
        else:
            prompt, chat_stops = render_messages(load_local_model(model).tokenizer, messages)
            stops = chat_stops + stops
        usage: dict[str, Any] = {}
        for piece in _generate_stream(model, prompt, max_tokens=max_tokens, stops=stops, usage=usage):
            yield GenericStreamingChunk(
                text=piece, is_finished=False, finish_reason="", usage=None, index=0, tool_use=None
            )
        n_prompt, n_out = usage["prompt_tokens"], usage["completion_tokens"]
        yield GenericStreamingChunk(
            text="",
            is_finished=True,
            finish_reason=usage["finish_reason"],
            usage=ChatCompletionUsageBlock(
                prompt_tokens=n_prompt, completion_tokens=n_out, total_tokens=n_prompt + n_out
            ),
            index=0,
            tool_use=None,
        )


_handler = LocalLLM()


def register_local_provider() -> None:
    """Make `local/...` models reachable through litellm and count their tokens with their tokenizer.

    Idempotent; appends to litellm.custom_provider_map without touching other providers.
    """
    with _register_lock:
        if any(entry.get("provider") == PROVIDER for entry in litellm.custom_provider_map):
            return
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _handler})
        litellm.utils.custom_llm_setup()  # type: ignore[no-untyped-call]  # litellm leaves it unannotated
        register_local_tokenizer_factory(local_tokenizer)
