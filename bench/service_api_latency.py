"""Latency of the read routes under concurrent clients (p50/p99, throughput).

Runs uvicorn against PostgreSQL and Redis (auth lookup, rate-limit counter and the route's reads on
every request, as deployed) and drives it with `--clients` concurrent httpx clients from this process, or with `wrk` (`--driver wrk`,
a compiled load generator whose own CPU cost is a fraction of httpx's, so more of the two cores
measure the server).
`--workload job` asks `GET /v1/jobs/{id}` only; `mixed` cycles through listing documents, a job, an
answer and a text span of a 200,000-token document.
Usage: python -m bench.service_api_latency [--clients 100] [--requests 20] [--uvicorn-workers 1] [--workload job]
       [--driver httpx|wrk] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.service_common import percentile, process, scratch_environment, synthetic_text
from longread.testing.processes import free_port, wait_for


async def _client(url: str, headers: dict[str, str], paths: list[str], n: int, latencies: list[float]) -> int:
    errors = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for i in range(n):
            start = time.perf_counter()
            response = await http.get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200
    return errors


async def _load(url: str, headers: dict[str, str], paths: list[str], clients: int, requests: int) -> dict[str, float]:
    latencies: list[float] = []
    started = time.perf_counter()
    # Client c starts at path c: every route is in flight at once.
    errors = await asyncio.gather(
        *(
            _client(url, headers, paths[c % len(paths) :] + paths[: c % len(paths)], requests, latencies)
            for c in range(clients)
        )
    )
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": sum(errors),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


WRK_PATHS = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def _wrk(url: str, key: str, paths: list[str], clients: int, seconds: int) -> dict[str, float]:
    """Drive the API with wrk (one thread per core less one, `clients` connections) and parse its report."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_PATHS % ", ".join(json.dumps(p) for p in paths))
        script.flush()
        cmd = [wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "30s",
               "-H", f"Authorization: Bearer {key}", "-s", script.name, url]  # fmt: skip
        report = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {
        "requests": requests,
        "errors": errors,
        "wall_s": seconds,
        "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),  # type: ignore[union-attr]
        "p50_ms": _wrk_ms(report, "50%"),
        "p99_ms": _wrk_ms(report, "99%"),
    }


def _wrk_ms(report: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", report).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--uvicorn-workers", type=int, default=1)
    parser.add_argument("--workload", choices=("job", "mixed"), default="job")
    parser.add_argument("--driver", choices=("httpx", "wrk"), default="httpx", help="the load generator")
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk drives the API")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file; by default one per workload and client count"
    )
    args = parser.parse_args()
    with scratch_environment({"LONGREAD_RATE_LIMIT_PER_MINUTE": "1000000"}) as env:
        from longread.api.security import create_key
        from longread.storage import jobs
        from longread.storage.db import session_scope
        from longread.storage.models import Answer, Document, JobKind

        with session_scope() as session:
            key, row = create_key(session, "bench")
            text = synthetic_text(200_000)
            document = Document(
                id="bench-doc", tenant_id=row.tenant_id, filename="bench.txt", content_hash="bench",
                text=text, n_chars=len(text), n_tokens=200_000,
            )  # fmt: skip
            session.add(document)
            session.commit()
            job = jobs.create_job(
                session, tenant_id=row.tenant_id, kind=JobKind.ASK, document_id=document.id, params={"question": "q"}
            )
            answer = Answer(
                tenant_id=row.tenant_id, document_id=document.id, job_id=job.id, question="q", strategy="tree",
                model="bench", answer="An answer. " * 40,
                citations=[{"segment": i, "start": i * 100, "end": i * 100 + 80, "quote": "a quote"} for i in range(5)],
            )  # fmt: skip
            session.add(answer)
            session.commit()
            paths = [f"/v1/jobs/{job.id}"]
            if args.workload == "mixed":
                paths = [
                    "/v1/documents?limit=20",
                    f"/v1/jobs/{job.id}",
                    f"/v1/answers/{answer.id}",
                    f"/v1/documents/{document.id}/text?start=5000&end=7000",
                ]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "longread.api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.uvicorn_workers),
            "--log-level",
            "warning",
        ]
        with process(cmd, env, Path(env["LONGREAD_DATA_DIR"]) / "api.log"):
            wait_for(lambda: _ok(f"{url}/healthz"), 60, "the API")
            headers = {"Authorization": f"Bearer {key}"}
            asyncio.run(_load(url, headers, paths, 10, 8))  # warm-up: connections, caches
            if args.driver == "wrk":
                result = _wrk(url, key, paths, args.clients, args.seconds)
            else:
                result = asyncio.run(_load(url, headers, paths, args.clients, args.requests))
    result = {
        "workload": args.workload, "clients": args.clients, "uvicorn_workers": args.uvicorn_workers,
        "driver": args.driver, **result,
    }  # fmt: skip
    print(json.dumps(result))
    suffix = "_wrk" if args.driver == "wrk" else ""
    out = args.out or Path(f"bench/results/service_api_latency_{args.workload}_{args.clients}{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
