"""The process's ticker: periodic callbacks from one thread, only while their block runs, in forked children too."""

from __future__ import annotations

import multiprocessing
import threading
import time

from longread.ticker import Ticker


def _count_calls(ticker: Ticker, interval_s: float, run_s: float) -> tuple[int, list[str]]:
    calls: list[str] = []
    with ticker.every(interval_s, lambda: calls.append(threading.current_thread().name)):
        time.sleep(run_s)
    return len(calls), calls


def test_a_callback_runs_every_interval_while_its_block_runs_and_never_after() -> None:
    ticker = Ticker("test-ticker")
    n, calls = _count_calls(ticker, 0.05, 0.5)
    assert 5 <= n <= 11
    assert set(calls) == {"test-ticker"}  # the ticker's thread, not the caller's
    time.sleep(0.2)
    assert len(calls) == n


def test_entries_keep_their_own_intervals_and_share_one_thread() -> None:
    ticker = Ticker("test-two")
    fast: list[float] = []
    slow: list[float] = []
    before = threading.active_count()
    with ticker.every(0.04, lambda: fast.append(time.monotonic())), ticker.every(0.2, lambda: slow.append(0.0)):
        time.sleep(0.65)
    assert len(fast) >= 3 * len(slow) >= 6
    assert threading.active_count() <= before + 1


def test_a_failing_callback_is_logged_and_keeps_its_turns(caplog) -> None:  # type: ignore[no-untyped-def]
    ticker = Ticker("test-failing")
    tries: list[int] = []

    def fail() -> None:
        tries.append(1)
        raise RuntimeError("the database is busy")

    with ticker.every(0.05, fail):
        time.sleep(0.3)
    assert len(tries) >= 3
    assert "periodic test-failing callback failed" in caplog.text


def _child(ticker: Ticker, out: multiprocessing.connection.Connection) -> None:
    out.send(_count_calls(ticker, 0.05, 0.4)[0])


def test_a_forked_child_gets_a_ticker_of_its_own() -> None:
    ticker = Ticker("test-fork")
    with ticker.every(0.05, lambda: None):  # the parent's thread runs, with an entry, at the fork
        receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(target=_child, args=(ticker, send))
        child.start()
        child.join(10)
    assert child.exitcode == 0
    assert receive.recv() >= 4
