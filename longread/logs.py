"""Log lines without internals: no traceback, SQL, server path or secret, unless DEBUG is on.

A failing task or request used to log its exception with the full traceback, and exception texts
quote SQL statements with their parameters, file paths and provider URLs. `NoInternals` is a handler
filter: a record that carries an exception is rewritten to one line, the message plus the exception's
type and its sanitised text (`longread.failures.sanitise`). With the root logger at DEBUG (someone
investigating), records keep their tracebacks.
"""

from __future__ import annotations

import logging
import re

from longread.failures import sanitise

# A message that prints a traceback or stack, or a Python warning (which names the file that raised it).
_PRINTED_INTERNALS = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+|^\S+\.py:\d+: \w*Warning')


class NoInternals(logging.Filter):
    """Collapse a record's exception into one sanitised line (kept whole at DEBUG level).

    A record whose text itself holds a traceback, a stack or a Python warning is cut to its sanitised
    first line too: Celery's workers log what libraries print to stderr, such as the warning with a
    formatted traceback when a task's result cannot be stored while Redis is down, and beat logs the
    stack of a schedule it could not send.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            reason = sanitise(str(exc))
            record.msg = f"{_one_line(record.getMessage())} ({type(exc).__name__}{': ' + reason if reason else ''})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        elif isinstance(record.msg, str) and _PRINTED_INTERNALS.search(record.getMessage()):
            record.msg = _one_line(record.getMessage())
            record.args = None
        return True


def _one_line(message: str) -> str:
    """The message as is, or its sanitised first line when it prints a traceback, a stack or a warning."""
    if not _PRINTED_INTERNALS.search(message):
        return message
    return sanitise(message) or "an error was printed (details at DEBUG level)"


def quiet_internals(*loggers: logging.Logger, root: bool = True) -> None:
    """Add the filter to every handler of `loggers` and (unless `root` is False) the root logger; idempotent."""
    handlers = [h for logger in ([logging.getLogger()] if root else []) + list(loggers) for h in logger.handlers]
    if root and logging.lastResort is not None:  # what prints when no handler is configured (uvicorn's root)
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, NoInternals) for f in handler.filters):
            handler.addFilter(NoInternals())


def warnings_as_log_lines() -> None:
    """Print Python warnings as one log line each: the category and the sanitised message, no file or line.

    Python prints a warning as `path/to/module.py:LINE: Category: message` plus the source line. A
    worker emits some before its logging is set up (Celery's warning about running as the superuser,
    raised just after `celeryd_init`), so they are routed to the `py.warnings` logger here, whose
    records go to the handlers of the moment (Python's last-resort handler before Celery's own).
    """
    import warnings

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        first = re.split(r"\n\s*\n", str(message).strip(), maxsplit=1)[0]  # its first paragraph, on one line
        text = sanitise(" ".join(first.split())) or "a warning was raised (details at DEBUG level)"
        logging.getLogger("py.warnings").warning("%s: %s", category.__name__, text)

    warnings.showwarning = show
    quiet_internals()


# litellm's own handler prints `filename:lineno` in every line; its records keep their time, name and level.
_LIBRARY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def plain_library_logs() -> None:
    """Give the handlers litellm attaches to its loggers a format without source files, and the filter."""
    formatter = logging.Formatter("%(asctime)s - %(name)s:%(levelname)s - %(message)s", "%H:%M:%S")
    for name in _LIBRARY_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
            if not any(isinstance(f, NoInternals) for f in handler.filters):
                handler.addFilter(NoInternals())
