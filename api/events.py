"""Job-change notices fanned out to this process's open event streams: one Redis subscriber per process.

Workers (and this API) publish `job:<id>` after each committed change of a job row and `answer:<id>`
after each relayed piece of answer text (`storage.events`). One daemon thread here subscribes to the
deployment's channel; for a job that has open streams it reads the row once and hands the same
snapshot to every stream of that job, so the database is read once per change, not once per poll per
client. The same thread also reads every watched job every `REFRESH_S` (once per job, however many
streams watch it): a notice lost while the subscriber reconnects only delays a page by that much.
While the subscriber is not connected (no Redis), streams read the row themselves, at their old rate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from longread.api.job_cache import rows as job_rows
from longread.config import get_settings
from longread.storage import events
from longread.workers.dispatch import redis_url

log = logging.getLogger(__name__)

RECONNECT_S = 2.0
REFRESH_S = 3.0

Snapshot = Callable[[str], dict[str, Any] | None]
"""Reads a job's row as its stream sends it (None when it is gone)."""


@dataclass(eq=False)
class Watch:
    """One open stream's mailbox: the newest row the hub read for it, and whether answer text grew."""

    job_id: str
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    row: dict[str, Any] | None = None
    answer: bool = False
    heard_at: float = field(default_factory=time.monotonic)
    """When the hub last vouched for this job (a notice, or a refresh that found the row unchanged)."""

    def deliver(self, row: dict[str, Any] | None, answer: bool) -> None:
        """From the hub's thread: leave the news, then wake the stream on its own loop."""
        if row is not None:
            self.row = row
        self.answer = self.answer or answer
        self.heard_at = time.monotonic()
        try:
            self.loop.call_soon_threadsafe(self.wake.set)
        except RuntimeError:  # the stream's loop closed; its watch is about to be dropped
            pass

    async def next(self, timeout: float) -> tuple[dict[str, Any] | None, bool]:
        """Wait for news, or until the hub has been silent about this job for `timeout`.

        Returns (the row the hub read, or None; whether answer text grew). (None, False) means the
        caller should read the row itself.
        """
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
                break
            except TimeoutError:
                if time.monotonic() - self.heard_at >= timeout:
                    break
        self.wake.clear()
        row, answer = self.row, self.answer
        self.row, self.answer = None, False
        return row, answer


class Hub:
    """The process's subscriber and the streams it serves, by job id."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._watches: dict[str, set[Watch]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.rows_read = 0
        self._last: dict[str, dict[str, Any] | None] = {}  # the row last handed out, per watched job
        self._channel: tuple[str | None, str] | None = None  # the (Redis URL, prefix) subscribed to

    def watch(self, job_id: str) -> Watch:
        self._ensure_running()
        entry = Watch(job_id, asyncio.get_running_loop())
        with self._lock:
            self._watches.setdefault(job_id, set()).add(entry)
        return entry

    def unwatch(self, entry: Watch) -> None:
        with self._lock:
            group = self._watches.get(entry.job_id)
            if group is not None:
                group.discard(entry)
                if not group:
                    del self._watches[entry.job_id]
                    self._last.pop(entry.job_id, None)

    def hears_every_notice(self) -> bool:
        """Whether the subscriber is connected to the channel configured now (started here if it was not)."""
        self._ensure_running()
        return self.connected.is_set() and self._channel == _configured_channel()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-events", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            configured = _configured_channel()
            url = redis_url(start=False)
            try:
                if url is None:
                    raise ConnectionError("no Redis configured")
                self._listen(url, configured)
            except Exception as exc:  # Redis down or restarting: streams poll meanwhile
                log.debug("job events subscriber disconnected: %s", type(exc).__name__)
            self.connected.clear()
            job_rows.clear()  # notices from now on are missed: no cached row may outlive that
            time.sleep(RECONNECT_S)

    def _listen(self, url: str, configured: tuple[str | None, str]) -> None:
        """Subscribe to the channel of the `configured` (Redis URL, key prefix) until the settings name others."""
        client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(events.channel(configured[1]))
            self._channel = configured
            self.connected.set()
            self._catch_up()
            refresh_at = time.monotonic() + REFRESH_S
            while _configured_channel() == configured:  # reconfigured: subscribe where notices now go
                message = pubsub.get_message(timeout=max(0.0, min(1.0, refresh_at - time.monotonic())))
                if message is not None and message.get("type") == "message":
                    self._dispatch(message["data"])
                if time.monotonic() >= refresh_at:
                    with self._lock:
                        watched = list(self._watches)
                    for job_id in watched:
                        self._dispatch(events.message(events.JOB, job_id), refresh=True)
                    refresh_at = time.monotonic() + REFRESH_S
        finally:
            self._channel = None
            pubsub.close()
            client.close()

    def _catch_up(self) -> None:
        """Just subscribed: notices sent while this subscriber was away are lost, so every open stream
        rereads its answer text now and gets its job's row at the next refresh even if unchanged."""
        job_rows.clear()
        with self._lock:
            self._last.clear()
            targets = [target for group in self._watches.values() for target in group]
        for target in targets:
            target.deliver(None, True)

    def _dispatch(self, raw: bytes | str, *, refresh: bool = False) -> None:
        """Hand a notice to the job's streams; a periodic refresh that finds the row as it was wakes none."""
        parsed = events.parse(raw)
        if parsed is None:
            return
        kind, job_id = parsed
        if kind == events.JOB and not refresh:
            job_rows.drop(job_id)  # every job's notice, watched or not: `GET /v1/jobs/{id}` reuses rows
        with self._lock:
            targets = list(self._watches.get(job_id, ()))
        if not targets:
            return
        row = None
        if kind == events.JOB:
            try:
                row = self._snapshot(job_id)
                self.rows_read += 1
            except Exception as exc:  # the streams' fallback read retries
                log.warning("could not read job %s for its streams: %s", job_id, type(exc).__name__)
                return
            with self._lock:
                if refresh and job_id in self._last and self._last[job_id] == row:
                    now = time.monotonic()
                    for target in targets:
                        target.heard_at = now  # vouched for, without waking anyone
                    return
                if job_id in self._watches:
                    self._last[job_id] = row
        for target in targets:
            target.deliver(row, kind == events.ANSWER)


def _configured_channel() -> tuple[str | None, str]:
    """The Redis URL and key prefix the settings name now; the subscriber follows them when they change."""
    settings = get_settings()
    return settings.REDIS_URL, settings.REDIS_KEY_PREFIX


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub(snapshot: Snapshot) -> Hub:
    """The process's hub, started by the first stream or job read that asks for it."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = Hub(snapshot)
            events.add_listener(_drop_own_change)
        return _hub


def _drop_own_change(kind: str, job_id: str) -> None:
    if kind == events.JOB:
        job_rows.drop(job_id)
