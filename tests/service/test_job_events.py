"""Pushed job events: a row change reaches every open stream promptly, and idle streams do not poll.

The API runs in this process (uvicorn in a thread) so the test can count the statements that read the
job table from the API's threads; the changes are written from the test's main thread through
`storage.jobs`, which publishes them over Redis like a worker does.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from longread.testing.processes import free_port, wait_for

pytestmark = pytest.mark.service

STREAMS = 6
JOB_READ = re.compile(r"\bFROM job\b")


class Reads:
    """Statements that read the job table, issued by any thread but the test's own."""

    def __init__(self) -> None:
        self.count = 0
        self._main = threading.get_ident()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() != self._main and JOB_READ.search(statement):
            self.count += 1


@pytest.fixture(scope="module")
def inprocess_api(service_env: dict[str, str]) -> Iterator[tuple[str, Reads]]:
    import uvicorn

    from longread.api.main import create_app
    from longread.storage.db import init_db

    reads = Reads()
    engine = init_db()
    event.listen(engine, "before_cursor_execute", reads)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url), 60, "the in-process API")
    yield url, reads
    server.should_exit = True
    thread.join(timeout=15)
    event.remove(engine, "before_cursor_execute", reads)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _running_job(key: str) -> str:
    from longread.api.security import lookup
    from longread.storage import jobs
    from longread.storage.db import session_scope
    from longread.storage.models import JobKind

    with session_scope() as session:
        principal = lookup(session, key)
        assert principal is not None
        job = jobs.create_job(session, tenant_id=principal.tenant_id, kind=JobKind.SUMMARIZE, document_id=None)
        assert jobs.claim(session, job.id, None) is not None
        return job.id


class Stream:
    """One open event stream, collecting (arrival time, event, id, data)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, dict[str, Any]]] = []
        self.opened = asyncio.Event()

    async def run(self, http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None) -> None:
        async with http.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            name, ident = "", ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("id:"):
                    ident = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((time.monotonic(), name, ident, json.loads(line.split(":", 1)[1])))
                    self.opened.set()
                    if name == "end":
                        return


def test_a_change_reaches_every_stream_promptly_and_idle_streams_do_not_poll(
    inprocess_api: tuple[str, Reads], key_factory: Any
) -> None:
    from longread.storage import jobs
    from longread.storage.db import session_scope
    from longread.storage.models import JobStatus

    url, reads = inprocess_api
    key = key_factory("events")
    job_id = _running_job(key)
    path = f"/v1/jobs/{job_id}/events"

    async def scenario() -> tuple[list[Stream], int, int, float]:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            streams = [Stream() for _ in range(STREAMS)]
            tasks = [asyncio.create_task(s.run(http, path)) for s in streams]
            await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in streams)), 20)
            await asyncio.sleep(1.2)  # let every stream reach its wait
            # The streams' own fallback reads come 10 s after their first: a change that arrives within
            # a second was pushed.
            change_from = reads.count
            changed_at = time.monotonic()
            await asyncio.to_thread(_progress, job_id)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not all(_saw_done(s, 3) for s in streams):
                await asyncio.sleep(0.02)
            change_reads = reads.count - change_from
            idle_from = reads.count
            await asyncio.sleep(4.0)
            idle_reads = reads.count - idle_from
            await asyncio.to_thread(_finish, job_id)
            await asyncio.wait_for(asyncio.gather(*tasks), 20)
            return streams, idle_reads, change_reads, changed_at

    def _progress(job: str) -> None:
        with session_scope() as session:
            jobs.set_progress(session, job, stage="reading", done=3, total=10)

    def _finish(job: str) -> None:
        with session_scope() as session:
            jobs.finish(session, job, JobStatus.SUCCEEDED)

    streams, idle_reads, change_reads, changed_at = asyncio.run(scenario())
    delays = []
    for stream in streams:
        arrival = next(at for at, name, _id, data in stream.events if name == "progress" and data["done"] == 3)
        delays.append(arrival - changed_at)
        assert stream.events[-1][1] == "end" and stream.events[-1][3]["status"] == "succeeded"
    assert max(delays) < 1.0, delays
    # One read of the row for the change, shared by all six streams (and perhaps one periodic refresh).
    assert change_reads <= 2, change_reads
    # Polling at 4 Hz, six streams would read the row about 96 times in 4 s; pushed, only the
    # subscriber's refresh reads it (every 3 s, once for all six).
    assert idle_reads <= 2, idle_reads


def test_a_reconnecting_stream_gets_the_current_row_and_continues_its_ids(
    inprocess_api: tuple[str, Reads], key_factory: Any
) -> None:
    from longread.storage import jobs
    from longread.storage.db import session_scope
    from longread.storage.models import JobStatus

    url, _reads = inprocess_api
    key = key_factory("events-resume")
    job_id = _running_job(key)
    with session_scope() as session:
        jobs.set_progress(session, job_id, stage="reading", done=7, total=10)

    async def reconnect() -> Stream:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            stream = Stream()
            task = asyncio.create_task(stream.run(http, f"/v1/jobs/{job_id}/events", {"Last-Event-ID": "41"}))
            await asyncio.wait_for(stream.opened.wait(), 20)
            with session_scope() as session:
                jobs.finish(session, job_id, JobStatus.SUCCEEDED)
            await asyncio.wait_for(task, 20)
            return stream

    stream = asyncio.run(reconnect())
    first = stream.events[0]
    assert first[1] == "progress" and first[3]["done"] == 7  # the row as it is now, at once
    assert first[2] == "42"  # ids go on from the last one the client saw
    assert stream.events[-1][1] == "end"


def _saw_done(stream: Stream, done: int) -> bool:
    return any(name == "progress" and data["done"] == done for _at, name, _id, data in stream.events)
