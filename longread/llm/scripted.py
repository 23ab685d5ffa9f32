"""A scripted model served through litellm's custom-provider hook, for tests and benchmarks.

`scripted/<module.path.function>` names a Python function that receives the chat messages and returns
the reply text. The call still goes through litellm's Router and response objects, so the whole
client layer (retries, accounting, cache) is exercised; only the network is replaced.
"""

from __future__ import annotations

import importlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from longread.tokens import token_counter_for

Script = Callable[[list[dict[str, str]]], str]

_registered = False
_lock = threading.Lock()


def resolve_script(name: str) -> Script:
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        raise ValueError(f"scripted model '{name}' must name module.function")
    script: Script = getattr(importlib.import_module(module_name), attr)
    return script


def _build_handler() -> Any:
    import litellm
    from litellm import CustomLLM
    from litellm.types.llms.openai import ChatCompletionUsageBlock
    from litellm.types.utils import Choices, GenericStreamingChunk, Message, ModelResponse, Usage

    class ScriptedLLM(CustomLLM):
        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> ModelResponse:
            name = model.split("/", 1)[1] if model.startswith("scripted/") else model
            text = resolve_script(name)(messages)
            counter = token_counter_for("scripted")
            prompt_tokens = sum(counter.count(str(m.get("content", ""))) for m in messages)
            completion_tokens = counter.count(text)
            return ModelResponse(
                model=model,
                choices=[Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=text))],
                usage=Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                ),
            )

        def streaming(
            self, model: str, messages: list[Any], *args: Any, **kwargs: Any
        ) -> Iterator[GenericStreamingChunk]:
            """The same reply word by word; a script's `stream_delay_s` paces the words like a slow model."""
            name = model.split("/", 1)[1] if model.startswith("scripted/") else model
            script = resolve_script(name)
            text = script(messages)
            delay = float(getattr(script, "stream_delay_s", 0.0))
            counter = token_counter_for("scripted")
            prompt_tokens = sum(counter.count(str(m.get("content", ""))) for m in messages)
            pieces = re.findall(r"\s*\S+", text) or [""]
            for i, piece in enumerate(pieces):
                if delay:
                    time.sleep(delay)
                last = i == len(pieces) - 1
                usage: ChatCompletionUsageBlock | None = None
                if last:
                    completion_tokens = counter.count(text)
                    usage = ChatCompletionUsageBlock(
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens,
                    )
                yield GenericStreamingChunk(
                    text=piece,
                    is_finished=last,
                    finish_reason="stop" if last else "",
                    usage=usage,
                    index=0,
                    tool_use=None,
                )

    handler = ScriptedLLM()
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry.get("provider") != "scripted"
    ] + [{"provider": "scripted", "custom_handler": handler}]
    litellm.register_model(
        {
            "scripted/*": {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": "scripted",
                "mode": "chat",
            }
        }
    )
    return handler


def register_scripted_provider() -> None:
    global _registered
    with _lock:
        if not _registered:
            _build_handler()
            _registered = True
