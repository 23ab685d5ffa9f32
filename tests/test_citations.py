"""Citations name only what was read, map to exact offsets, and unknown ids are dropped and counted."""

from __future__ import annotations

from longread import engine
from longread.agents.base import AnswerDraft, Evidence
from longread.agents.citations import check_citations, cited_labels
from longread.agents.segments import ensure_segments
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"


def test_cited_labels_reads_groups_in_order() -> None:
    assert cited_labels("It is 4 [S3]. Also [S7, S2] and [S3]; not S9 or [X1].") == [3, 7, 2]


def test_unknown_and_unread_citations_are_dropped_and_counted(session) -> None:
    fact = "The code of the violet harbor is 4721."
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {12: fact}))
    segments = ensure_segments(session, document, MODEL, segment_tokens=120)
    holder = next(s for s in segments if fact in document.text[s.start : s.end])
    other = next(s for s in segments if s.index != holder.index)
    draft = AnswerDraft(
        answer=f"The code is 4721 [S{holder.index}] as the keeper said [S{other.index}, S999].",
        strategy="test",
        read=[Evidence(holder.index, holder.start, holder.end)],
    )
    checked = check_citations(draft, document.text, segments, "What is the code of the violet harbor?")
    assert checked.dropped == 2
    assert checked.answer == f"The code is 4721 [S{holder.index}] as the keeper said."
    assert len(checked.citations) == 1
    citation = checked.citations[0]
    assert citation["segment_index"] == holder.index and citation["segment_id"] == holder.id
    assert citation["quote"] == fact == document.text[citation["start"] : citation["end"]]


def test_exact_spans_from_a_strategy_are_kept(session) -> None:
    fact = "The code of the violet harbor is 4721."
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {12: fact}))
    segments = ensure_segments(session, document, MODEL, segment_tokens=120)
    start = document.text.index(fact)
    holder = next(s for s in segments if s.start <= start < s.end)
    span = Evidence(holder.index, start, start + len(fact))
    draft = AnswerDraft(answer="4721", strategy="test", read=[span], cited=[span, Evidence(999, 0, 5)])
    checked = check_citations(draft, document.text, segments, "code?")
    assert checked.dropped == 1
    assert [(c["start"], c["end"]) for c in checked.citations] == [(span.start, span.end)]
    assert checked.citations[0]["quote"] == fact


def test_an_answer_without_labels_cites_the_read_sentence_that_holds_it(session) -> None:
    fact = "The code of the violet harbor is 4721."
    document, _ = engine.store_text(session, filename="d.txt", text=document_with_facts(30, {12: fact}))
    segments = ensure_segments(session, document, MODEL, segment_tokens=120)
    read = [Evidence(s.index, s.start, s.end) for s in segments]
    checked = check_citations(AnswerDraft(answer="4721.", strategy="test", read=read), document.text, segments, "?")
    assert [c["quote"] for c in checked.citations] == [fact]
    assert checked.dropped == 0
    # Not found verbatim in what was read: no citation is invented.
    holder = next(s for s in segments if fact in document.text[s.start : s.end])
    unread = [e for e in read if e.segment_index != holder.index]
    for answer, shown in (("4721", unread), ("not stated", read), ("", read)):
        draft = AnswerDraft(answer=answer, strategy="test", read=shown)
        assert check_citations(draft, document.text, segments, "?").citations == []
