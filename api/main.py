"""The FastAPI application: `/v1` resources, OpenAPI docs at `/docs`, the web UI at `/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from longread.api import errors, mcp, middleware
from longread.api.routes import answers, collections, conversations, documents, health, jobs, strategies
from longread.api.uploads import remove_stale_uploads
from longread.storage.db import init_db

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
# Sync routes run in a thread pool and hold a database connection each; more threads than the
# engine's connection pool (5 + 10 overflow) would make requests time out waiting for a connection
# under load instead of queueing for a thread.
API_THREADS = 15


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS
    await run_in_threadpool(init_db)  # migrations, once per process
    await run_in_threadpool(remove_stale_uploads)
    async with app.state.mcp.running():  # the MCP sessions of `/mcp`
        yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="Longread",
        version="0.1.0",
        summary="Answers with cited evidence, and summaries, over documents far longer than a model's window.",
        lifespan=lifespan,
    )
    errors.install(app)
    middleware.install(app)
    for module in (documents, collections, conversations, jobs, answers, strategies, health):
        app.include_router(module.router)
    app.state.mcp = mcp.install(app)  # before the page's catch-all mount
    if (FRONTEND / "index.html").exists():
        app.mount("/", StaticFiles(directory=FRONTEND, html=True), name="frontend")
    return app


app = create_app()
