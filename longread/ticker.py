"""One thread per process that runs every registered periodic callback when it is due.

A job's heartbeat and a node task's lease renewal each need "call this every few seconds while the
block runs". A thread per block cost a thread start and join on every tree node (hundreds per
second across a level); here a block only adds an entry to a table and removes it, and one daemon
thread, started on first use in each process (a forked pool child starts its own), wakes for the
earliest entry that is due.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Ticker:
    """Periodic callbacks of one process, run one after another by a single daemon thread.

    A callback must not raise for an expected failure (it is logged and the entry stays), and it
    should be short: a slow one delays the others by as much.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._ids = itertools.count()
        self._entries: dict[int, tuple[float, float, Callable[[], None]]] = {}  # id -> (interval, due, fn)
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        """Empty, with no thread yet: at creation, and in a forked child (the parent's thread and any lock it
        held at the fork do not exist there)."""
        self._entries.clear()
        self._wake = threading.Condition()
        self._started = False

    @contextmanager
    def every(self, interval_s: float, callback: Callable[[], None]) -> Iterator[None]:
        """Run `callback` every `interval_s` seconds (the first time one interval from now) while the block runs."""
        entry = next(self._ids)
        with self._wake:
            self._ensure_thread()
            self._entries[entry] = (interval_s, time.monotonic() + interval_s, callback)
            self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._entries.pop(entry, None)

    def _ensure_thread(self) -> None:
        if not self._started:
            self._started = True
            threading.Thread(target=self._run, args=(self._wake,), name=self.name, daemon=True).start()

    def _run(self, wake: threading.Condition) -> None:
        while wake is self._wake:  # a forked child's reset gives the ticker a new condition and thread
            with wake:
                now = time.monotonic()
                due = [(entry, item) for entry, item in self._entries.items() if item[1] <= now]
                for entry, (interval, _, callback) in due:
                    self._entries[entry] = (interval, now + interval, callback)
                if not due:
                    upcoming = min((item[1] for item in self._entries.values()), default=now + 60.0)
                    wake.wait(max(upcoming - now, 0.0))
                    continue
            for entry, (_, _, callback) in due:
                with wake:
                    if entry not in self._entries:  # its block ended meanwhile
                        continue
                try:
                    callback()
                except Exception:
                    log.warning("periodic %s callback failed", self.name, exc_info=True)


_instances: weakref.WeakSet[Ticker] = weakref.WeakSet()
_tickers: dict[str, Ticker] = {}
_tickers_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _tickers_lock
    _tickers_lock = threading.Lock()
    for each in list(_instances):
        each._reset()


os.register_at_fork(after_in_child=_reset_after_fork)


def ticker(name: str) -> Ticker:
    """The process's ticker called `name` (one per kind of work, so a slow database does not delay Redis)."""
    with _tickers_lock:
        if name not in _tickers:
            _tickers[name] = Ticker(name)
        return _tickers[name]
