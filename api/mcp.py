"""The MCP tools over streamable HTTP at `/mcp`: what `longread mcp` serves on stdio, for a tenant, through jobs.

Every request is authenticated like the `/v1` routes (`Authorization: Bearer <API key>`, the same
anonymous-local rule and rate limit), and an MCP session answers only the key that opened it. The tools
act for the key's tenant: another tenant's document or collection is not found. `ask` and `summarize`
start the same jobs as `POST .../questions` and `.../summaries` (caps, events and workers included),
report the job's progress as MCP progress notifications while it runs, and cancel the job when the
client cancels the call. `ingest` takes the file's content (an upload), not a path on the server.

Sessions live in this process (stateful streamable HTTP, which cancellation needs): behind a load
balancer over several API processes, a client must stay on one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from longread import collection_reading, engine, mcp_tools
from longread.agents.planner import plan_question
from longread.api.deps import get_principal
from longread.api.errors import ApiError, error_body
from longread.api.events import hub
from longread.api.routes.collections import collection_question_job
from longread.api.routes.documents import question_job
from longread.api.routes.jobs import POLL_S, STALL_S, job_row
from longread.api.schemas import CollectionQuestionIn, CollectionSummaryIn, QuestionIn, SummaryIn
from longread.api.security import Principal
from longread.api.service import index_joined, resolve_model, submit
from longread.config import get_settings
from longread.ingest import IngestError, load_document
from longread.llm import LLMClient
from longread.storage import collections, jobs
from longread.storage.db import init_db, session_scope
from longread.storage.models import Answer, Collection, CollectionAnswer, Document, Job, JobKind, JobStatus

PRINCIPAL = "longread.principal"
"""The scope key under which an authenticated request carries its principal to the tools."""

MESSAGE_OVERHEAD = 64 * 1024
"""Bytes of a tool call's JSON-RPC message around an uploaded file's content."""

T = TypeVar("T")

server = MCPServer(name="longread", instructions=mcp_tools.INSTRUCTIONS)


def _principal(ctx: Context) -> Principal:
    request = ctx.request_context.request
    principal = getattr(request, "scope", {}).get(PRINCIPAL)
    if not isinstance(principal, Principal):  # only an authenticated request reaches the tools
        raise ToolError("not authenticated")
    return principal


def _in_session(work: Callable[[Session], T]) -> T:
    """Run `work` with a database session; refused input becomes a tool error with its one-line reason."""
    try:
        with session_scope() as session:
            return work(session)
    except ApiError as exc:
        raise ToolError(exc.message) from None
    except IngestError as exc:
        raise ToolError(f"{exc.filename}: {exc.reason}") from None
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
        raise ToolError(reasons) from None
    except ValueError as exc:
        raise ToolError(str(exc)) from None


async def _threaded(work: Callable[[Session], T]) -> T:
    return await run_in_threadpool(_in_session, work)


def _document(session: Session, principal: Principal, key: str) -> Document:
    found = engine.find_document(session, key, tenant_id=principal.tenant_id)
    if found is None:
        raise ValueError(f"no stored document {key!r}")
    return found


def _collection(session: Session, principal: Principal, key: str) -> Collection:
    found = collections.find_collection(session, key, tenant_id=principal.tenant_id)
    if found is None:
        raise ValueError(f"no collection {key!r}")
    return found


def _one_scope(document: str | None, collection: str | None) -> None:
    if (document is None) == (collection is None):
        raise ToolError("name either a document or a collection")


async def _follow(ctx: Context, principal: Principal, job_id: str) -> dict[str, Any]:
    """Wait for the job to finish, reporting each change of its progress; cancel it if the call is cancelled.

    Changes come from the process's job-events hub (the one the event streams use); the row is read
    here only when the hub has been silent, as the event streams do.
    """
    events = hub(job_row)
    watch = events.watch(job_id)
    reports, last = 0, None
    try:
        current = await run_in_threadpool(job_row, job_id)
        while True:
            if current is None:
                raise ToolError("the job no longer exists")
            if current["status"] in {s.value for s in jobs.TERMINAL}:
                return current
            seen = (current["stage"], current["done"], current["total"])
            if current["status"] == JobStatus.RUNNING.value and seen != last:
                reports, last = reports + 1, seen
                await ctx.report_progress(reports, None, mcp_tools.progress_message(*seen))
            row, _answer = await watch.next(STALL_S if events.connected.is_set() else POLL_S)
            current = row if row is not None else await run_in_threadpool(job_row, job_id)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_cancel, principal, job_id)
        raise
    finally:
        events.unwatch(watch)


def _cancel(principal: Principal, job_id: str) -> None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is not None and job.tenant_id == principal.tenant_id:
            jobs.request_cancel(session, job)


def _outcome(finished: dict[str, Any]) -> None:
    """A job that did not succeed is a tool error with the job's own (sanitised) sentence."""
    if finished["status"] == JobStatus.CANCELED.value:
        raise ToolError(f"job {finished['id']} was canceled")
    if finished["status"] != JobStatus.SUCCEEDED.value:
        raise ToolError(f"job {finished['id']} failed: {finished['error'] or 'no reason given'}")


