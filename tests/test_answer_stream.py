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


def test_a_hidden_line_never_streams_and_the_rest_adds_up_whatever_the_pieces() -> None:
    """`Next: <name>` lines are kept out of what streams, even when the cue arrives a letter at a time; the
    rest streams as it comes and adds up to the answer with those lines cut out (its ends stripped)."""
    import random

    from longread.llm.answer_text import HiddenLines

    next_line = re.compile(r"^\s*Next:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)  # what the reader cuts out
    rng = random.Random(5)
    lines = [
        "Next: Ingrid Vass",
        "  next: the keeper",
        "Nextdoor lived Ann [2].",
        "Ne",
        "N",
        "",
        " ",
        "The keeper [1].",
    ]
    for _ in range(3000):
        text = "\n".join(rng.choice(lines) for _ in range(rng.randint(1, 6)))
        out: list[str] = []
        relay = HiddenLines(out.append, "next:")
        at = 0
        while at < len(text):
            step = rng.randint(1, 6)
            relay(text[at : at + step])
            at += step
        relay.finish()
        streamed = "".join(out)
        assert "next:" not in streamed.lower(), text
        assert streamed.split() == next_line.sub("", text).split() and streamed == streamed.strip(), text
    out = []
    relay = HiddenLines(out.append, "next:")
    for piece in ["The", " keeper", " is", " Ann", " [1].", "\nNe", "xt:", " Ingrid"]:
        relay(piece)
        if piece == " is":
            assert out == ["The", " keeper", " is"]  # a line that cannot be hidden goes on as it comes
    relay.finish()
    assert "".join(out) == "The keeper is Ann [1]."


def test_a_restart_starts_the_text_over_for_whoever_shows_it() -> None:
    from longread.llm.answer_text import RESTART, after_restart, restarted

    out: list[str] = []
    relay = restarted(out.append)
    relay("")
    relay("The keeper")
    relay(" is Ann.")
    assert out == [RESTART + "The keeper", " is Ann."]
    assert after_restart("First answer" + "".join(out)) == ("The keeper is Ann.", True)
    assert after_restart("No restart") == ("No restart", False)
    assert after_restart(f"a{RESTART}b{RESTART}") == ("", True)  # started over, nothing written yet


# ------------------------------------------------------------------- the shortlist reader's hosted answer

HOPS: list[str] = []
FIRST_HOP = "The passages say who painted the lighthouse but not the colour [1].\nNext: Tobias Wren"


def two_hops(messages: list[dict[str, str]]) -> str:
    """A hosted answerer that asks for a second hop, then answers; streamed a word every 0.1 s."""
    prompt = messages[-1]["content"]
    if not prompt.startswith("The numbered passages below"):
        return "A summary."
    HOPS.append(prompt)
    return FIRST_HOP if len(HOPS) == 1 else "Tobias Wren painted it vermilion in the spring [2]."


two_hops.stream_delay_s = 0.1  # type: ignore[attr-defined]  # read by the scripted provider's streaming


def second_hop_finds_nothing(messages: list[dict[str, str]]) -> str:
    """Like `two_hops`, but the second hop finds nothing, so the first answer stands."""
    prompt = messages[-1]["content"]
    if not prompt.startswith("The numbered passages below"):
        return "A summary."
    HOPS.append(prompt)
    return FIRST_HOP if len(HOPS) == 1 else "The document does not say."


def _tiny_reranker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny random model as the local model that re-ranks the shortlist; small shortlists, no cache."""
    from longread import local_model
    from longread.agents.shortlist import index as index_module
    from longread.config import get_settings
    from tests.test_attention_retriever import haystack, tiny_model, tiny_tokenizer
    from tests.test_shortlist import book

    torch = pytest.importorskip("torch")
    tokenizer = tiny_tokenizer(haystack() + " " + book(60))
    lm = local_model.LocalModel(
        "tiny-test-model", tiny_model(len(tokenizer) + 4, seed=3), tokenizer, "cpu", torch.float32, "test", 0.0
    )
    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "tiny-test-model")
    monkeypatch.setitem(local_model._models, "tiny-test-model", lm)
    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "6")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "200")
    monkeypatch.setenv("LONGREAD_LLM_CACHE", "false")
    get_settings.cache_clear()
    index_module.forget_indexes()
    HOPS.clear()


def _ask_shortlist(model: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[tuple[float, str]], float]:
    """The shortlist reader through the engine with a hosted scripted answerer (a tiny random model
    re-ranks): the stored answer, each streamed piece with when it came, and when the reading ended."""
    from longread import engine
    from longread.agents.shortlist import index as index_module
    from longread.storage.db import session_scope
    from tests.test_shortlist import QUESTION, book

    _tiny_reranker(monkeypatch)
    pieces: list[tuple[float, str]] = []
    try:
        with session_scope() as session:
            document, _ = engine.store_text(session, filename="corrow.txt", text=book(60))
            answer = engine.ask(
                session,
                document,
                QUESTION,
                strategy="shortlist",
                model=model,
                on_answer_text=lambda piece: pieces.append((time.monotonic(), piece)),
            )
            ended = time.monotonic()
            return answer.answer, pieces, ended
    finally:
        index_module.forget_indexes()


def test_the_shortlist_s_hosted_answer_streams_without_its_next_line_and_ends_on_the_second_hop(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.llm.answer_text import RESTART, after_restart

    stored, pieces, ended = _ask_shortlist("scripted/tests.test_answer_stream.two_hops", monkeypatch)
    assert len(HOPS) == 2 and "vermilion" in stored and "Next" not in stored
    streamed = "".join(piece for _, piece in pieces)
    assert "next" not in streamed.lower()  # the second-hop request is never shown, not even in part
    first, marker, second = streamed.partition(RESTART)
    assert first == "The passages say who painted the lighthouse but not the colour [1]."  # the first hop, as written
    assert marker and after_restart(streamed) == ("Tobias Wren painted it vermilion in the spring [2].", True)
    # Word by word while the model writes (0.1 s a word), well before the reading ends.
    restarted_at = next(at for at, piece in pieces if piece.startswith(RESTART))
    assert sum(1 for at, _ in pieces if at >= restarted_at) > 5
    assert pieces[0][0] < restarted_at - 0.5 and restarted_at < ended - 0.5


def test_when_the_first_hop_s_answer_stands_the_stream_ends_on_it(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.llm.answer_text import after_restart

    stored, pieces, _ = _ask_shortlist("scripted/tests.test_answer_stream.second_hop_finds_nothing", monkeypatch)
    assert len(HOPS) == 2
    streamed = "".join(piece for _, piece in pieces)
    assert "next" not in streamed.lower() and "does not say" in streamed  # the second hop was shown as written
    shown, replaced = after_restart(streamed)
    assert replaced and shown == "The passages say who painted the lighthouse but not the colour [1]."
    assert stored.startswith("The passages say who painted the lighthouse but not the colour")


@pytest.mark.parametrize("margin", [-1000.0, 1000.0], ids=["second-hop", "one-hop"])
def test_the_shortlist_s_local_answer_is_relayed_whole_when_chosen_and_restarted_by_a_second_hop(
    env: Path, monkeypatch: pytest.MonkeyPatch, margin: float
) -> None:
    """The local answer (a phrase the tiny random model chose by likelihood) reaches `on_answer_text` in
    one piece as soon as it is chosen, before the reading ends. A "not stated" margin far below zero makes
    "not stated" the first choice, so a second hop runs and its answer starts the text over; one far
    above keeps a phrase, and one hop is read."""
    from longread.agents.shortlist import strategy
    from longread.llm.answer_text import RESTART, after_restart

    monkeypatch.setattr(strategy, "_NOT_STATED_MARGIN", margin)
    stored, pieces, ended = _ask_shortlist("local/default", monkeypatch)
    streamed = [piece for _, piece in pieces]
    assert stored and after_restart("".join(streamed)) == (stored, margin < 0)
    assert pieces[0][0] < ended
    if margin < 0:  # "not stated" first, then the second hop's choice, each whole
        assert stored == strategy.NOT_STATED and streamed == [strategy.NOT_STATED, RESTART + strategy.NOT_STATED]
    else:
        assert stored != strategy.NOT_STATED and streamed == [stored]


def test_the_cli_prints_the_second_hop_s_answer_after_the_first_and_never_the_next_line(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from longread.agents.shortlist import index as index_module
    from longread.cli import app
    from tests.test_shortlist import QUESTION, book

    _tiny_reranker(monkeypatch)
    source = tmp_path / "corrow.txt"
    source.write_text(book(60))
    model = "scripted/tests.test_answer_stream.two_hops"
    try:
        result = CliRunner().invoke(app, ["ask", str(source), QUESTION, "--strategy", "shortlist", "--model", model])
    finally:
        index_module.forget_indexes()
    assert result.exit_code == 0, result.output
    assert len(HOPS) == 2 and "next" not in result.stdout.lower() and "\x1e" not in result.stdout
    first = "The passages say who painted the lighthouse but not the colour [1]."
    assert result.stdout.startswith(f"{first}\n\nTobias Wren painted it vermilion in the spring [2].\n")


def test_the_job_s_event_stream_sends_a_restart_with_the_text_that_replaces_the_answer_so_far(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a reader relays after `RESTART` reaches the page as an answer event with `restart`, even when
    nothing of the new answer is written yet; what follows it goes on without."""
    import asyncio
    import json
    import uuid

    from longread.api.routes.jobs import job_events
    from longread.api.security import Principal
    from longread.config import get_settings
    from longread.llm.answer_text import RESTART
    from longread.storage import answer_stream
    from longread.storage.db import init_db, session_scope
    from longread.storage.models import Job, JobKind, JobStatus

    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("LONGREAD_REDIS_KEY_PREFIX", f"test-{uuid.uuid4().hex[:8]}:")
    get_settings.cache_clear()
    init_db()
    with session_scope() as session:
        job = Job(kind=JobKind.ASK_COLLECTION, status=JobStatus.RUNNING, attempts=1)
        session.add(job)
        session.commit()
        job_id, principal = job.id, Principal(tenant_id=job.tenant_id, key_id="test")

    class Request:  # what the stream reads of its request
        headers: dict[str, str] = {}

        async def is_disconnected(self) -> bool:
            return False

    write = answer_stream.writer(job_id, 1)

    async def read() -> list[dict[str, object]]:
        stream = job_events(Request(), principal, job_id)  # type: ignore[arg-type]  # the parts it reads

        async def next_answer() -> dict[str, object]:
            while True:
                event = await asyncio.wait_for(stream.__anext__(), 120)
                if event["event"] == "answer":
                    return dict(json.loads(event["data"]))

        seen = []
        for piece in ["The first answer", RESTART + "The second", " answer", RESTART]:
            write(piece)
            seen.append(await next_answer())
        await stream.aclose()
        return seen

    assert asyncio.run(read()) == [
        {"text": "The first answer", "restart": True},
        {"text": "The second", "restart": True},
        {"text": " answer", "restart": False},
        {"text": "", "restart": True},
    ]
