"""The `books` evaluation suite: any folder of texts plus questions.json, loaded, counted and scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longread.evaluation.base import Outcome
from longread.evaluation.suites import make_suite, suite_class
from longread.evaluation.suites.books import ENV, BooksSuite, default_folder


def _folder(tmp_path: Path, questions: object) -> Path:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "harbour.txt").write_text(
        "The harbour master was named Ellis Brand.\n\nHe kept the lamp lit every night.\n", encoding="utf-8"
    )
    (tmp_path / "texts" / "orchard.md").write_text("# Orchard\n\nThe orchard grew Bramley apples.\n", encoding="utf-8")
    (tmp_path / "questions.json").write_text(json.dumps(questions), encoding="utf-8")
    return tmp_path


QUESTIONS = {
    "questions": [
        {"doc": "harbour.txt", "question": "Who was the harbour master?", "expect": "Ellis Brand"},
        {"doc": "harbour.txt", "question": "What did he keep lit?", "expect": ["lamp", "light"]},
        {"doc": "orchard.md", "question": "Which apples grew there?", "expect": "Bramley"},
    ]
}


def test_a_folder_of_books_loads_with_stable_ids_tasks_and_limit(tmp_path: Path) -> None:
    suite = make_suite("books", cache_dir=tmp_path, books=_folder(tmp_path, QUESTIONS))
    items = suite.items()
    assert [i.item_id for i in items] == ["harbour-01", "harbour-02", "orchard-01"]
    assert [i.task for i in items] == ["harbour", "harbour", "orchard"]
    assert items[1].references == ("lamp", "light")
    assert len(suite.items(limit=2)) == 2
    name, text = suite.document(items[2])
    assert name == "orchard.md" and "Bramley apples" in text and "#" not in text


def test_a_plain_list_of_questions_is_accepted_and_bad_files_are_refused(tmp_path: Path) -> None:
    suite = BooksSuite(_folder(tmp_path, QUESTIONS["questions"]))
    assert len(suite.items()) == 3
    for bad, reason in (
        ([{"doc": "missing.txt", "question": "Q?", "expect": "x"}], "missing.txt"),
        ([{"doc": "harbour.txt", "question": "", "expect": "x"}], "needs 'doc'"),
        ([{"doc": "harbour.txt", "question": "Q?", "expect": []}], "needs 'doc'"),
        ([], "no questions"),
    ):
        (tmp_path / "questions.json").write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ValueError, match=reason):
            BooksSuite(tmp_path).items()
    with pytest.raises(ValueError, match="no questions.json"):
        BooksSuite(tmp_path / "nowhere").items()
    with pytest.raises(ValueError, match="--books applies"):
        make_suite("niah", cache_dir=tmp_path, books=tmp_path)


def test_answers_and_cited_quotes_are_scored_by_the_expected_phrase(tmp_path: Path) -> None:
    suite = BooksSuite(_folder(tmp_path, QUESTIONS))
    item = suite.items()[0]
    _, text = suite.document(item)
    at = text.index("Ellis")
    quote = {"segment_start": 0, "segment_end": len(text), "start": at - 4, "end": at + 11}
    elsewhere = {"segment_start": 0, "segment_end": len(text), "start": text.index("He kept"), "end": len(text)}
    assert suite.score(item, Outcome("It was ellis brand [S0].", [quote]), text, None) == {
        "accuracy": 1.0,
        "evidence_recall": 1.0,
    }
    # Only the quoted span counts, not the whole segment around it.
    assert suite.score(item, Outcome("Nobody.", [elsewhere]), text, None) == {"accuracy": 0.0, "evidence_recall": 0.0}


def test_a_phrase_broken_across_printed_lines_still_counts(tmp_path: Path) -> None:
    folder = _folder(tmp_path, QUESTIONS)
    (folder / "texts" / "harbour.txt").write_text(
        "The harbour master was named Ellis\nBrand, and he kept the lamp.\n", encoding="utf-8"
    )
    suite = BooksSuite(folder)
    item = suite.items()[0]
    _, text = suite.document(item)
    assert "Ellis\nBrand" in text
    quote = {"segment_start": 0, "segment_end": len(text), "start": 0, "end": text.index(",")}
    assert suite.score(item, Outcome("Ellis\n Brand", [quote]), text, None) == {
        "accuracy": 1.0,
        "evidence_recall": 1.0,
    }
    cut = {**quote, "end": text.index("Brand")}
    assert suite.score(item, Outcome("Ellis", [cut]), text, None) == {"accuracy": 0.0, "evidence_recall": 0.0}


def test_the_development_set_is_found_by_default_or_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert default_folder().parts[-2:] == ("shared", "bookqa")
    shipped = default_folder()
    if (shipped / "questions.json").exists():
        items = BooksSuite().items()
        assert len(items) == 24 and len({i.doc_key for i in items}) == 3
    monkeypatch.setenv(ENV, str(_folder(tmp_path, QUESTIONS)))
    assert len(BooksSuite().items()) == 3
    assert suite_class("books").recall_metric.startswith("a cited quote")


def test_a_one_kind_run_is_summarised_by_strategy_with_its_median_seconds(tmp_path: Path) -> None:
    from longread.evaluation.report import publish_summary
    from longread.evaluation.results import ResultStore

    out = tmp_path / "books-run"
    store = ResultStore(out / "results.jsonl")
    for n, (strategy, accuracy, wall) in enumerate(
        [("shortlist", 1.0, 10.0), ("shortlist", 0.0, 30.0), ("shortlist", 1.0, 200.0), ("bm25", 0.0, 4.0)]
    ):
        store.add(
            {
                "suite": "books", "item_id": f"b-{n}", "strategy": strategy, "model": "local/default",
                "length": None, "accuracy": accuracy, "evidence_recall": 1.0, "wall_s": wall, "llm_calls": 1,
                "prompt_tokens": 900, "completion_tokens": 5, "cost_usd": 0.0, "error": None,
            }
        )  # fmt: skip
    page = tmp_path / "README.md"
    page.write_text("intro\n<!-- eval-summary:books-run --><!-- /eval-summary:books-run -->\n", encoding="utf-8")
    text = publish_summary(out, page, tmp_path / "docs" / "results.md", "longread eval books").read_text()
    assert "| strategy | n | accuracy % | evidence recall % | median s | mean s |" in text
    assert "| shortlist | 3 | 66.7 | 100.0 | 30.0 | 80.0 | 1.0 | 900 | 5 | 0.0000 |" in text
    assert "| bm25 | 1 | 0.0 |" in text and text.startswith("intro\n")