def _answer(principal: Principal, finished: dict[str, Any]) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        result_id = finished["result_id"]
        if finished["kind"] in {JobKind.ASK_COLLECTION.value, JobKind.SUMMARIZE_COLLECTION.value}:
            answer = session.get(CollectionAnswer, result_id)
            found = session.get(Collection, answer.collection_id) if answer else None
            if answer is None or found is None or found.tenant_id != principal.tenant_id:
                raise ValueError("the answer is gone")
            return collection_reading.collection_answer_payload(answer, found) | {"job_id": finished["id"]}
        stored = session.get(Answer, result_id)
        doc = session.get(Document, stored.document_id) if stored else None
        if stored is None or doc is None or doc.tenant_id != principal.tenant_id:
            raise ValueError("the answer is gone")
        return mcp_tools.answer_payload(stored, doc) | {"job_id": finished["id"]}

    return _in_session(work)


async def _run_job(ctx: Context, principal: Principal, start: Callable[[Session], Job]) -> dict[str, Any]:
    job = await _threaded(start)
    finished = await _follow(ctx, principal, job.id)
    _outcome(finished)
    return await run_in_threadpool(_answer, principal, finished)


@server.tool()
async def list_documents(ctx: Context, limit: int = 50) -> dict[str, Any]:
    """The stored documents, newest first: id, filename and size in tokens."""
    principal, limit = _principal(ctx), max(1, min(limit, mcp_tools.MAX_LIST))

    def work(session: Session) -> dict[str, Any]:
        rows = session.exec(  # the columns, not the rows: a row carries the whole text
            select(Document.id, Document.filename, Document.n_tokens)
            .where(Document.tenant_id == principal.tenant_id)
            .order_by(col(Document.created_at).desc())
            .limit(limit)
        )
        return {"documents": [{"document_id": i, "filename": f, "tokens": n} for i, f, n in rows]}

    return await _threaded(work)


@server.tool()
async def list_collections(ctx: Context) -> dict[str, Any]:
    """The collections (named sets of documents asked across at once) and their documents."""
    principal = _principal(ctx)

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
                for c, _n in collections.list_collections(session, tenant_id=principal.tenant_id)
            ]
        }

    return await _threaded(work)


@server.tool()
async def ingest(
    filename: str, content: str, ctx: Context, encoding: str = "text", collection: str | None = None
) -> dict[str, Any]:
    """Upload a file (txt, md, html, pdf, docx, epub): its content as text, or base64 with encoding "base64".

    Waits until the document is segmented (progress is reported); optionally adds it to a collection,
    which is created when it does not exist. The same content always gets the same document id."""
    principal = _principal(ctx)
    if encoding not in {"text", "base64"}:
        raise ToolError('encoding is "text" or "base64"')
    try:
        raw = content.encode("utf-8") if encoding == "text" else base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ToolError("the content is not valid base64") from None
    limit = get_settings().UPLOAD_MAX_BYTES
    if len(raw) > limit:
        raise ToolError(f"the file is larger than the {limit}-byte upload limit")
    text = await run_in_threadpool(_in_session, lambda _s: load_document(filename, raw))

    def store(session: Session) -> tuple[dict[str, Any], str | None]:
        document, created = engine.store_text(session, filename=filename, text=text, tenant_id=principal.tenant_id)
        job = submit(session, principal, kind=JobKind.INGEST, document_id=document.id, params={}) if created else None
        result: dict[str, Any] = {"document_id": document.id, "filename": document.filename, "created": created}
        return result, job.id if job else None

    result, job_id = await _threaded(store)
    if job_id is not None:
        _outcome(await _follow(ctx, principal, job_id))

    def finish(session: Session) -> dict[str, Any]:
        document = _document(session, principal, result["document_id"])
        result["tokens"] = document.n_tokens
        if collection is not None:
            found = collections.gather_into(session, collection, [document.id], tenant_id=principal.tenant_id)
            result["collection_id"] = found.id
            result["index_jobs"] = [job.id for job in index_joined(session, principal, [document.id])]
        return result

    return await _threaded(finish)


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
    reported as the reading goes; cancelling the call cancels the job."""
    principal = _principal(ctx)
    _one_scope(document, collection)
    asked = {"question": question, "strategy": strategy, "model": model, "conversation_id": conversation}

    def start(session: Session) -> Job:
        if collection is not None:
            found = _collection(session, principal, collection)
            return collection_question_job(session, principal, found, CollectionQuestionIn.model_validate(asked))
        doc = _document(session, principal, str(document))
        return question_job(session, principal, doc, QuestionIn.model_validate(asked))

    return await _run_job(ctx, principal, start)


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
    agents, or whole. Progress is reported as the reading goes; cancelling the call cancels the job."""
    principal = _principal(ctx)
    _one_scope(document, collection)

    def start(session: Session) -> Job:
        if collection is not None:
            found = _collection(session, principal, collection)
            if not collections.member_ids(session, found.id):
                raise ValueError("the collection has no documents; add some first")
            wanted = CollectionSummaryIn.model_validate({"strategy": strategy, "model": model})
            params = {"collection_id": found.id, "strategy": wanted.strategy.value, "model": resolve_model(model)}
            return submit(session, principal, kind=JobKind.SUMMARIZE_COLLECTION, document_id=None, params=params)
        doc = _document(session, principal, str(document))
        body = SummaryIn.model_validate({"strategy": "tree" if strategy == "auto" else strategy, "model": model})
        params = {"strategy": body.strategy.value, "model": resolve_model(body.model)}
        return submit(session, principal, kind=JobKind.SUMMARIZE, document_id=doc.id, params=params)

    return await _run_job(ctx, principal, start)


