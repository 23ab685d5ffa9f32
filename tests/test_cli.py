"""The `longread` command end to end on the embedded defaults, with the scripted model via litellm."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from longread.cli import app
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"
runner = CliRunner()


def _book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(document_with_facts(40, {27: "The code of the violet harbor is 4721."}))
    return path


def test_ask_prints_answer_strategy_and_evidence(env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "150")
    from longread.config import get_settings

    get_settings.cache_clear()
    path = _book(tmp_path)
    result = runner.invoke(
        app,
        ["ask", str(path), "What is the code of the violet harbor?", "--strategy", "tree", "--model", MODEL, "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert "4721" in payload["answer"]
    assert payload["strategy"] == "tree"
    citation = payload["citations"][0]
    text = path.read_text()
    assert text[citation["start"] : citation["end"]] == citation["quote"] == "The code of the violet harbor is 4721."
    human = runner.invoke(
        app,
        [
            "ask",
            payload["document_id"][:12],
            "What is the code of the violet harbor?",
            "--strategy",
            "tree",
            "--model",
            MODEL,
        ],
    )
    assert human.exit_code == 0
    assert "strategy: tree" in human.stdout and "evidence:" in human.stdout and "[1] S" in human.stdout


def test_summarize_prints_a_summary(env, tmp_path) -> None:
    path = _book(tmp_path)
    result = runner.invoke(app, ["summarize", str(path), "--model", MODEL, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert "4721" in payload["answer"]
    assert payload["citations"]


def test_bad_file_exits_with_a_one_line_reason(env, tmp_path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    result = runner.invoke(app, ["ask", str(bad), "Anything?", "--model", MODEL])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.pdf" in lines[0] and "cannot read as pdf" in lines[0]
    missing = runner.invoke(app, ["ask", str(tmp_path / "nope.txt"), "Anything?", "--model", MODEL])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_unknown_strategy_is_rejected(env, tmp_path) -> None:
    result = runner.invoke(app, ["ask", str(_book(tmp_path)), "Q?", "--strategy", "magic", "--model", MODEL])
    assert result.exit_code == 2 and "unknown strategy 'magic'" in result.stderr


def cites_a_passage_never_shown(messages: list[dict[str, str]]) -> str:
    """A collection answer citing passage 99 of a few: the stored answer loses that citation."""
    return "The code of the violet harbor is 4721 [99]."


def test_ask_over_a_collection_prints_the_answer_as_it_streams_then_the_checked_answer(env, tmp_path) -> None:
    folder = tmp_path / "shelf"
    folder.mkdir()
    (folder / "harbor.txt").write_text(document_with_facts(12, {7: "The code of the violet harbor is 4721."}))
    (folder / "granary.txt").write_text(document_with_facts(12, {3: "The code of the copper granary is 5810."}, 1))
    assert runner.invoke(app, ["collection", "create", "shelf", str(folder), "--json"]).exit_code == 0
    question = "What is the code of the violet harbor?"
    model = "scripted/tests.test_cli.cites_a_passage_never_shown"
    args = ["ask", "--collection", "shelf", question, "--strategy", "bm25", "--model", model]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    # What the model wrote is on stdout as it streamed; the stored answer, checked, follows it.
    streamed, _, rest = result.stdout.partition("\n")
    assert streamed == "The code of the violet harbor is 4721 [99]."
    assert rest.startswith("checked answer (unverifiable citations removed):\n")
    stored = json.loads(runner.invoke(app, [*args, "--json"]).stdout)  # --json: the payload alone, nothing streamed
    assert "[99]" not in stored["answer"] and "4721" in stored["answer"]
    assert rest.split("\n")[1] == stored["answer"]
