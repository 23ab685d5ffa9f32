"""A level task's node writes, made on a thread of their own while the task's next model call runs.

A node's bookkeeping (its row, the job's usage and `done`, the speed sums: one transaction) took
about a quarter of the CPU a node costs beside its model call, and a task ran it between two calls,
so the level took that much longer than its calls. Here the task hands the finished node over and
starts its next call at once; the write runs meanwhile on its own database session. One write is in
flight at a time: handing over the next node first waits for the previous write and returns the job
row it left, so the task still sees a cancel or a spent budget one node later at most, and a write
that failed stops the task at its next node. The task drains the writer before it returns, so the
level's chord body finds every node stored.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from sqlmodel import Session

from longread.llm import Usage
from longread.storage import jobs, speeds
from longread.storage.db import init_db, insert_new
from longread.storage.jobs import JobTally
from longread.storage.models import TreeNode, table_of


class NodeWriter:
    """Stores summarised nodes of one tree for one job, one write behind the caller."""

    def __init__(self, job_id: str, tree_id: str) -> None:
        self._job_id, self._tree_id = job_id, tree_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-writer")
        self._session: Session | None = None
        self._pending: Future[JobTally | None] | None = None

    def write(self, row: dict[str, Any] | None, usage: Usage) -> JobTally | None:
        """Store `row` (a node, or None when there is none to store) and add `usage` to the job.

        Returns what the previous write left in the job row (None before the first); raises what the
        previous write raised.
        """
        previous = self.wait()
        self._pending = self._pool.submit(self._store, row, usage)
        return previous

    def wait(self) -> JobTally | None:
        """Wait for the write in flight; its tally, or None when none was."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def _store(self, row: dict[str, Any] | None, usage: Usage) -> JobTally | None:
        if self._session is None:
            self._session = Session(init_db(), expire_on_commit=False)
        session = self._session
        try:
            if row is not None:
                insert_new(session, table_of(TreeNode), row)
            speeds.record_calls(session, usage.samples, commit=False)
            return jobs.add_usage(session, self._job_id, usage, done_of_tree=self._tree_id)
        except Exception:
            session.rollback()
            raise

    def __enter__(self) -> NodeWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Drain the write in flight; its failure is raised unless the block is already raising one."""
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it end; the block's own exception is the one that counts
        finally:
            self._pool.shutdown(wait=True)
            if self._session is not None:
                self._session.close()
