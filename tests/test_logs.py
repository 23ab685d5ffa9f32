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