@server.tool()
async def plan(
    question: str, ctx: Context, document: str | None = None, collection: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Estimate a question without reading: per strategy, model calls, tokens, cost and seconds, and the
    strategy auto would choose (for a collection: documents, indexes still to build, the answering call)."""
    principal = _principal(ctx)
    _one_scope(document, collection)

    def work(session: Session) -> dict[str, Any]:
        chosen = resolve_model(model)
        if collection is not None:
            return collection_reading.plan_collection(
                session, _collection(session, principal, collection), "auto", chosen, question=question
            )
        doc = _document(session, principal, str(document))
        if not question.strip():
            raise ValueError("the question is empty")
        estimate = plan_question(session, doc, question.strip(), LLMClient(chosen))
        return {"document_id": doc.id, "filename": doc.filename, **estimate.as_dict()}

    return await _threaded(work)


@server.tool()
async def get_text(document: str, start: int, end: int, ctx: Context) -> dict[str, Any]:
    """Characters [start, end) of a stored document, e.g. around a citation's offsets (at most 20,000)."""
    principal = _principal(ctx)

    def work(session: Session) -> dict[str, Any]:
        key = _document_id(session, principal, document)
        n_chars = session.exec(select(Document.n_chars).where(Document.id == key)).one()
        if not 0 <= start <= end <= n_chars:
            raise ValueError(f"the span must lie within 0..{n_chars} with start <= end")
        if end - start > mcp_tools.MAX_SPAN:
            raise ValueError(f"at most {mcp_tools.MAX_SPAN} characters at once")
        # Only the span is read, by the database, not the whole text.
        text = session.exec(select(func.substr(Document.text, start + 1, end - start)).where(Document.id == key)).one()
        filename = session.exec(select(Document.filename).where(Document.id == key)).one()
        return {
            "document_id": key,
            "filename": filename,
            "start": start,
            "end": end,
            "n_chars": n_chars,
            "text": text or "",
        }

    return await _threaded(work)


def _document_id(session: Session, principal: Principal, key: str) -> str:
    """A tenant's document id from an id or a unique id prefix, without reading its text."""
    matches = list(
        session.exec(
            select(Document.id)
            .where(Document.tenant_id == principal.tenant_id, col(Document.id).startswith(key))
            .limit(2)
        )
    )
    if key in matches:
        return key
    if len(matches) != 1:
        raise ValueError(f"no stored document {key!r}")
    return matches[0]


def _authenticate(request: Request) -> Principal:
    with Session(init_db(), expire_on_commit=False) as session:
        return get_principal(request, session, get_settings())


class McpEndpoint:
    """ASGI endpoint of `/mcp`: authenticates like the `/v1` routes, then hands over to the session manager.

    The manager is made per application lifespan (a manager runs once), by `running`.
    """

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # Stateful: a cancellation arrives as its own request and must find the call it cancels. Every
        # request carries an API key (or is the anonymous local tenant, as on all routes), so the Host
        # checks meant for keyless local servers would only refuse deployments' host names.
        server.streamable_http_app(
            stateless_http=False,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            # An ingest call carries the file, as base64 at worst (4 bytes for 3), plus the JSON-RPC envelope.
            max_request_body_size=get_settings().UPLOAD_MAX_BYTES * 4 // 3 + MESSAGE_OVERHEAD,
        )
        self.manager = server.session_manager
        async with self.manager.run():
            yield
        self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = await run_in_threadpool(_authenticate, Request(scope))
        except ApiError as exc:
            response = JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)
            await response(scope, receive, send)
            return
        if self.manager is None:
            unavailable = JSONResponse(error_body("unavailable", "the MCP endpoint is starting"), 503)
            await unavailable(scope, receive, send)
            return
        # The SDK binds a session to the credential that opened it: another key gets 404 for it.
        token = AccessToken(token=principal.key_id, client_id=principal.key_id, scopes=[])
        scope = {**scope, "user": AuthenticatedUser(token), PRINCIPAL: principal}
        await self.manager.handle_request(scope, receive, send)


def install(app: FastAPI) -> McpEndpoint:
    """Route `/mcp` to the tools; the caller runs `endpoint.running()` in the application's lifespan."""
    endpoint = McpEndpoint()
    app.router.routes.append(Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False))
    return endpoint
