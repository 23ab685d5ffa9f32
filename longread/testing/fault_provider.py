"""A loopback OpenAI-compatible chat server that fails on purpose, for provider-fault tests.

Longread reaches it as `openai/<model>` with LONGREAD_LLM_API_BASE, through litellm's real HTTP client,
exactly as it would reach a hosted provider. A seeded share of requests fails, each failure drawn from
the kinds providers produce: 429 with Retry-After, 500, 503, a reply slower than the client's timeout,
a body that is not JSON, and a JSON body with no choices. The rest are answered by the service test
double (`longread.testing.service_doubles.reply`), which reads the real prompts.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from longread.testing.processes import free_port
from longread.testing.service_doubles import reply

FAULT_KINDS = ("rate_limit", "server_error", "unavailable", "timeout", "malformed", "no_choices")


class FaultyProvider:
    """`rate` of requests fail (kinds drawn evenly from `kinds`); `always` makes every request fail so."""

    def __init__(
        self, rate: float = 0.3, *, kinds: tuple[str, ...] = FAULT_KINDS, seed: int = 7, slow_s: float = 3.0
    ) -> None:
        self.rate, self.kinds, self.slow_s = rate, kinds, slow_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="faulty-provider", daemon=True)

    def __enter__(self) -> FaultyProvider:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the fault server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def _draw(self) -> str:
        with self.lock:
            kind = self.random.choice(self.kinds) if self.random.random() < self.rate else "ok"
            self.counts[kind] += 1
            return kind

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        kind = self._draw()
        if kind == "rate_limit":
            return JSONResponse(
                {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit"}},
                429,
                headers={"Retry-After": "1"},
            )
        if kind == "server_error":
            return JSONResponse({"error": {"message": "The server had an error", "type": "server_error"}}, 500)
        if kind == "unavailable":
            return JSONResponse({"error": {"message": "The engine is overloaded", "type": "server_error"}}, 503)
        if kind == "timeout":
            await asyncio.sleep(self.slow_s)
        if kind == "malformed":
            return Response(b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "cut', 200,
                            media_type="application/json")  # fmt: skip
        if kind == "no_choices":
            return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "choices": [], "usage": {}})
        text = reply(body["messages"])
        return JSONResponse(
            {
                "id": f"chatcmpl-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": _words(body["messages"]), "completion_tokens": len(text.split()),
                          "total_tokens": _words(body["messages"]) + len(text.split())},
            }
        )  # fmt: skip


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


if __name__ == "__main__":  # run one by hand: python -m longread.testing.fault_provider
    with FaultyProvider() as provider:
        print(provider.url)
        try:
            while True:
                time.sleep(5)
                print(json.dumps(provider.counts))
        except KeyboardInterrupt:
            pass
