"""Latency of GET /v1/jobs/{id} under concurrent clients (p50/p99, throughput).

Runs uvicorn against PostgreSQL and Redis (auth lookup, rate-limit counter and job read on every
request, as deployed) and drives it with `--clients` concurrent httpx clients from this process.
Usage: python -m bench.service_api_latency [--clients 100] [--requests 20] [--uvicorn-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

from bench.service_common import percentile, process, scratch_environment
from longread.testing.processes import free_port, wait_for


async def _client(url: str, headers: dict[str, str], path: str, n: int, latencies: list[float]) -> int:
    errors = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(n):
            start = time.perf_counter()
            response = await http.get(path)
            latencies.append(time.perf_counter() - start)
            errors += response.status_code != 200
    return errors


async def _load(url: str, headers: dict[str, str], path: str, clients: int, requests: int) -> dict[str, float]:
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(*(_client(url, headers, path, requests, latencies) for _ in range(clients)))
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": sum(errors),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--uvicorn-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/service_api_latency.json"))
    args = parser.parse_args()
    with scratch_environment({"LONGREAD_RATE_LIMIT_PER_MINUTE": "1000000"}) as env:
        from longread.api.security import create_key
        from longread.storage import jobs
        from longread.storage.db import session_scope
        from longread.storage.models import JobKind

        with session_scope() as session:
            key, row = create_key(session, "bench")
            job = jobs.create_job(
                session, tenant_id=row.tenant_id, kind=JobKind.ASK, document_id=None, params={"question": "q"}
            )
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
            asyncio.run(_load(url, headers, f"/v1/jobs/{job.id}", 10, 5))  # warm-up: connections, caches
            result = asyncio.run(_load(url, headers, f"/v1/jobs/{job.id}", args.clients, args.requests))
    result = {"clients": args.clients, "uvicorn_workers": args.uvicorn_workers, **result}
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
