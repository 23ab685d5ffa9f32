"""Pieces of an answer's text as the model writes it (`LLMClient.on_answer_text`), and what they may say.

A reader that writes an answer and then a better one (a second hop that replaces the first) starts the
relayed text over with `RESTART`: a piece that begins with it means "what follows replaces everything
relayed before". Whoever shows the pieces (the CLI, the job's event stream) splits on it with
`after_restart`. `HiddenLines` keeps instruction lines a prompt asks for (`Next: <name>`) out of what a
user sees while the text is still being written.
"""

from __future__ import annotations

from collections.abc import Callable

RESTART = "\x1e"
"""Starts the answer text over: what follows it replaces what was relayed before (ASCII record separator)."""


def after_restart(text: str) -> tuple[str, bool]:
    """The text after the last `RESTART` in `text` and whether there was one (else `text` itself, False)."""
    head, marker, tail = text.rpartition(RESTART)
    return (tail, True) if marker else (head + tail, False)


def restarted(sink: Callable[[str], None]) -> Callable[[str], None]:
    """`sink`, with `RESTART` before its first piece: a new answer whose text replaces the one relayed before."""
    first = True

    def relay(piece: str) -> None:
        nonlocal first
        if not piece:
            return
        if first:
            first, piece = False, RESTART + piece
        sink(piece)

    return relay


class HiddenLines:
    """Relays answer text to `sink` without the lines that start with `prefix` (case and leading spaces aside).

    A line is relayed once it is known not to be hidden: the text of the current line is held back while
    it could still start with `prefix` (a model writes "Ne", then "xt:"), then it goes on piece by piece.
    Whitespace at the start of the answer is dropped and whitespace at its end is held until more text
    follows, so the relayed text matches the answer with its hidden lines cut out and its ends stripped.
    Call `finish` after the last piece. `sent` is what was relayed.
    """

    def __init__(self, sink: Callable[[str], None], prefix: str) -> None:
        self.sink = sink
        self.prefix = prefix.lower()
        self.line = ""  # the current line while it may still be hidden
        self.open = False  # the current line is known to be shown; its pieces go on as they come
        self.spaces = ""  # whitespace held until text follows it
        self.sent = ""

    def __call__(self, piece: str) -> None:
        while piece:
            line, newline, piece = piece.partition("\n")
            self._add(line)
            if newline:
                self._end_line()

    def finish(self) -> None:
        """The text is complete: a held line that is not hidden goes out; trailing whitespace does not."""
        if not self.open and self.line and not self._hidden(self.line):
            self._show(self.line)
        self.line, self.open = "", False

    def _hidden(self, line: str) -> bool:
        return line.lstrip().lower().startswith(self.prefix)

    def _could_be_hidden(self, line: str) -> bool:
        start = line.lstrip().lower()
        return self.prefix.startswith(start) or start.startswith(self.prefix)

    def _add(self, text: str) -> None:
        if self.open:
            self._show(text)
            return
        self.line += text
        if not self._could_be_hidden(self.line):
            self.open, line, self.line = True, self.line, ""
            self._show(line)

    def _end_line(self) -> None:
        if not self.open and self.line and not self._hidden(self.line):
            self._show(self.line)
        if self.open or not self._hidden(self.line):  # a hidden line goes with its line break
            self.spaces += "\n"
        self.line, self.open = "", False

    def _show(self, text: str) -> None:
        body = text.rstrip()
        if not body:
            self.spaces += text
            return
        lead = self.spaces if self.sent else ""
        out = lead + (body if self.sent else body.lstrip())
        self.spaces = text[len(body) :]
        self.sent += out
        self.sink(out)
