"""`longread eval` end to end with a scripted hosted model: results, resume, report and judge."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from longread.config import get_settings
from longread.evaluation.cli import eval_command
from longread.evaluation.report import (
    length_bucket,
    publish_report,
    publish_summary,
    strategy_table,
    write_report,
)
from longread.evaluation.runner import make_judge, parse_strategies
from longread.llm import Usage
from longread.testing import doubles

CALLS: list[str] = []
_lock = threading.Lock()
_CODE = re.compile(r"vault is (\d{4}-\d{4})")


def reply(messages: list[dict[str, str]]) -> str:
    """Answers from the needle when it is in view (citing its passage), like a reader would."""
    prompt = messages[-1]["content"]
    with _lock:
        CALLS.append(prompt)
    if "CANDIDATE ANSWER TO ASSESS" in prompt:
        return "CORRECT" if "4821-7730" in prompt.split("CANDIDATE ANSWER TO ASSESS:")[1] else "INCORRECT"
    if prompt.startswith("Answer a question about a long document from the passages below"):
        for match in re.finditer(r"\[S(\d+)\] ((?:(?!\[S\d+\]).)*)", prompt, re.S):
            code = _CODE.search(match.group(2))
            if code:
                return f"The access code is {code.group(1)} [S{match.group(1)}]."
        return "The passages do not say."
    if prompt.startswith("Below is a long document, in passages labelled"):
        first = re.search(r"\[S(\d+)\] (.{0,600})", prompt, re.S)
        return f"{first.group(2)} [S{first.group(1)}]" if first else "Empty."
    return doubles.reader(messages)


MODEL = f"scripted/{__name__}.reply"


@pytest.fixture
def eval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings restored after the command points them at its own data folder."""
    monkeypatch.setenv("LONGREAD_DATA_DIR", str(tmp_path / "service-data"))
    monkeypatch.setenv("LONGREAD_DATABASE_URL", f"sqlite:///{tmp_path / 'service-data' / 'x.db'}")
    monkeypatch.setenv("LONGREAD_LLM_CACHE", "false")  # every repeated call would reach the model
    monkeypatch.delenv("LONGREAD_REDIS_URL", raising=False)
    get_settings.cache_clear()
    haystack = tmp_path / "haystack.txt"
    sentences = [
        f"Sentence {i} of the report describes the {w} weather over the northern hills in some detail."
        for i, w in enumerate(["mild", "stormy", "dry", "humid", "cold"] * 120)
    ]
    haystack.write_text("\n\n".join(" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)))
    CALLS.clear()
    yield tmp_path, haystack
    get_settings.cache_clear()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # two commands keep `eval` a subcommand, as in longread's app
    return app


def _run(tmp_path: Path, haystack: Path, strategies: str) -> object:
    args = [
        "eval", "niah", "--model", MODEL, "--strategies", strategies, "--haystack", str(haystack),
        "--lengths", "1024", "--depths", "0.3,0.9", "--limit", "1",
        "--out", str(tmp_path / "report"), "--data-dir", str(tmp_path / "eval-data"), "--quiet",
    ]  # fmt: skip
    return CliRunner().invoke(_app(), args)


def _records(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "report" / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_eval_runs_end_to_end_and_resumes_without_repeating(eval_env):
    tmp_path, haystack = eval_env
    result = _run(tmp_path, haystack, "full,bm25,tree,chain,auto")
    assert result.exit_code == 0, result.output
    records = _records(tmp_path)
    assert len(records) == 2 * 5
    assert all(r["error"] is None for r in records), [r["error"] for r in records]
    assert {(r["strategy"], r["model"]) for r in records} == {
        (s, MODEL) for s in ("full", "bm25", "tree", "chain", "auto")
    }
    for r in records:
        if r["strategy"] in ("full", "bm25"):
            assert r["accuracy"] == 1.0 and r["evidence_recall"] == 1.0 and r["llm_calls"] == 1
    tree_calls = [r["llm_calls"] for r in records if r["strategy"] == "tree"]
    assert all(n > 1 for n in tree_calls)  # the tree is built and navigated through the engine
    calls_first_run = len(CALLS)
    assert calls_first_run == sum(r["llm_calls"] for r in records)

    report = (tmp_path / "report" / "report.md").read_text()
    assert "| strategy | n | accuracy %" in report and "| tree |" in report
    for png in ("niah-accuracy-by-length.png", "niah-accuracy-vs-cost.png", "niah-heatmap.png"):
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the service's own database was not used
    assert not (tmp_path / "service-data").exists()

    again = _run(tmp_path, haystack, "full,bm25,tree,chain,auto")
    assert again.exit_code == 0, again.output
    assert len(CALLS) == calls_first_run  # nothing was asked again
    assert "0 finished, 10 already done" in again.output

    # drop one finished result: only that one runs again
    path = tmp_path / "report" / "results.jsonl"
    kept = [line for line in path.read_text().splitlines() if '"strategy": "bm25"' not in line or "0.90" not in line]
    assert len(kept) == 9
    path.write_text("\n".join(kept) + "\n")
    third = _run(tmp_path, haystack, "full,bm25,tree,chain,auto")
    assert third.exit_code == 0, third.output
    assert len(CALLS) == calls_first_run + 1
    assert "1 finished, 9 already done" in third.output


def test_failed_items_are_recorded_and_retried(eval_env, monkeypatch):
    tmp_path, haystack = eval_env
    from longread.evaluation import runner

    def broken(*_args, **_kwargs):
        raise RuntimeError("model went away")

    monkeypatch.setattr(runner, "_run_baseline", broken)
    result = _run(tmp_path, haystack, "bm25")
    assert result.exit_code == 1
    assert [r["error"] for r in _records(tmp_path)] == ["RuntimeError: model went away"] * 2
    monkeypatch.undo()
    monkeypatch.setenv("LONGREAD_LLM_CACHE", "false")
    get_settings.cache_clear()
    retry = _run(tmp_path, haystack, "bm25")
    assert retry.exit_code == 0, retry.output
    assert "2 finished, 0 already done" in retry.output


def test_bad_arguments_are_clear_errors(eval_env):
    tmp_path, haystack = eval_env
    result = CliRunner().invoke(_app(), ["eval", "niah", "--strategies", "full,magic", "--model", MODEL])
    assert result.exit_code == 2 and "magic" in result.output
    result = CliRunner().invoke(
        _app(), ["eval", "doc2dial", "--lengths", "4k", "--model", MODEL, "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 2 and "--lengths" in result.output
    with pytest.raises(ValueError):
        parse_strategies("")


def test_judge_uses_the_rubric_and_counts_calls(eval_env):
    usage = Usage()
    judge = make_judge(MODEL, usage)
    assert judge("What is the code?", "4821-7730", "It is 4821-7730.") is True
    assert judge("What is the code?", "4821-7730", "It is 1111-2222.") is False
    assert usage.calls == 2
    assert "Reply only with CORRECT or INCORRECT." in CALLS[-1]


def _record(strategy: str, accuracy: float, length: int, **extra: object) -> dict:
    return {
        "suite": "ruler", "item_id": f"{strategy}-{length}-{accuracy}", "strategy": strategy, "model": "m",
        "task": "vt", "length": length, "accuracy": accuracy, "evidence_recall": None, "llm_calls": 2,
        "cached_calls": 0, "prompt_tokens": 1000, "completion_tokens": 10, "cost_usd": 0.01, "wall_s": 1.5,
        "error": None, **extra,
    }  # fmt: skip


def test_report_writer_table_and_charts(tmp_path):
    records = [
        _record("bm25", 1.0, 4000),
        _record("bm25", 0.0, 4000),
        _record("bm25", 1.0, 8000),
        _record("tree", 1.0, 4000, cost_usd=0.05),
        _record("tree", None, 8000, error="LLMError: boom"),
    ]
    report = write_report(tmp_path, records).read_text()
    table = strategy_table(records)
    bm25 = next(line for line in table if line.startswith("| bm25 |"))
    assert bm25.startswith("| bm25 | 3 | 66.7 |")
    tree = next(line for line in table if line.startswith("| tree |"))
    assert "| 0.0500 |" in tree and tree.rstrip().endswith("| 1 |")  # one error counted, not averaged
    assert "### Accuracy % by context length" in report and "| 4K | 50.0 (n=2) | 100.0 (n=1) |" in report
    assert "1 results failed" in report
    for png in ("ruler-accuracy-by-length.png", "ruler-accuracy-vs-cost.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert length_bucket(4000) == 4096 and length_bucket(4096) == 4096 and length_bucket(None) is None
    with pytest.raises(ValueError):
        write_report(tmp_path / "empty")
    docs = tmp_path / "docs" / "results.md"
    docs.parent.mkdir()
    docs.write_text("# Evaluation results\n\nHand-written introduction.\n")
    name = tmp_path.name
    publish_report(tmp_path, docs, "longread eval ruler --limit 1")
    published = publish_report(tmp_path, docs, "longread eval ruler --limit 2").read_text()
    assert published.count(f"<!-- eval:{name} -->") == 1 and "Hand-written introduction." in published
    assert "```\nlongread eval ruler --limit 2\n```" in published and "--limit 1" not in published
    assert f"](img/{name}-ruler-accuracy-by-length.png)" in published and "\n### ruler\n" in published
    assert (tmp_path / "docs" / "img" / f"{name}-ruler-accuracy-vs-cost.png").exists()


def test_readme_summary_rewrites_only_its_marked_section(tmp_path):
    from longread.evaluation.results import ResultStore

    run = tmp_path / "ruler-local"
    store = ResultStore(run / "results.jsonl")
    for record in (_record("bm25", 1.0, 4000), _record("bm25", 0.0, 8000), _record("tree", 1.0, 8000)):
        store.add(record)
    write_report(run)
    docs = tmp_path / "docs" / "eval-results.md"
    publish_report(run, docs, "longread eval ruler")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Project\n\nBefore.\n\n<!-- eval-summary:ruler-local --><!-- /eval-summary:ruler-local -->\n\nAfter.\n"
    )
    publish_summary(run, readme, docs, "longread eval ruler --limit 1")
    page = publish_summary(run, readme, docs, "longread eval ruler --limit 2").read_text()
    assert page.startswith("# Project\n\nBefore.\n") and page.rstrip().endswith("After.")
    assert page.count("<!-- eval-summary:ruler-local -->") == 1 and "--limit 1" not in page
    assert "| context length | bm25 | tree |" in page
    assert "| 4K | 100.0 (n=1) | — |" in page and "| 8K | 0.0 (n=1) | 100.0 (n=1) |" in page
    assert "| all | 50.0 (n=2) | 100.0 (n=1) |" in page
    assert "](docs/img/ruler-local-ruler-accuracy-by-length.png)" in page
    assert "(docs/eval-results.md#run-ruler-local)" in page
    with pytest.raises(ValueError, match="no section for run"):
        publish_summary(run, docs, docs, "longread eval ruler")


def test_summary_suite_scores_rouge_and_skips_query_strategies(eval_env):
    tmp_path, _ = eval_env
    args = [
        "eval", "aclsum", "--model", MODEL, "--strategies", "full,bm25,chain", "--limit", "1",
        "--out", str(tmp_path / "report"), "--data-dir", str(tmp_path / "eval-data"), "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "skipped bm25" in result.output
    records = _records(tmp_path)
    assert sorted(r["strategy"] for r in records) == ["chain", "full"]
    for r in records:
        assert r["error"] is None
        assert 0.0 < r["rouge1"] <= 1.0 and r["accuracy"] == r["rougeLsum"] and r["evidence_recall"] is None


def test_retrieval_only_scores_what_would_be_shown_without_calls(eval_env):
    tmp_path, haystack = eval_env
    result = CliRunner().invoke(
        _app(),
        [
            "eval",
            "niah",
            "--model",
            MODEL,
            "--strategies",
            "bm25,full",
            "--haystack",
            str(haystack),
            "--lengths",
            "1024",
            "--depths",
            "0.3,0.9",
            "--limit",
            "1",
            "--retrieval-only",
            "--out",
            str(tmp_path / "report"),
            "--data-dir",
            str(tmp_path / "eval-data"),
            "--quiet",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert CALLS == []
    records = _records(tmp_path)
    assert sorted(r["strategy"] for r in records) == ["bm25-retrieval"] * 2 + ["full-retrieval"] * 2
    assert all(r["retrieval_recall"] == 1.0 and r["llm_calls"] == 0 for r in records)
    assert "| bm25-retrieval |" in (tmp_path / "report" / "report.md").read_text()
    refused = CliRunner().invoke(
        _app(),
        [
            "eval",
            "niah",
            "--model",
            MODEL,
            "--strategies",
            "tree",
            "--retrieval-only",
            "--data-dir",
            str(tmp_path / "eval-data"),
            "--out",
            str(tmp_path / "r2"),
        ],
    )
    assert refused.exit_code == 2 and "baselines only" in refused.output
