"""The summary tree and the chain over a collection, on the scripted model through litellm: citations name
their document, stored trees are reused, the chain carries its notes across documents in the stated order."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from longread import engine
from longread.collection_reading import ask_collection, reading_order
from longread.config import get_settings
from longread.llm import Usage
from longread.storage import collections
from longread.storage.collections import Member
from longread.storage.models import Document, Tree
from longread.testing import doubles
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"
FACTS = {
    "ash.txt": "The code of the amber lighthouse is 4721.",
    "birch.txt": "The code of the violet harbor is 9364.",
    "cedar.txt": "The code of the copper granary is 5810.",
}


def _shelf(session, monkeypatch, *, fanout: int = 3, segment: int = 120):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", str(segment))
    monkeypatch.setenv("LONGREAD_TREE_FANOUT", str(fanout))
    get_settings.cache_clear()
    documents = [
        engine.store_text(session, filename=name, text=document_with_facts(24, {7 + 5 * n: fact}, seed=n))[0]
        for n, (name, fact) in enumerate(FACTS.items())
    ]
    return documents, collections.create_collection(session, "codes", [d.id for d in documents])


def _summary_calls() -> int:
    return sum(
        1 for p in doubles.calls if p.startswith("Summarise the following passage") or p.startswith("The following")
    )


def test_the_tree_walks_into_the_document_that_holds_the_answer_and_reuses_stored_trees(session, monkeypatch) -> None:
    documents, shelf = _shelf(session, monkeypatch)
    ash, birch, cedar = documents
    for document in (ash, cedar):  # two documents were summarised before; birch never was
        engine.build_tree(session, document, model=MODEL)
    doubles.calls.clear()
    usage = Usage()
    answer = ask_collection(
        session, shelf, "What is the code of the violet harbor?", strategy="tree", model=MODEL, usage=usage
    )
    assert "9364" in answer.answer and answer.strategy == "tree"
    built = {step["filename"]: step["reused"] for step in answer.trace if step["stage"] == "tree"}
    assert built == {"ash.txt": True, "birch.txt": False, "cedar.txt": True}
    birch_tree = session.exec(select(Tree).where(Tree.document_id == birch.id)).one()
    assert _summary_calls() == birch_tree.n_nodes, "only the document without a tree was summarised"
    first = answer.citations[0]
    assert first["filename"] == "birch.txt" and first["document_id"] == birch.id and "[1]" in answer.answer
    assert birch.text[first["start"] : first["end"]] == first["quote"] == FACTS["birch.txt"]
    walk = [step for step in answer.trace if step["stage"] == "navigate"]
    assert walk[-1]["action"] == "answer" and walk[-1]["filename"] == "birch.txt"
    # The collection root shows each document's root summary, naming the document.
    triage = next(p for p in doubles.calls if "walking down its table of summaries" in p)
    assert all(f"(document {name})" in triage for name in FACTS)

    # Asked again (another question): every tree is stored, so no summary is written again.
    doubles.calls.clear()
    again = ask_collection(session, shelf, "What is the code of the copper granary?", strategy="tree", model=MODEL)
    assert _summary_calls() == 0
    assert "5810" in again.answer and again.citations[0]["filename"] == "cedar.txt"
    assert all(step["reused"] for step in again.trace if step["stage"] == "tree")


def test_more_documents_than_the_fanout_are_grouped_under_collection_nodes(session, monkeypatch) -> None:
    documents, shelf = _shelf(session, monkeypatch, fanout=2)
    doubles.calls.clear()
    answer = ask_collection(session, shelf, "What is the code of the amber lighthouse?", strategy="tree", model=MODEL)
    assert "4721" in answer.answer and answer.citations[0]["filename"] == "ash.txt"
    opened = [step for step in answer.trace if step["stage"] == "navigate" and step["action"] == "open"]
    # root -> a group of documents -> ash's root -> ... : the first open stays at the collection level.
    assert opened[0]["node"][0] == "" and opened[1]["node"][0] == ""
    assert opened[2]["node"][0] == documents[0].id


def test_the_chain_reads_documents_in_the_stated_order_and_carries_its_notes(session, monkeypatch) -> None:
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    documents, shelf = _shelf(session, monkeypatch, segment=150)
    ash, birch, cedar = documents
    doubles.calls.clear()
    question = "What is the code of the amber lighthouse and the code of the copper granary?"
    answer = ask_collection(session, shelf, question, strategy="chain", model=MODEL, order=[cedar.id, "birch.txt"])
    workers = [p for p in doubles.calls if p.startswith("You are worker")]
    read = [re.search(r"\(document (\w+\.txt)\)", p).group(1) for p in workers]  # type: ignore[union-attr]  # every chunk names its document
    assert read == sorted(read, key=["cedar.txt", "birch.txt", "ash.txt"].index) and set(read) == set(FACTS)
    # The note taken in cedar (read first) reaches every worker reading ash (read last).
    for prompt in (p for p, name in zip(workers, read, strict=True) if name == "ash.txt"):
        assert "5810" in prompt.split("Notes from the previous workers:", 1)[1]
    assert "5810" in answer.answer and "4721" in answer.answer
    by_file = {c["filename"]: c for c in answer.citations}
    assert set(by_file) == {"cedar.txt", "ash.txt"}
    for name, citation in by_file.items():
        text = session.get(Document, citation["document_id"]).text  # type: ignore[union-attr]  # cited, so stored
        assert text[citation["start"] : citation["end"]] == citation["quote"] == FACTS[name]
    assert re.search(r"5810.*\[1\]", answer.answer) and "[2]" in answer.answer
    assert answer.llm_calls == len(workers) + 1


def test_a_reading_order_names_members_by_id_or_filename() -> None:
    listed = [Member("a", "ash.txt", 1), Member("b", "birch.txt", 1), Member("c", "cedar.txt", 1)]
    assert reading_order(listed, ["c", "ash.txt"]) == ["c", "a", "b"]
    assert reading_order(listed, None) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not in the collection: z"):
        reading_order(listed, ["b", "z"])


def test_the_cli_asks_a_folder_by_tree_and_by_chain_in_a_given_order(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from longread.cli import app

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "150")
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    get_settings.cache_clear()
    folder = env / "codes"
    folder.mkdir()
    for n, (name, fact) in enumerate(FACTS.items()):
        (folder / name).write_text(document_with_facts(24, {7 + 5 * n: fact}, seed=n))
    runner = CliRunner()
    tree = runner.invoke(
        app,
        [
            "ask",
            str(folder),
            "What is the code of the violet harbor?",
            "--strategy",
            "tree",
            "--model",
            MODEL,
            "--json",
        ],
    )
    assert tree.exit_code == 0, tree.output
    payload = json.loads(tree.stdout)
    assert payload["strategy"] == "tree" and "9364" in payload["answer"]
    assert payload["citations"][0]["filename"] == "birch.txt"
    doubles.calls.clear()
    question = "What is the code of the copper granary?"
    chain = runner.invoke(
        app,
        [
            "ask",
            str(folder),
            question,
            "--strategy",
            "chain",
            "--order",
            "cedar.txt,ash.txt",
            "--model",
            MODEL,
            "--json",
        ],
    )
    assert chain.exit_code == 0, chain.output
    workers = [p for p in doubles.calls if p.startswith("You are worker")]
    assert re.search(r"\(document (\w+\.txt)\)", workers[0]).group(1) == "cedar.txt"  # type: ignore[union-attr]  # every chunk names its document
    assert re.search(r"\(document (\w+\.txt)\)", workers[-1]).group(1) == "birch.txt"  # type: ignore[union-attr]  # the one not named comes last
    cited = json.loads(chain.stdout)["citations"]
    assert "5810" in json.loads(chain.stdout)["answer"] and cited[0]["filename"] == "cedar.txt"
    wrong = runner.invoke(
        app, ["ask", str(folder), question, "--strategy", "chain", "--order", "oak.txt", "--model", MODEL]
    )
    assert wrong.exit_code != 0 and "not in the collection: oak.txt" in wrong.output


def test_the_plan_sums_per_document_figures_counts_stored_trees_as_paid_and_matches_the_readers(
    session, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from longread.collection_reading import plan_collection

    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    documents, shelf = _shelf(session, monkeypatch)
    ash, birch, cedar = documents
    for document in (ash, cedar):
        engine.build_tree(session, document, model=MODEL)
    question = "What is the code of the violet harbor?"
    plan = plan_collection(session, shelf, "tree", MODEL, question=question)
    options = {o["strategy"]: o for o in plan["options"]}
    assert set(options) == {"shortlist", "bm25", "dense", "tree", "chain"}
    assert plan["strategy"] == "tree" and plan["auto_choice"] in options and "auto would pick" in plan["reason"]
    tree = options["tree"]
    assert "2 of 3 documents' trees stored" in tree["note"] and "birch.txt" in tree["note"]
    built = sum(s["calls"] for s in tree["steps"] if s["what"].startswith("summarise"))
    walk = tree["calls"] - built
    assert plan["calls"] == tree["calls"] and plan["prompt_tokens"] == tree["prompt_tokens"] > 0
    assert plan["seconds"] > 0 and plan["completion_tokens"] > 0

    doubles.calls.clear()
    answer = ask_collection(session, shelf, question, strategy="tree", model=MODEL)
    assert _summary_calls() == built, "the plan builds exactly the tree that was missing"
    assert answer.llm_calls - built >= walk  # one path down; backtracking adds calls

    again = plan_collection(session, shelf, "tree", MODEL, question=question)
    stored = {o["strategy"]: o for o in again["options"]}["tree"]
    assert "3 of 3 documents' trees stored" in stored["note"] and stored["calls"] == walk

    # The chain: every document's workers summed, one manager; the run makes exactly those calls.
    chain = {o["strategy"]: o for o in again["options"]}["chain"]
    ran = ask_collection(session, shelf, question, strategy="chain", model=MODEL)
    assert ran.llm_calls == chain["calls"] and chain["calls"] >= 4
    assert ran.prompt_tokens == pytest.approx(chain["prompt_tokens"], rel=0.35)


def test_auto_over_a_collection_is_the_planners_choice(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from longread.collection_reading import plan_collection

    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    documents, shelf = _shelf(session, monkeypatch, segment=150)
    whole = "Compare the codes of every place across all the documents."
    planned = plan_collection(session, shelf, "auto", MODEL, question=whole)
    assert planned["question_kind"] == "whole-text" and planned["strategy"] == "chain" == planned["auto_choice"]
    lookup = plan_collection(session, shelf, "auto", MODEL, question="What is the code of the violet harbor?")
    assert lookup["question_kind"] == "look-up" and lookup["strategy"] in ("bm25", "shortlist")
    import json

    from typer.testing import CliRunner

    from longread.cli import app

    shown = CliRunner().invoke(app, ["plan", "--collection", "codes", whole, "--model", MODEL, "--json"])
    assert shown.exit_code == 0, shown.output
    printed = json.loads(shown.stdout)
    assert printed["strategy"] == "chain" and printed["documents"] == 3
    assert {o["strategy"] for o in printed["options"]} == {"shortlist", "bm25", "dense", "tree", "chain"}
    table = CliRunner().invoke(app, ["plan", "--collection", "codes", whole, "--model", MODEL])
    assert table.exit_code == 0 and "auto would read with chain" in table.output
    doubles.calls.clear()
    answer = ask_collection(session, shelf, whole, strategy="auto", model=MODEL)
    assert answer.strategy == "chain" and any(p.startswith("You are worker") for p in doubles.calls)


def test_the_api_dry_run_estimates_every_collection_strategy_and_refuses_a_stranger_in_the_order(
    env, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.storage.db import session_scope

    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:9/0")  # no job may start
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "120")
    get_settings.cache_clear()
    with session_scope() as session:
        key, row = create_key(session, "reader")
        ids = [
            engine.store_text(
                session, filename=name, text=document_with_facts(24, {7: fact}, seed=n), tenant_id=row.tenant_id
            )[0].id
            for n, (name, fact) in enumerate(FACTS.items())
        ]
        engine.build_tree(session, session.get(Document, ids[0]), model=MODEL)  # type: ignore[arg-type]  # stored above
        shelf = collections.create_collection(session, "codes", ids, tenant_id=row.tenant_id)
        shelf_id = shelf.id
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
        url = f"/v1/collections/{shelf_id}/questions"
        body = {"question": "What is the code of the violet harbor?", "strategy": "tree", "model": MODEL}
        plan = client.post(url, json=body | {"dry_run": True})
        assert plan.status_code == 200, plan.text
        shown = plan.json()
        options = {o["strategy"]: o for o in shown["options"]}
        assert shown["strategy"] == "tree" and shown["auto_choice"] in options and shown["documents"] == 3
        assert shown["calls"] == options["tree"]["calls"] > 0 and shown["seconds"] > 0
        assert "1 of 3 documents' trees stored" in options["tree"]["note"]
        assert options["chain"]["calls"] > 3 and options["chain"]["prompt_tokens"] > options["bm25"]["prompt_tokens"]
        capped = client.post(url, json=body | {"dry_run": True, "strategy": "auto", "max_tokens": 10}).json()
        assert all("tokens" in o["over"] for o in capped["options"] if o["excluded"] is None)
        refused = client.post(url, json=body | {"strategy": "chain", "order": ["oak.txt"], "dry_run": True})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "order_not_members"
        whole = {"question": "List every code of the lighthouse and the harbor.", "strategy": "chain", "model": MODEL}
        spread = {o["strategy"]: o for o in client.post(url, json=whole | {"dry_run": True}).json()["options"]}
        in_order = client.post(url, json=whole | {"dry_run": True, "order": ["cedar.txt"]}).json()["options"]
        assert spread["chain"]["note"].startswith("map-reduce")
        assert not {o["strategy"]: o for o in in_order}["chain"]["note"].startswith("map-reduce")
        stranger = client.post(url, json=body | {"strategy": "chain", "order": ["oak.txt"]})
        assert stranger.status_code == 422 and stranger.json()["error"]["code"] == "order_not_members"
        assert "not in the collection" in stranger.json()["error"]["message"] and "Traceback" not in stranger.text


def test_an_aggregation_question_is_map_reduced_per_document(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from longread.collection_reading import plan_collection

    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    documents, shelf = _shelf(session, monkeypatch, segment=150)
    question = "List every code of the lighthouse, the harbor and the granary."
    planned = plan_collection(session, shelf, "chain", MODEL, question=question)
    chain = {o["strategy"]: o for o in planned["options"]}["chain"]
    assert chain["note"].startswith("map-reduce") and chain["steps"][-1]["what"] == "combine"
    doubles.calls.clear()
    answer = ask_collection(session, shelf, question, strategy="chain", model=MODEL)
    assert answer.strategy_reason.startswith("map-reduce")
    assert [s["filename"] for s in answer.trace if s["stage"] == "map"] == list(FACTS)
    combined = [p for p in doubles.calls if p.startswith("A long document was too long")][-1]
    assert all(f"(document {name})" in combined for name in FACTS), "the combining call sees each document's answer"
    for code in ("4721", "9364", "5810"):
        assert code in answer.answer
    by_file = {c["filename"]: c for c in answer.citations}
    assert set(by_file) == set(FACTS)
    for name, citation in by_file.items():
        text = session.get(Document, citation["document_id"]).text  # type: ignore[union-attr]  # cited, so stored
        assert text[citation["start"] : citation["end"]] == citation["quote"] == FACTS[name]
    assert answer.llm_calls == chain["calls"]
    # With a stated order the same question is read by one chain across the documents instead.
    ordered = ask_collection(session, shelf, question, strategy="chain", model=MODEL, order=["cedar.txt"])
    assert not ordered.strategy_reason.startswith("map-reduce") and "5810" in ordered.answer


# ------------------------------------------------------------------------------- streamed answers


def test_a_collection_s_answer_streams_as_it_is_written_by_each_reader(session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The tree walk's leaf answer, the shortlist's hosted answer and the map-reduce's combining call reach
    `on_answer_text` piece by piece (the scripted model streams a word at a time through litellm); the
    reasoning before a leaf's action and each document's own answer in a map-reduce do not."""
    monkeypatch.setenv("LONGREAD_CHAIN_CHUNK_TOKENS", "1400")
    monkeypatch.setenv("LONGREAD_CHAIN_UNIT_TOKENS", "200")
    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "6")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "300")
    documents, shelf = _shelf(session, monkeypatch, segment=150)
    first_best = lambda question, passages: [-float(n) for n in range(len(passages))]  # noqa: E731  # the fused order

    def streamed(question: str, strategy: str) -> tuple[list[str], str]:
        pieces: list[str] = []
        answer = ask_collection(
            session, shelf, question, strategy=strategy, model=MODEL, reranker=first_best, on_answer_text=pieces.append
        )
        return pieces, answer.answer

    pieces, stored = streamed("What is the code of the violet harbor?", "tree")
    text = "".join(pieces)
    assert len(pieces) > 3 and "9364" in text and "9364" in stored
    assert "Action" not in text and "Reasoning" not in text and re.sub(r"\s*\[S\d+\]", "", text) in stored

    pieces, stored = streamed("What is the code of the copper granary?", "shortlist")
    text = "".join(pieces)
    assert len(pieces) > 3 and "5810" in text and "5810" in stored
    assert re.sub(r"\s*\[\d+\]", "", text).strip(" .") in stored

    pieces, stored = streamed("List every code of the lighthouse, the harbor and the granary.", "chain")
    text = "".join(pieces)
    assert len(pieces) > 3
    for code in ("4721", "9364", "5810"):
        assert text.count(code) == 1 and code in stored  # the combined answer alone, not each document's first
