"""Open job event streams on one API process: its CPU while nothing changes, and change-to-client delay.

Runs uvicorn (one process) against PostgreSQL and Redis, opens `--streams` event streams of one running
job from this process, measures the API process's CPU time over `--idle-s` seconds of no change, then
writes `--changes` progress updates through `storage.jobs` (which publishes them as a worker does) and
records when each reaches each stream. `--client raw` (the default) reads the streams over plain asyncio
sockets on uvloop and takes only the `done` count from each event, so the measuring process spends
little of the two cores it shares with the API; `--client httpx` parses every event with httpx and json.
Usage: python -m bench.service_event_streams [--streams 100] [--idle-s 10] [--changes 10] [--client raw|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.service_common import percentile, process, scratch_environment
from longread.testing.processes import free_port, wait_for


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stream(http: httpx.AsyncClient, path: str, arrivals: dict[int, float], opened: asyncio.Event) -> None:
    async with http.stream("GET", path) as response:
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                opened.set()
                data = json.loads(line.split(":", 1)[1])
                if name == "progress":
                    arrivals.setdefault(data["done"], time.monotonic())
                if name == "end":
                    return


DONE = re.compile(rb'"done": ?(\d+)')


async def _raw_stream(
    host: str, port: int, path: str, key: str, arrivals: dict[int, float], opened: asyncio.Event
) -> None:
    """One event stream over a plain socket: only each event's name and its `done` count are read."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    writer.write(request.encode())
    name = b""
    try:
        while line := await reader.readline():
            if line.startswith(b"event:"):
                name = line[6:].strip()
            elif line.startswith(b"data:"):
                opened.set()
                if name == b"progress" and (found := DONE.search(line)):
                    arrivals.setdefault(int(found.group(1)), time.monotonic())
                elif name == b"end":
                    return
    finally:
        writer.close()


async def _measure(url: str, key: str, job_id: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from longread.storage import jobs
    from longread.storage.db import session_scope
    from longread.storage.models import JobStatus

    def progress(done: int) -> None:
        with session_scope() as session:
            jobs.set_progress(session, job_id, stage="reading", done=done, total=1000)

    def finish() -> None:
        with session_scope() as session:
            jobs.finish(session, job_id, JobStatus.SUCCEEDED)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        arrivals: list[dict[int, float]] = [{} for _ in range(args.streams)]
        opened = [asyncio.Event() for _ in range(args.streams)]
        path = f"/v1/jobs/{job_id}/events"
        started = time.perf_counter()
        if args.client == "raw":
            parsed = httpx.URL(url)
            assert parsed.host and parsed.port
            tasks = [
                asyncio.create_task(_raw_stream(parsed.host, parsed.port, path, key, arrivals[i], opened[i]))
                for i in range(args.streams)
            ]
        else:
            tasks = [asyncio.create_task(_stream(http, path, arrivals[i], opened[i])) for i in range(args.streams)]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 600)
        open_s = time.perf_counter() - started
        await asyncio.sleep(2)  # settle: every stream is waiting
        cpu0, wall0 = _cpu_s(pid), time.perf_counter()
        await asyncio.sleep(args.idle_s)
        idle_cpu = (_cpu_s(pid) - cpu0) / (time.perf_counter() - wall0)
        changed_at: dict[int, float] = {}
        for done in range(1, args.changes + 1):
            changed_at[done] = time.monotonic()
            await asyncio.to_thread(progress, done)
            await asyncio.sleep(args.gap_s)
        await asyncio.sleep(1)
        await asyncio.to_thread(finish)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    delays = [seen[done] - at for seen in arrivals for done, at in changed_at.items() if done in seen]
    expected = args.streams * args.changes
    return {
        "streams": args.streams,
        "client": args.client,
        "open_s": round(open_s, 1),
        "idle_cpu_pct_of_one_core": round(idle_cpu * 100, 2),
        "changes_seen": f"{len(delays)}/{expected}",
        "delay_p50_ms": round(percentile(delays, 50) * 1000, 1) if delays else None,
        "delay_p99_ms": round(percentile(delays, 99) * 1000, 1) if delays else None,
        "delay_max_ms": round(max(delays) * 1000, 1) if delays else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--gap-s", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="how this process reads the streams")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with scratch_environment({"LONGREAD_RATE_LIMIT_PER_MINUTE": "100000000"}) as env:
        from longread.api.security import create_key
        from longread.storage import jobs
        from longread.storage.db import session_scope
        from longread.storage.models import JobKind
        from longread.workers import job_events

        job_events.install()  # this process writes the changes, as a worker would
        with session_scope() as session:
            key, row = create_key(session, "bench")
            job = jobs.create_job(session, tenant_id=row.tenant_id, kind=JobKind.SUMMARIZE, document_id=None)
            jobs.claim(session, job.id, None)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--log-level", "warning"]
        with process(cmd, env, Path(env["LONGREAD_DATA_DIR"]) / "api.log") as api:
            wait_for(lambda: _ok(f"{url}/healthz"), 60, "the API")
            if args.client == "raw":
                import uvloop

                result = uvloop.run(_measure(url, key, job.id, api.pid, args))
            else:
                result = asyncio.run(_measure(url, key, job.id, api.pid, args))
    print(json.dumps(result))
    out = args.out or Path(f"bench/results/service_event_streams_{args.streams}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
