"""Base models get few-shot completion prompts; instruction models get the chat prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from longread.agents.memwalker.navigate import parse_decision
from longread.config import get_settings
from longread.llm import LLMClient
from longread.llm.client import cache_key
from longread.llm.prompts import PROMPTS_DIR, render_prompt

_PASSAGES = [{"label": 3, "text": "The keeper's code is 4721."}, {"label": 4, "text": "Rain fell."}]
_CHILDREN = [{"number": 1, "summary": "The harbour."}, {"number": 2, "summary": "The orchard."}]
# One set of variables per prompt, as its caller passes them; the completion variant must accept the same.
VARIABLES: dict[str, dict[str, Any]] = {
    "baseline_answer": {"question": "What is the code?", "passages": _PASSAGES, "truncated": False},
    "baseline_summary": {"passages": _PASSAGES, "truncated": True, "max_words": 100},
    "chain_worker": {
        "step": 1,
        "total": 2,
        "chunk": "[S3] The code is 4721.",
        "unit": "(none yet)",
        "max_words": 50,
        "question": "What is the code?",
    },
    "chain_worker_summary": {
        "step": 1,
        "total": 2,
        "chunk": "[S3] The code is 4721.",
        "unit": "(none yet)",
        "max_words": 50,
    },
    "chain_manager": {"unit": "[S3] The code is 4721.", "question": "What is the code?"},
    "chain_manager_summary": {"unit": "[S3] The code is 4721.", "max_words": 100},
    "nav_triage": {"question": "What is the code?", "memory": "(nothing yet)", "children": _CHILDREN},
    "nav_leaf": {
        "segment_index": 3,
        "text": "The code is 4721.",
        "question": "What is the code?",
        "memory": "(nothing yet)",
    },
    "nav_final": {"question": "What is the code?", "memory": "[S3] The code is 4721."},
    "followup_question": {
        "turns": [{"question": "What is the code of the harbour gate?", "answer": "4721."}],
        "question": "And of the orchard?",
    },
    "tree_leaf_summary": {"text": "The code is 4721.", "max_words": 60},
    "tree_node_summary": {"summaries": ["The harbour.", "The orchard."], "max_words": 60},
    "tree_root_summary": {"parts": [{"labels": "S1-S4", "summary": "The harbour."}], "max_words": 60},
    "collection_summary": {
        "parts": [{"filename": "a.txt", "summary": "The harbour."}, {"filename": "b.txt", "summary": "The orchard."}],
        "max_words": 60,
    },
}


def _variants() -> list[str]:
    return sorted(p.stem for p in (PROMPTS_DIR / "completion").glob("*.txt"))


def test_every_completion_variant_pairs_with_a_chat_prompt_and_ends_in_a_cue() -> None:
    assert set(_variants()) == set(VARIABLES)
    for name in _variants():
        chat = render_prompt(name, **VARIABLES[name])
        completion = render_prompt(f"completion/{name}", **VARIABLES[name])
        assert chat != completion
        # The document's own text reaches the model in both styles.
        for probe in ("4721", "harbour", "orchard"):
            if probe in chat:
                assert probe in completion, (name, probe)
        # A base model continues the last line, so the prompt stops at the cue it should complete:
        # a label ("Answer:") or the first bullet of a list.
        last = completion.splitlines()[-1].rstrip()
        assert last.endswith(":") or last == "-", name


def _record_prompt(messages: list[dict[str, str]]) -> str:
    _seen.append(messages)
    return "4721 [S3]"


_seen: list[list[dict[str, str]]] = []


@pytest.mark.parametrize("style", ["chat", "completion"])
def test_the_client_sends_the_prompt_of_its_style_through_litellm(
    env: Path, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    monkeypatch.setenv("LONGREAD_LLM_PROMPT_STYLE", style)
    get_settings.cache_clear()
    _seen.clear()
    client = LLMClient(f"scripted/{__name__}._record_prompt", use_cache=False)
    assert client.prompt_style == style
    reply = client.complete("baseline_answer", **VARIABLES["baseline_answer"])
    assert reply.text == "4721 [S3]"
    (messages,) = _seen
    expected = render_prompt(
        "baseline_answer" if style == "chat" else "completion/baseline_answer", **VARIABLES["baseline_answer"]
    )
    assert messages == [{"role": "user", "content": expected}]


def test_auto_style_is_chat_for_hosted_models_and_raw_calls_cache_apart(env: Path) -> None:
    assert LLMClient("scripted/longread.testing.doubles.reader").prompt_style == "chat"
    messages = [{"role": "user", "content": "The code is"}]
    assert cache_key("m", messages, 8, 0.0) != cache_key("m", messages, 8, 0.0, raw=True)


def test_navigation_reads_a_bare_action_after_the_cue() -> None:
    assert (parse_decision(" OPEN 2").action, parse_decision(" OPEN 2").child) == ("open", 2)
    assert parse_decision("ANSWER 4721 [S3]").answer == "4721 [S3]"
    assert parse_decision(" REVERT").action == "revert"
    assert parse_decision("Reasoning: it is there.\nAction: OPEN 3").child == 3
    assert parse_decision("opening a door").action == "invalid"


def _loop(messages: list[dict[str, str]]) -> str:
    return "4721 is the code.\n- The keeper left.\n- 4721 is the code.\n- The keeper left.\n- 4721 is"


def test_a_base_model_looping_on_a_list_keeps_each_line_once(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = LLMClient(f"scripted/{__name__}._loop", use_cache=False)
    assert client.complete("tree_leaf_summary", text="x", max_words=10).text == _loop([])  # chat: untouched
    monkeypatch.setenv("LONGREAD_LLM_PROMPT_STYLE", "completion")
    get_settings.cache_clear()
    client = LLMClient(f"scripted/{__name__}._loop", use_cache=False)
    assert client.complete("tree_leaf_summary", text="x", max_words=10).text == "4721 is the code.\n- The keeper left."


def test_stored_work_is_keyed_by_the_prompt_files_the_model_gets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from longread.llm import prompts

    copy = tmp_path / "prompts"
    shutil.copytree(prompts.PROMPTS_DIR, copy)
    monkeypatch.setattr(prompts, "PROMPTS_DIR", copy)
    names = ("tree_leaf_summary", "tree_node_summary")

    def fingerprint(style: str) -> str:
        prompts._source.cache_clear()
        prompts._template.cache_clear()
        return prompts.prompt_fingerprint(names, completion=style == "completion")

    try:
        chat, completion = fingerprint("chat"), fingerprint("completion")
        assert chat != completion and fingerprint("chat") == chat
        leaf = copy / "completion" / "tree_leaf_summary.txt"
        leaf.write_text(leaf.read_text() + "\n")
        assert fingerprint("chat") == chat and fingerprint("completion") != completion
        node = copy / "tree_node_summary.txt"
        node.write_text(node.read_text().replace("Summary:", "Overview:"))
        assert fingerprint("chat") != chat
    finally:
        monkeypatch.undo()
        prompts._source.cache_clear()
        prompts._template.cache_clear()
