"""litellm custom provider `local`: chat completions from the in-process local model.

Model strings look like `local/default` (the configured LOCAL_MODEL), `local/bundled`,
`local/Qwen/Qwen2.5-0.5B-Instruct`, or `local//path/to/model.gguf`. Decoding is greedy so answers
are reproducible and cacheable.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import ModelResponse

from longread.config import get_settings
from longread.llm.prompts import render_prompt
from longread.local_model import LocalModelError, load_local_model, local_tokenizer
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


def _generate(model: str, prompt: str, *, max_tokens: int | None, stops: tuple[str, ...]) -> tuple[str, int, int, str]:
    """Greedy continuation of a prompt: (text, prompt_tokens, completion_tokens, finish_reason)."""
    import torch

    local = load_local_model(model)
    tokenizer = local.tokenizer
    budget = int(max_tokens or get_settings().LLM_MAX_OUTPUT_TOKENS)
    has_bos = bool(tokenizer.bos_token) and prompt.startswith(tokenizer.bos_token)
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=not has_bos)
    n_prompt = int(enc["input_ids"].shape[1])
    if n_prompt + budget > local.context_window:
        raise LocalModelError(
            f"prompt of {n_prompt} tokens + {budget} output tokens exceeds the local model's "
            f"window of {local.context_window} tokens"
        )
    enc = {k: v.to(local.device) for k, v in enc.items()}
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
