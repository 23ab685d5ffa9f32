"""Log lines without internals: no traceback, SQL, server path or secret, unless DEBUG is on.

A failing task or request used to log its exception with the full traceback, and exception texts
quote SQL statements with their parameters, file paths and provider URLs. `NoInternals` is a handler
filter: a record that carries an exception is rewritten to one line, the message plus the exception's
type and its sanitised text (`longread.failures.sanitise`). With the root logger at DEBUG (someone
investigating), records keep their tracebacks.
"""

from __future__ import annotations

import logging

from longread.failures import sanitise


class NoInternals(logging.Filter):
    """Collapse a record's exception into one sanitised line (kept whole at DEBUG level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and not logging.getLogger().isEnabledFor(logging.DEBUG):
            exc = record.exc_info[1]
            reason = sanitise(str(exc))
            record.msg = f"{record.getMessage()} ({type(exc).__name__}{': ' + reason if reason else ''})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


def quiet_internals(*loggers: logging.Logger, root: bool = True) -> None:
    """Add the filter to every handler of `loggers` and (unless `root` is False) the root logger; idempotent."""
    handlers = [h for logger in ([logging.getLogger()] if root else []) + list(loggers) for h in logger.handlers]
    if root and logging.lastResort is not None:  # what prints when no handler is configured (uvicorn's root)
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, NoInternals) for f in handler.filters):
            handler.addFilter(NoInternals())
