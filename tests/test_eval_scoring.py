"""Scoring functions of the evaluation harness on hand-made cases: exact, partial and none."""

from __future__ import annotations

import pytest

from longread.evaluation.scoring import (
    parse_verdict,
    rouge,
    span_evidence_recall,
    string_evidence_recall,
    string_match_all,
    string_match_part,
    strip_citations,
    token_f1,
)
from longread.evaluation.suites.aalcr import gold_strings


def test_string_match_all_counts_each_reference():
    refs = ["4821", "7730", "9912"]
    assert string_match_all("The numbers are 4821, 7730 and 9912.", refs) == 1.0
    assert string_match_all("The numbers are 4821 and 9912.", refs) == pytest.approx(2 / 3)
    assert string_match_all("I could not find them.", refs) == 0.0
    assert string_match_all("ANSWER: Apple\x00pie", ["apple"]) == 1.0  # case-insensitive, control chars cleaned


def test_string_match_part_needs_any_reference():
    assert string_match_part("It is in France.", ["France", "French Republic"]) == 1.0
    assert string_match_part("Normandy is in Europe.", ["France", "French Republic"]) == 0.0
    with pytest.raises(ValueError):
        string_match_part("x", [])


def test_token_f1_exact_partial_none():
    assert token_f1("The cat sat on the mat.", "the cat sat on the mat") == 1.0
    # prediction {cat, sat} vs gold {cat, sat, on, mat}: P=1, R=0.5
    assert token_f1("cat sat", "The cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("dogs bark", "The cat sat on the mat") == 0.0
    assert token_f1("", "The cat sat") == 0.0


def test_rouge_exact_partial_none():
    refs = ["They propose a new parser.", "It improves accuracy on three treebanks."]
    exact = rouge(" ".join(refs), refs)
    assert exact["rouge1"] == pytest.approx(1.0) and exact["rougeLsum"] == pytest.approx(1.0)
    partial = rouge("They propose a parser for treebanks.", refs)
    assert 0.2 < partial["rouge1"] < 0.9
    assert rouge("Completely unrelated words here.", refs)["rouge2"] == 0.0


def test_parse_verdict():
    assert parse_verdict("CORRECT") is True
    assert parse_verdict("incorrect.") is False
    assert parse_verdict("**INCORRECT** because ...") is False
    assert parse_verdict("I think so") is None


def test_strip_citations_removes_labels_only():
    assert strip_citations("The code is 4821 [S3][S12, S14]. See [note].") == "The code is 4821. See [note]."


def _cite(segment: tuple[int, int], span: tuple[int, int]) -> dict[str, int]:
    return {"segment_start": segment[0], "segment_end": segment[1], "start": span[0], "end": span[1]}


def test_string_evidence_recall():
    text = "Alpha beta. The code is 4821. Gamma delta. The other code is 7730."
    first = _cite((0, 29), (12, 29))
    second = _cite((30, len(text)), (43, len(text)))
    assert string_evidence_recall([first, second], text, ["4821", "7730"]) == 1.0
    assert string_evidence_recall([first], text, ["4821", "7730"]) == 0.5
    assert string_evidence_recall([], text, ["4821"]) == 0.0
    assert string_evidence_recall([first], text, ["not in the text"]) is None


def test_span_evidence_recall_is_overlap():
    assert span_evidence_recall([_cite((0, 100), (40, 60))], (50, 80)) == 1.0
    assert span_evidence_recall([_cite((0, 100), (10, 50))], (50, 80)) == 0.0
    assert span_evidence_recall([], (50, 80)) == 0.0


def test_gold_strings_split_lists():
    parts = gold_strings("1. Airline Industry (12)\n2. Accommodation Industry (4)")
    assert "Airline Industry (12)" in parts and "Accommodation Industry (4)" in parts
    assert gold_strings("Apple v. Samsung, Crocs Inc. v. EUIPO")[1:] == [
        "Apple v. Samsung",
        "Crocs Inc. v. EUIPO",
    ]
