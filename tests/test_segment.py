from longread.ingest import normalize_text, segment_text, split_sentences
from longread.testing.factories import document_with_facts
from longread.tokens import token_counter_for


def test_split_sentences_keeps_exact_offsets() -> None:
    text = normalize_text("Dr. Smith went to Washington. He came back!\n\nA new paragraph starts here. Ok?")
    sentences = split_sentences(text)
    pieces = [text[s.start : s.end] for s in sentences]
    assert pieces == ["Dr. Smith went to Washington.", "He came back!", "A new paragraph starts here.", "Ok?"]


def test_segments_cover_the_text_within_budget() -> None:
    text = document_with_facts(60, {10: "The code is 4721."})
    counter = token_counter_for("openai/gpt-4o-mini")
    segments = segment_text(text, counter, 200)
    assert len(segments) > 5
    assert all(s.n_tokens <= 200 for s in segments)
    assert all(counter.count(text[s.start : s.end]) <= 200 for s in segments)
    assert segments[0].start == 0 and segments[-1].end == len(text)
    for before, after in zip(segments, segments[1:], strict=False):
        assert before.end <= after.start
        assert text[before.end : after.start].strip() == ""


def test_a_sentence_longer_than_a_segment_is_cut_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(400)) + "."
    counter = token_counter_for("openai/gpt-4o-mini")
    segments = segment_text(text, counter, 50)
    assert len(segments) > 5
    assert all(counter.count(text[s.start : s.end]) <= 50 for s in segments)
    assert "".join(text[s.start : s.end] + " " for s in segments).split() == text.split()


def test_normalize_is_stable() -> None:
    raw = "Title\r\n\r\n\r\n\r\nBody\u00a0text  here.\t\n"
    assert normalize_text(raw) == "Title\n\nBody text here."
    assert normalize_text(normalize_text(raw)) == normalize_text(raw)


def test_document_slice_reads_exact_characters(session) -> None:
    from longread import engine
    from longread.agents.segments import document_slice

    text = "Ünïcode first. " + document_with_facts(20, {5: "The code is 4721."})
    document, _ = engine.store_text(session, filename="d.txt", text=text)
    start = document.text.index("The code is 4721.")
    assert document_slice(session, document.id, start, start + 17) == "The code is 4721."
    assert document_slice(session, document.id, 0, 7) == document.text[0:7]


def test_segment_texts_read_once_match_the_sql_cut(session, monkeypatch) -> None:
    from longread import engine
    from longread.agents import segments
    from longread.agents.segments import SegmentTexts, ensure_segments, scheme_for, segment_with_text

    text = "Ünïcode first. " + document_with_facts(60, {17: "The code is 4721."})
    document, _ = engine.store_text(session, filename="d.txt", text=text)
    scheme = scheme_for("gpt-4o-mini", 200)
    n = len(ensure_segments(session, document, "gpt-4o-mini", 200))
    assert n > 3
    expected = [segment_with_text(session, document.id, scheme, i) for i in range(n)]
    whole = SegmentTexts(session, document.id, scheme)
    assert [whole(i) for i in reversed(range(n))] == expected[::-1]
    assert any("The code is 4721." in piece for _, _, piece in expected)
    # Over the size limit each segment is still cut in SQL, with the same result.
    monkeypatch.setattr(segments, "WHOLE_TEXT_MAX_CHARS", len(document.text) - 1)
    cut = SegmentTexts(session, document.id, scheme)
    assert [cut(i) for i in range(n)] == expected
    assert cut._text is None
