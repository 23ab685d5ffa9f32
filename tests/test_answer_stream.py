"""The final answering call streams through litellm to `on_answer_text`; other calls do not stream."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from longread.llm import LLMClient
from longread.storage.cache import stored_client

MODEL = "scripted/tests.test_answer_stream.answer"
ANSWER = "The keeper is Ingrid Vass [S2], who came in 1871 [S3]."


def answer(messages: list[dict[str, str]]) -> str:
    return ANSWER if "Question:" in messages[-1]["content"] else "A summary."


def slow_answer(messages: list[dict[str, str]]) -> str:
    """An answer citing the first passage shown, streamed a word every 0.3 s like a slow hosted model."""
    label = re.search(r"^\[S(\d+)\] ", messages[-1]["content"], re.M)
    return f"The keeper is Ingrid Vass, who came to the light in 1871 [S{label.group(1) if label else 0}]."


slow_answer.stream_delay_s = 0.3  # type: ignore[attr-defined]  # read by the scripted provider's streaming


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


def test_the_cli_prints_the_answer_as_it_streams(env: Path, tmp_path: Path) -> None:
    source = tmp_path / "keeper.txt"
    source.write_text("Ingrid Vass keeps the light on the northern cape. She came to the light in 1871.")
    command = [sys.executable, "-m", "longread.cli", "ask", str(source), "Who keeps the light?", "--strategy", "full"]
    command += ["--model", "scripted/tests.test_answer_stream.slow_answer"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        command, cwd=root, env=os.environ | {"PYTHONPATH": str(root)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    arrivals: list[tuple[float, bytes]] = []

    def read() -> None:  # what reaches stdout, and when, as the process writes it
        while chunk := os.read(proc.stdout.fileno(), 4096):  # type: ignore[union-attr]  # a pipe, set above
            arrivals.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=120)
    ended = time.monotonic()
    assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    output = b"".join(chunk for _, chunk in arrivals).decode()
    answer = "The keeper is Ingrid Vass, who came to the light in 1871 [S0]."

    def seen(text: str) -> float:
        """When the output first held `text`."""
        so_far = b""
        for at, chunk in arrivals:
            so_far += chunk
            if text in so_far.decode(errors="ignore"):
                return at
        raise AssertionError(f"{text!r} never reached stdout: {output!r}")

    # The first words are on stdout while the model is still writing (a word every 0.3 s) and well before
    # the command ends; the answer is printed once, then its evidence.
    assert seen("The keeper") < seen("1871") - 1.5
    assert seen("The keeper") < ended - 1.5
    assert output.count(answer) == 1 and output.index(answer) < output.index("evidence:")
    assert "checked answer" not in output


def unverifiable(messages: list[dict[str, str]]) -> str:
    """An answer citing a passage that was never shown."""
    return "The keeper is Ingrid Vass [S99]."


def test_a_streamed_answer_that_loses_a_citation_is_shown_again_as_checked(env: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from longread.cli import app

    source = tmp_path / "keeper.txt"
    source.write_text("Ingrid Vass keeps the light on the northern cape.")
    model = "scripted/tests.test_answer_stream.unverifiable"
    result = CliRunner().invoke(
        app, ["ask", str(source), "Who keeps the light?", "--strategy", "full", "--model", model]
    )
    assert result.exit_code == 0, result.output
    streamed, _, rest = result.stdout.partition("\n")
    assert streamed == "The keeper is Ingrid Vass [S99]."
    assert rest.startswith("checked answer (unverifiable citations removed):\nThe keeper is Ingrid Vass.\n")


def test_a_base_model_s_stream_loses_repeated_lines_as_its_answer_does() -> None:
    """What streams of a completion-prompt answer adds up to the answer kept (repeats dropped), whatever
    the pieces; a line is passed on word by word once it cannot be a repeat."""
    import random

    from longread.llm.client import UniqueLines, drop_repeated_lines

    rng = random.Random(7)
    lines = ["4721", "the code is 4721", "- the code", "Ingrid Vass", "", " ", "* Ingrid Vass keeps it", "The Code"]
    for _ in range(3000):
        text = "\n".join(rng.choice(lines) for _ in range(rng.randint(1, 8))).strip()
        out: list[str] = []
        relay = UniqueLines(out.append)
        at = 0
        while at < len(text):
            step = rng.randint(1, 5)
            relay(text[at : at + step])
            at += step
        relay.finish()
        assert "".join(out).strip() == drop_repeated_lines(text), text
    out = []
    relay = UniqueLines(out.append)
    for piece in ["Ingrid", " Vass", " keeps", "\nIngrid", " Vass", " keeps", "\nthe code"]:
        relay(piece)
    relay.finish()
    assert out[:3] == ["Ingrid", " Vass", " keeps"] and "".join(out) == "Ingrid Vass keeps\nthe code"
