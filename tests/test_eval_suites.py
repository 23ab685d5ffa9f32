"""Each evaluation suite's loader yields the documented counts and fields, from the offline packages."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from longread.evaluation.data import EvalDataMissing, package_file
from longread.evaluation.suites import make_suite
from longread.evaluation.suites.aalcr import AALCRSuite
from longread.evaluation.suites.aclsum import ACLSumSuite
from longread.evaluation.suites.doc2dial import CHUNKS, DOMAINS, Doc2DialSuite
from longread.evaluation.suites.niah import NIAHSuite
from longread.evaluation.suites.ruler import RulerSuite
from longread.ingest import normalize_text
from longread.tokens import token_counter_for


def test_missing_package_is_a_clear_error():
    with pytest.raises(EvalDataMissing, match="install-eval-data"):
        package_file("no_such_eval_package", "data.json")


@pytest.mark.slow
def test_aa_lcr_has_100_questions_over_30_document_sets():
    suite = AALCRSuite()
    items = suite.items()
    assert len(items) == 100
    assert len({i.doc_key for i in items}) == 30
    assert all(i.question and i.references[0] for i in items)
    assert 70_000 < min(i.length for i in items) and max(i.length for i in items) < 116_000
    name, text = suite.document(items[0])
    assert name.endswith(".txt") and text.startswith("BEGIN DOCUMENT 1:")
    assert len(suite.items(limit=7)) == 7


def test_doc2dial_counts_gold_chunks_and_fixed_sample():
    suite = Doc2DialSuite()
    items = suite.items()
    assert len(items) == 3939
    assert Counter(i.doc_key for i in items) == DOMAINS
    documents = suite._load() and suite._documents
    assert {d: len(spans) for d, (_, spans) in documents.items()} == CHUNKS
    sample = suite.items(limit=200)
    assert [i.item_id for i in sample] == [i.item_id for i in Doc2DialSuite().items(limit=200)]
    assert set(Counter(i.doc_key for i in sample)) == set(DOMAINS)
    for item in sample[:50]:
        _, text = suite.document(item)
        assert normalize_text(text) == text  # offsets index exactly what the engine stores
        start, end = item.meta["gold_span"]
        assert 0 <= start < end <= len(text)
        assert item.question and item.references[0]
    multi = next(i for i in sample if "Conversation so far" in (i.question or ""))
    assert "Latest user question:" in multi.question


def test_aclsum_splits_and_fields():
    assert [len(ACLSumSuite(s).items()) for s in ("train", "val", "test")] == [100, 50, 100]
    suite = ACLSumSuite()
    items = suite.items(limit=5)
    for item in items:
        assert item.question is None and len(item.references) == 3 and all(item.references)
        _, text = suite.document(item)
        assert text.startswith(item.meta["title"][:20]) and "Abstract" in text
        assert 1_500 < item.length < 25_000
    assert suite.kind == "summary"


def test_niah_grid_places_the_needle_at_depth():
    suite = NIAHSuite(lengths=(1024, 2048), depths=(0.0, 0.5, 1.0), samples=2)
    items = suite.items()
    assert len(items) == 2 * 3 * 2
    counter = token_counter_for("cl100k")
    for item in items:
        _, text = suite.document(item)
        code = item.references[0]
        assert text.count(code) == 1 and item.question and "vault" in item.question
        assert 0.85 * item.length < counter.count(text) < 1.1 * item.length
        assert abs(text.index(code) / len(text) - item.meta["depth"]) < 0.1
    again = NIAHSuite(lengths=(1024, 2048), depths=(0.0, 0.5, 1.0), samples=2).items()
    assert [i.references for i in again] == [i.references for i in items]


def test_niah_reads_any_haystack_file(tmp_path):
    haystack = tmp_path / "hay.txt"
    haystack.write_text(" ".join(f"Sentence number {i} talks about weather." for i in range(400)))
    suite = NIAHSuite(haystack, lengths=(512,), depths=(0.5,), samples=1)
    (item,) = suite.items()
    assert "weather" in suite.document(item)[1]


@pytest.mark.slow
def test_ruler_generates_offline_and_reuses_the_cache(tmp_path, monkeypatch):
    tasks = ("niah_single_1", "vt", "qa_1")
    suite = RulerSuite(tmp_path, tasks=tasks, lengths=(4096,), samples=2)
    items = suite.items()
    assert len(items) == 6 and Counter(i.task for i in items) == dict.fromkeys(tasks, 2)
    for item in items:
        _, text = suite.document(item)
        assert "@@LONGREAD" not in text and "@@LONGREAD" not in (item.question or "")
        assert item.question and item.references and item.length == 4096
        assert any(r.lower() in text.lower() for r in item.references)
        assert 2_000 < token_counter_for("cl100k").count(text) < 4_096
    vt = next(i for i in items if i.task == "vt")
    assert vt.question.count("Question:") == 1  # RULER's in-context demonstration is left out

    def no_generation(*_args, **_kwargs):
        raise AssertionError("cached RULER samples were generated again")

    monkeypatch.setattr(subprocess, "run", no_generation)
    assert [i.item_id for i in RulerSuite(tmp_path, tasks=tasks, lengths=(4096,)).items(limit=1)] == [
        f"{t}/4096/0" for t in tasks
    ]


def test_make_suite_rejects_options_a_suite_does_not_use(tmp_path):
    with pytest.raises(ValueError, match="unknown suite"):
        make_suite("longbench", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="ruler"):
        make_suite("doc2dial", cache_dir=tmp_path, tasks=("vt",))
    with pytest.raises(ValueError, match="unknown RULER task"):
        make_suite("ruler", cache_dir=tmp_path, tasks=("nope",))
