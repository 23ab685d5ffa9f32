"""Job rows as `GET /v1/jobs/{id}` returns them, reused while this process hears every change notice.

Pages, the CLI and scripts poll a running job's status several times a second, many clients at once.
Each such read took a pooled connection, a transaction and a row read, and the route's CPU was mostly
that. Every committed change of a job row sends a notice (`storage.events`), which this process's
subscriber (`api.events`) hears and which drops the job's entry here at once; this process's own
writes drop it before they publish. So an entry is served only while the subscriber is connected, and
never once it is older than `MAX_AGE_S`: that bounds what a lost notice, a usage counter written
between notices (they go out at most every 0.25 s) or a writer that publishes nothing can hide.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

MAX_AGE_S = 0.5
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Entry:
    tenant_id: str
    body: bytes
    read_at: float
    """When the read that produced it began (monotonic): its age counts from before the row was read."""


class JobRowCache:
    """Serialised job rows by id, each dropped by the job's next change notice."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._dropped_at: dict[str, float] = {}
        self._cleared_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Entry | None:
        entry = self._entries.get(job_id)
        if entry is None or time.monotonic() - entry.read_at > MAX_AGE_S:
            return None
        return entry

    def put(self, job_id: str, tenant_id: str, body: bytes, read_at: float) -> None:
        """Keep a row read since `read_at`, unless a notice for it (or a clear) came after the read began.

        A notice that arrives while the row is being read may announce a change the read missed;
        storing that older row would serve it until the next notice.
        """
        with self._lock:
            if self._changed_since(job_id, read_at):
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[job_id] = Entry(tenant_id, body, read_at)

    def changed_since(self, job_id: str, read_at: float) -> bool:
        """Whether a notice for the job (or a clear) came after a read that began at `read_at`."""
        with self._lock:
            return self._changed_since(job_id, read_at)

    def _changed_since(self, job_id: str, read_at: float) -> bool:
        return self._dropped_at.get(job_id, float("-inf")) >= read_at or self._cleared_at >= read_at

    def drop(self, job_id: str) -> None:
        """The job changed: forget its row, and refuse a row whose read began before now."""
        with self._lock:
            self._entries.pop(job_id, None)
            if len(self._dropped_at) >= MAX_ENTRIES:  # forgetting drop times: refuse every read in flight
                self._dropped_at.clear()
                self._cleared_at = time.monotonic()
            self._dropped_at[job_id] = time.monotonic()

    def clear(self) -> None:
        """Notices may have been missed (the subscriber reconnected, or lost its connection)."""
        with self._lock:
            self._entries.clear()
            self._dropped_at.clear()
            self._cleared_at = time.monotonic()


rows = JobRowCache()
