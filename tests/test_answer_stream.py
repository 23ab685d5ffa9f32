"""The final answering call streams through litellm to `on_answer_text`; other calls do not stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from longread.llm import LLMClient
from longread.storage.cache import stored_client

MODEL = "scripted/tests.test_answer_stream.answer"
ANSWER = "The keeper is Ingrid Vass [S2], who came in 1871 [S3]."


def answer(messages: list[dict[str, str]]) -> str:
    return ANSWER if "Question:" in messages[-1]["content"] else "A summary."


def test_answer_prompts_stream_piece_by_piece_and_add_up(env: Path) -> None:
    pieces: list[str] = []
    client = LLMClient(MODEL, use_cache=False)
    client.on_answer_text = pieces.append
    passages = [{"label": 2, "text": "Ingrid Vass keeps the light."}]
    completion = client.complete("baseline_answer", question="Who?", passages=passages, truncated=False)
    assert completion.text == ANSWER
    assert len(pieces) > 3 and "".join(pieces) == ANSWER  # word by word, nothing lost or doubled
    assert client.usage.calls == 1 and client.usage.completion_tokens > 0 and client.usage.prompt_tokens > 0

    pieces.clear()
    client.complete("tree_leaf_summary", text="Ingrid Vass keeps the light.", max_words=20)  # no stream
    assert pieces == []


def test_a_cached_answer_arrives_in_one_piece(env: Path) -> None:
    first = stored_client(MODEL)
    first.complete("baseline_answer", question="Who?", passages=[], truncated=False)
    pieces: list[str] = []
    again = stored_client(MODEL)
    again.on_answer_text = pieces.append
    again.complete("baseline_answer", question="Who?", passages=[], truncated=False)
    assert pieces == [ANSWER] and again.usage.cached_calls == 1


def test_the_relay_keeps_each_attempt_apart(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from longread.config import get_settings
    from longread.storage import answer_stream

    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", f"test-{uuid.uuid4().hex[:8]}:")
    get_settings.cache_clear()
    job = uuid.uuid4().hex
    write = answer_stream.writer(job, 1)
    write("The keeper ")
    text, offset = answer_stream.read_from(job, 1, 0)
    write("is Ingrid Vass — ä.")
    more, offset = answer_stream.read_from(job, 1, offset)
    assert text + more == "The keeper is Ingrid Vass — ä." and answer_stream.read_from(job, 1, offset) == ("", offset)
    answer_stream.writer(job, 2)("Again: ")  # a resumed job starts a text of its own
    assert answer_stream.read_from(job, 2, 0)[0] == "Again: "
    assert answer_stream.read_from(job, 1, 0)[0] == "The keeper is Ingrid Vass — ä."
