"""The MCP tools over streamable HTTP at `/mcp`, as another agent meets them: the mcp SDK's own client
against the API under uvicorn, with workers reading through the scripted model."""

from __future__ import annotations

import base64
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from longread.testing.processes import wait_for
from tests.service.conftest import SLOW_MODEL, UPLOAD_LIMIT, needle_document, wait_job

pytestmark = [pytest.mark.service, pytest.mark.postgres]

Steps = Callable[[Any], Awaitable[None]]


def _key(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


async def _session_run(api_url: str, key: str, steps: Steps) -> None:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(f"{api_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        await steps(session)


def test_mcp_needs_the_api_key(api_url: str) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(f"{api_url}/mcp", json=hello, headers=accept)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = httpx.post(f"{api_url}/mcp", json=hello, headers=accept | {"Authorization": "Bearer lr_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_the_tools_over_http_ingest_ask_with_progress_and_read_the_cited_text(
    api_url: str, client: httpx.Client, other_client: httpx.Client
) -> None:
    pytest.importorskip("mcp")
    from longread import mcp_tools

    code = random.randint(10_000, 99_999)
    text = needle_document(code, paragraphs=24, seed=5)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, _total: float | None, message: str | None) -> None:
        progress.append((done, message))

    found: dict[str, Any] = {}

    async def steps(session: Any) -> None:
        served = {tool.name for tool in (await session.list_tools()).tools}
        stdio = {tool.name for tool in await mcp_tools.server.list_tools()}
        assert served == stdio == set(mcp_tools.TOOLS)

        # An upload: the content travels in the call, encoded as base64 here.
        stored = await session.call_tool(
            "ingest",
            {"filename": "vault.txt", "content": base64.b64encode(text.encode()).decode(), "encoding": "base64"},
            progress_callback=on_progress,
        )
        assert not stored.is_error, stored.content
        document_id = stored.structured_content["document_id"]
        assert stored.structured_content["created"] and stored.structured_content["tokens"] > 0
        listed = (await session.call_tool("list_documents", {})).structured_content["documents"]
        assert document_id in [d["document_id"] for d in listed]

        progress.clear()
        asked = await session.call_tool(
            "ask",
            {"question": "What is the vault code?", "document": document_id[:12], "strategy": "tree"},
            progress_callback=on_progress,
        )
        assert not asked.is_error, asked.content
        answer = asked.structured_content
        assert str(code) in answer["answer"] and answer["strategy"] == "tree"
        citation = answer["citations"][0]
        assert citation["document_id"] == document_id and citation["filename"] == "vault.txt"
        assert progress, "the job's progress reached the client"
        assert [p[0] for p in progress] == sorted({p[0] for p in progress}), "progress only grows"
        assert any(message and message.startswith("summarising level 1") for _, message in progress), progress

        span = await session.call_tool(
            "get_text", {"document": document_id, "start": citation["start"], "end": citation["end"]}
        )
        assert not span.is_error, span.content
        assert span.structured_content["text"] == citation["quote"] and str(code) in citation["quote"]
        # A follow-up in the conversation the answer started: the same thread, as REST shows it.
        followed = await session.call_tool(
            "ask",
            {
                "question": "And what was it before?",
                "document": document_id,
                "strategy": "bm25",
                "conversation": answer["conversation_id"],
            },
        )
        assert not followed.is_error, followed.content
        assert followed.structured_content["conversation_id"] == answer["conversation_id"]
        found["conversation_id"] = answer["conversation_id"]
        unknown_thread = await session.call_tool(
            "ask", {"question": "Who?", "document": document_id, "conversation": "no-such-thread"}
        )
        assert unknown_thread.is_error and "conversation" in unknown_thread.content[0].text

        # Bad input is a tool error with a one-line reason.
        outside = await session.call_tool("get_text", {"document": document_id, "start": 0, "end": 10**9})
        assert outside.is_error and "Traceback" not in outside.content[0].text
        too_big = await session.call_tool("ingest", {"filename": "big.txt", "content": "a" * (UPLOAD_LIMIT + 1)})
        assert too_big.is_error and f"{UPLOAD_LIMIT}-byte upload limit" in too_big.content[0].text
        unknown = await session.call_tool("ask", {"question": "Who?", "document": document_id, "strategy": "nope"})
        assert unknown.is_error and "strategy" in unknown.content[0].text
        # The same content again lands on the same document, here into a new collection, summarised whole.
        shelf = f"mcp-shelf-{code}"
        again = await session.call_tool("ingest", {"filename": "vault.txt", "content": text, "collection": shelf})
        assert again.structured_content["document_id"] == document_id and not again.structured_content["created"]
        summed = await session.call_tool("summarize", {"collection": shelf})
        assert not summed.is_error, summed.content
        assert summed.structured_content["kind"] == "summary" and str(code) in summed.structured_content["answer"]
        assert [p["document_id"] for p in summed.structured_content["summaries"]] == [document_id]
        found["document_id"] = document_id

    anyio.run(_session_run, api_url, _key(client), steps)

    # The same job and answer rows as REST: the answer is the tenant's.
    answers = client.get(f"/v1/documents/{found['document_id']}/answers").json()
    assert any(str(code) in a["answer"] for a in answers)
    thread = client.get(f"/v1/conversations/{found['conversation_id']}").json()
    assert [turn["question"] for turn in thread["items"]] == ["What is the vault code?", "And what was it before?"]

    async def others(session: Any) -> None:
        listed = (await session.call_tool("list_documents", {})).structured_content["documents"]
        assert found["document_id"] not in [d["document_id"] for d in listed]
        theirs = await session.call_tool("get_text", {"document": found["document_id"], "start": 0, "end": 10})
        assert theirs.is_error and "no stored document" in theirs.content[0].text

    anyio.run(_session_run, api_url, _key(other_client), others)


def test_cancelling_the_call_cancels_the_job(api_url: str, client: httpx.Client) -> None:
    pytest.importorskip("mcp")
    body = client.post(
        "/v1/documents",
        files={"file": ("long.txt", needle_document(random.randint(10_000, 99_999), paragraphs=30).encode())},
    ).json()
    assert wait_job(client, body["job_id"])["status"] == "succeeded"
    document_id = body["document_id"]
    progress: list[str | None] = []

    async def steps(session: Any) -> None:
        reading = anyio.Event()

        async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
            progress.append(message)
            if len(progress) >= 2:
                reading.set()

        async def summarize() -> None:
            await session.call_tool(
                "summarize", {"document": document_id, "model": SLOW_MODEL}, progress_callback=on_progress
            )

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(summarize)
                await reading.wait()
                group.cancel_scope.cancel()  # the client sends MCP's cancellation notification

    anyio.run(_session_run, api_url, _key(client), steps)
    assert progress and all(progress)

    def summary_job() -> dict[str, Any] | None:
        listed = client.get("/v1/jobs", params={"document_id": document_id}).json()
        return next((j for j in listed if j["kind"] == "summarize"), None)

    job = wait_for(summary_job, 10, "the summary job")
    finished = wait_job(client, job["id"], timeout=30)
    assert finished["status"] == "canceled", finished
    assert finished["done"] < finished["total"], "it stopped before the tree was built"
