"""Log lines keep the reason of a failure and drop its internals (tracebacks, SQL, paths, keys)."""

from __future__ import annotations

import io
import logging

from longread.logs import NoInternals, quiet_internals


def _logged(level: int) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("longread.test-logs")
    logger.addHandler(handler)
    root = logging.getLogger()
    old_level, logger.propagate = root.level, False
    root.setLevel(level)
    quiet_internals(logger, root=False)
    try:
        try:
            raise RuntimeError(
                "(psycopg.errors.DataError) cannot store NUL\n[SQL: INSERT INTO answer (id, question) VALUES (%s)]\n"
                'File "/srv/longread/storage/jobs.py", line 9; key sk-abcdefghijklmnopqrstuv'
            )
        except RuntimeError:
            logger.exception("job %s failed", "j1")
    finally:
        root.setLevel(old_level)
        logger.removeHandler(handler)
    return stream.getvalue()


def test_an_exception_is_logged_as_one_line_without_internals() -> None:
    text = _logged(logging.INFO)
    assert text.count("\n") == 1
    assert "job j1 failed" in text and "RuntimeError" in text and "cannot store NUL" in text
    for leak in ("Traceback", "INSERT INTO", "/srv/", "sk-abc", "line 9"):
        assert leak not in text, (leak, text)


def test_at_debug_level_the_traceback_is_kept() -> None:
    assert "Traceback" in _logged(logging.DEBUG)


def test_the_filter_is_added_once() -> None:
    handler = logging.StreamHandler(io.StringIO())
    logger = logging.getLogger("longread.test-logs-once")
    logger.addHandler(handler)
    quiet_internals(logger, root=False)
    quiet_internals(logger, root=False)
    assert sum(isinstance(f, NoInternals) for f in handler.filters) == 1
    logger.removeHandler(handler)


def test_a_printed_traceback_is_cut_to_one_line() -> None:
    """What a worker logs from stderr (Celery's warning when Redis is gone while it stores a result)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("longread.test-logs-printed")
    logger.addHandler(handler)
    logger.propagate = False
    quiet_internals(logger, root=False)
    try:
        logger.warning(
            "/srv/venv/lib/python3.11/site-packages/celery/app/trace.py:809: RuntimeWarning: Exception raised "
            'outside body: network:ConnectionError:\nTraceback (most recent call last):\n  File "/srv/venv/lib/'
            'python3.11/site-packages/redis/connection.py", line 357, in connect\nConnectionError: refused\n'
        )
        try:
            raise ConnectionError("Error 111 connecting to the broker")
        except ConnectionError as exc:  # what Celery beat logs: the error, the stack, and exc_info
            logger.error(
                "Message Error: %s\n%s",
                f"Couldn't apply scheduled task sweep: {exc}",
                ["""  File "/srv/venv/lib/python3.11/site-packages/celery/beat.py", line 287, in apply_entry\n"""],
                exc_info=True,
            )
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 2 and "RuntimeWarning: Exception raised outside body" in text, text
    assert "Couldn't apply scheduled task sweep: Error 111 connecting to the broker" in text
    for leak in ("Traceback", "/srv/", "site-packages", "line 357", "line 287"):
        assert leak not in text, (leak, text)


def test_a_warning_is_logged_as_one_line_without_its_file() -> None:
    import warnings

    from longread.logs import warnings_as_log_lines

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("py.warnings")
    logger.addHandler(handler)
    saved = warnings.showwarning
    try:
        warnings_as_log_lines()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(
                "cache at /srv/longread/data/models is stale:\nsecond line\n\nUser information: uid=0",
                UserWarning,
                stacklevel=2,
            )
    finally:
        warnings.showwarning = saved
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 1, text
    assert text.startswith("UserWarning: cache at") and "second line" in text, text
    for leak in ("/srv/", "test_logs.py", "uid=0"):
        assert leak not in text, (leak, text)
