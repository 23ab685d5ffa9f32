"""Longread as a tool for other agents: the Model Context Protocol server behind `longread mcp`.

Tools (official `mcp` SDK, `MCPServer`), served over stdio on this machine's database and models:
`list_documents`, `list_collections`, `ingest` (a path on this machine), `ask` (a document or a
collection), `summarize` (a document or a collection), `plan` and `get_text` (a span of a document).
Results are structured content: an answer carries its citations, each with document id, filename, character
offsets and quote, so a calling agent can read the cited text back with `get_text`. A long reading
reports MCP progress notifications from the engine's progress callback, and stops at its next step when
the client cancels the call (the MCP cancellation notification).

The API serves the same tools over streamable HTTP at `/mcp` (`longread.api.mcp`), per tenant and
through jobs; the names, the instructions and the answer's shape shared by both live here.

Readings run in a worker thread (the engine is synchronous); bad input becomes a tool error with a
one-line reason, never a traceback.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from sqlmodel import Session, col, select

from longread import collection_reading, engine
from longread.agents.citations import with_pages
from longread.agents.planner import plan_question
from longread.conversation import join_thread
from longread.ingest import IngestError
from longread.llm import LLMClient, LLMError
from longread.progress import JobCanceled, ProgressFn
from longread.storage import collections
from longread.storage.db import session_scope
from longread.storage.models import LOCAL_TENANT, Answer, Collection, Document

MAX_SPAN = 20_000
"""The most characters `get_text` returns at once."""
MAX_LIST = 200

T = TypeVar("T")

TOOLS = ("list_documents", "list_collections", "ingest", "ask", "summarize", "plan", "get_text")
"""The tools every transport serves (stdio here, streamable HTTP in the API)."""
INSTRUCTIONS = (
    "Longread answers questions about documents far longer than a context window, with cited evidence. "
    "Ingest a file, then ask about it (or about a collection of documents); every citation names its "
    "document and character offsets, which get_text reads back."
)

server = MCPServer(name="longread", instructions=INSTRUCTIONS)


def answer_payload(stored: Answer, doc: Document) -> dict[str, Any]:
    """A stored answer (or summary) of one document as the tools return it: citations name the document."""
    return {
        "answer_id": stored.id,
        "document_id": doc.id,
        "filename": doc.filename,
        "question": stored.question,
        "conversation_id": stored.conversation_id,
        "answer": stored.answer,
        "strategy": stored.strategy,
        "strategy_reason": stored.strategy_reason,
        "model": stored.model,
        "citations": [{**c, "document_id": doc.id, "filename": doc.filename} for c in with_pages(stored.citations)],
        "dropped_citations": stored.dropped_citations,
        "llm_calls": stored.llm_calls,
        "latency_s": stored.latency_s,
        "stopped_reason": stored.stopped_reason,
    }


def progress_message(stage: str, done: int, total: int) -> str:
    """The message of an MCP progress notification: the stage with its own count."""
    return f"{stage} {done}/{total}" if total else stage


def _in_session(work: Callable[[Session], T]) -> T:
    """Run `work` with a database session, turning bad input into a tool error with a one-line reason."""
    try:
        with session_scope() as session:
            return work(session)
    except IngestError as exc:
        raise ToolError(f"{exc.filename}: {exc.reason}") from None
    except LLMError as exc:
        raise ToolError(f"model call failed: {exc}") from None
    except ValueError as exc:
        raise ToolError(str(exc)) from None


async def _threaded(work: Callable[[Session], T]) -> T:
    return await anyio.to_thread.run_sync(functools.partial(_in_session, work))


class _Reading:
    """A reading in a worker thread that reports MCP progress and stops when the client cancels the call.

    The thread cannot be interrupted, so a cancelled call leaves it running until its next progress
    report, which raises `JobCanceled` instead of reporting; the engine then stops between steps.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.canceled = threading.Event()
        self.reports = 0

    def progress(self, stage: str, done: int, total: int) -> None:
        if self.canceled.is_set():
            raise JobCanceled("the client canceled the call")
        # MCP progress must only grow, while the engine counts each stage from 0: the count of reports
        # is the progress, and the stage with its own done/total is the message.
        self.reports += 1
        message = progress_message(stage, done, total)
        anyio.from_thread.run(functools.partial(self.ctx.report_progress, self.reports, None, message))

    async def run(self, work: Callable[[Session, ProgressFn], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(_in_session, lambda session: work(session, self.progress)), abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            self.canceled.set()
            raise


def _document(session: Session, key: str) -> Document:
    found = engine.find_document(session, key)
    if found is None:
        raise ValueError(f"no stored document {key!r}")
    return found


def _collection(session: Session, key: str) -> Collection:
    found = collections.find_collection(session, key)
    if found is None:
        raise ValueError(f"no collection {key!r}")
    return found


def _one_scope(document: str | None, collection: str | None) -> None:
    if (document is None) == (collection is None):
        raise ToolError("name either a document or a collection")


@server.tool()
async def list_documents(limit: int = 50) -> dict[str, Any]:
    """The stored documents, newest first: id, filename and size in tokens."""
    limit = max(1, min(limit, MAX_LIST))

    def work(session: Session) -> dict[str, Any]:
        rows = session.exec(  # the columns, not the rows: a row carries the whole text
            select(Document.id, Document.filename, Document.n_tokens)
            .where(Document.tenant_id == LOCAL_TENANT)
            .order_by(col(Document.created_at).desc())
            .limit(limit)
        )
        return {"documents": [{"document_id": i, "filename": f, "tokens": n} for i, f, n in rows]}

    return await _threaded(work)


@server.tool()
async def list_collections() -> dict[str, Any]:
    """The collections (named sets of documents asked across at once) and their documents."""

    def work(session: Session) -> dict[str, Any]:
        return {
            "collections": [
                {
                    "collection_id": c.id,
                    "name": c.name,
                    "documents": [
                        {"document_id": m.document_id, "filename": m.filename, "tokens": m.n_tokens}
                        for m in collections.members(session, c.id)
                    ],
                }
                for c, _n in collections.list_collections(session)
            ]
        }

    return await _threaded(work)


@server.tool()
async def ingest(path: str, collection: str | None = None) -> dict[str, Any]:
    """Store a file from this machine (txt, md, html, pdf, docx, epub); optionally add it to a collection,
    which is created when it does not exist. The same content always gets the same document id."""

    def work(session: Session) -> dict[str, Any]:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ValueError(f"{path}: no such file")
        document, created = engine.ingest_file(session, file)
        result: dict[str, Any] = {
            "document_id": document.id,
            "filename": document.filename,
            "tokens": document.n_tokens,
            "created": created,
        }
        if collection is not None:
            found = collections.gather_into(session, collection, [document.id])
            result["collection_id"] = found.id
        return result

    return await _threaded(work)


@server.tool()
async def ask(
    question: str,
    ctx: Context,
    document: str | None = None,
    collection: str | None = None,
    strategy: str = "auto",
    model: str | None = None,
    conversation: str | None = None,
) -> dict[str, Any]:
    """Answer a question about one document (id or id prefix) or across a collection (name or id).

    The answer comes with citations: document id, filename, segment, character offsets and the quoted
    passage, and its `conversation_id`: pass that as `conversation` to ask a follow-up that reads the
    earlier turns ("and his sister?"); without it a question starts a new conversation. Progress is
    reported as the reading goes (indexing, shortlisting, answering)."""
    _one_scope(document, collection)

    def work(session: Session, progress: ProgressFn) -> dict[str, Any]:
        if collection is not None:
            found = _collection(session, collection)
            thread = join_thread(session, conversation, question, tenant_id=found.tenant_id, collection_id=found.id)
            answer = collection_reading.ask_collection(
                session, found, question, strategy=strategy, model=model, progress=progress, conversation_id=thread.id
            )
            return collection_reading.collection_answer_payload(answer, found)
        doc = _document(session, str(document))
        thread = join_thread(session, conversation, question, tenant_id=doc.tenant_id, document_id=doc.id)
        stored = engine.ask(
            session, doc, question, strategy=strategy, model=model, progress=progress, conversation_id=thread.id
        )
        return answer_payload(stored, doc)

    return await _Reading(ctx).run(work)


@server.tool()
async def summarize(
    ctx: Context,
    document: str | None = None,
    collection: str | None = None,
    strategy: str = "auto",
    model: str | None = None,
) -> dict[str, Any]:
    """Summarise a whole document (id or id prefix), or a collection (name or id): one summary per
    document and one overall. Each document is summarised from its summary tree (auto), a chain of
    agents, or whole. Progress is reported as the reading goes; the citations name their passages."""
    _one_scope(document, collection)

    def work(session: Session, progress: ProgressFn) -> dict[str, Any]:
        if collection is not None:
            found = _collection(session, collection)
            summary = collection_reading.summarize_collection(
                session, found, strategy=strategy, model=model, progress=progress
            )
            return collection_reading.collection_answer_payload(summary, found)
        doc = _document(session, str(document))
        stored = engine.summarize(session, doc, strategy=strategy, model=model, progress=progress)
        return answer_payload(stored, doc)

    return await _Reading(ctx).run(work)


@server.tool()
async def plan(
    question: str, document: str | None = None, collection: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Estimate a question without reading: per strategy, model calls, tokens, cost and seconds, and the
    strategy auto would choose (for a collection: documents, indexes still to build, the answering call)."""
    _one_scope(document, collection)

    def work(session: Session) -> dict[str, Any]:
        client = LLMClient(model)
        if collection is not None:
            found = _collection(session, collection)
            return collection_reading.plan_collection(session, found, "auto", client.model, question=question)
        doc = _document(session, str(document))
        if not question.strip():
            raise ValueError("the question is empty")
        return {
            "document_id": doc.id,
            "filename": doc.filename,
            **plan_question(session, doc, question.strip(), client).as_dict(),
        }

    return await _threaded(work)


@server.tool()
async def get_text(document: str, start: int, end: int) -> dict[str, Any]:
    """Characters [start, end) of a stored document, e.g. around a citation's offsets (at most 20,000)."""

    def work(session: Session) -> dict[str, Any]:
        doc = _document(session, document)
        if not 0 <= start <= end <= doc.n_chars:
            raise ValueError(f"the span must lie within 0..{doc.n_chars} with start <= end")
        if end - start > MAX_SPAN:
            raise ValueError(f"at most {MAX_SPAN} characters at once")
        return {
            "document_id": doc.id,
            "filename": doc.filename,
            "start": start,
            "end": end,
            "n_chars": doc.n_chars,
            "text": doc.text[start:end],
        }

    return await _threaded(work)


def serve_stdio() -> None:
    """Serve the tools over stdin/stdout until the client closes them."""
    server.run("stdio")
