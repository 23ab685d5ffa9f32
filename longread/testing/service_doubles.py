"""Scripted models for the service tests: `scripted/longread.testing.service_doubles.<function>`.

They answer the real prompts by reading them (no canned transcript): summaries keep the words of
what they summarise, navigation opens the part whose summary mentions the needle, and answers cite
the passage that holds it. So a broken tree, lost evidence or wrong citation shows up as a failure.
"""

from __future__ import annotations

import re
import time

from longread.testing.doubles import standalone

NEEDLE = "vault code"
_LABEL = re.compile(r"\[S(\d+)\]")
_PART = re.compile(r"^\[(\d+)\]\s*(.*)$", re.M)
_ANSWER_RE = re.compile(r"vault code is (\d+)", re.I)


def _user(messages: list[dict[str, str]]) -> str:
    return str(messages[-1].get("content", ""))


def _between(text: str, start: str, end: str) -> str:
    head, _, rest = text.partition(start)
    return rest.partition(end)[0] if rest else ""


def _gist(text: str, words: int = 25) -> str:
    """The needle sentence if present, else the first words: a summary that keeps what matters."""
    if match := _ANSWER_RE.search(text):
        return f"This part says the vault code is {match.group(1)}."
    return " ".join(text.split()[:words])


def reply(messages: list[dict[str, str]]) -> str:
    prompt = _user(messages)
    if prompt.startswith("Below is a conversation about a long document"):
        return standalone(prompt)
    if prompt.startswith("Summarise the following passage"):
        return _gist(_between(prompt, "Passage:", "Summary:"))
    if prompt.startswith("The following are summaries"):
        body = _between(prompt, "Part 1:", "Summary:")
        return _gist(body, words=30)
    if "walking down its table of summaries" in prompt:
        for number, summary in _PART.findall(prompt):
            if NEEDLE in summary.lower():
                return f"Reasoning: part {number} mentions the vault code.\nAction: OPEN {number}"
        return "Reasoning: nothing here mentions the vault code.\nAction: REVERT"
    if "You opened this passage" in prompt:
        label = re.search(r"labelled \[S(\d+)\]", prompt)
        passage = _between(prompt, "\n\n", "\n\nQuestion:")
        if label and (match := _ANSWER_RE.search(passage)):
            return f"The passage states it.\nAction: ANSWER The vault code is {match.group(1)} [S{label.group(1)}]."
        return "Not here.\nAction: REVERT"
    if prompt.startswith("The numbered passages below"):
        for number, passage in re.findall(r"^\[(\d+)\] (.*?)(?=^\[\d+\] |^Question: )", prompt, re.S | re.M):
            if match := _ANSWER_RE.search(passage):
                return f"The vault code is {match.group(1)} [{number}]."
        return "The passages do not say."
    if "ran out of steps" in prompt:
        return "I could not find the vault code."
    if prompt.startswith("You are worker"):
        chunk = _between(prompt, "labelled like [S12]):", "Notes from the previous workers:")
        for paragraph in re.split(r"\n\n", chunk):
            if (match := _ANSWER_RE.search(paragraph)) and (label := _LABEL.search(paragraph)):
                return f"The vault code is {match.group(1)} [S{label.group(1)}]."
        return _between(prompt, "Notes from the previous workers:", "Question:").strip() or "(none yet)"
    if "A long document was too long" in prompt or "were taken from it" in prompt:
        source = prompt
        for paragraph in re.split(r"\n\n", source):
            if (match := _ANSWER_RE.search(paragraph)) and (label := _LABEL.search(paragraph)):
                return f"The vault code is {match.group(1)} [S{label.group(1)}]."
        return "The notes do not say."
    return _gist(prompt)


def slow_reply(messages: list[dict[str, str]]) -> str:
    """`reply` at 0.3 s per call, so a tree build lasts long enough to kill a worker in the middle."""
    time.sleep(0.3)
    return reply(messages)


def broken(messages: list[dict[str, str]]) -> str:
    """A provider that fails the way real ones do: internals (address, server path) in the exception text."""
    raise ConnectionError(
        "upstream http://10.0.0.7:8000/v1/chat refused the connection "
        'File "/srv/longread/.venv/lib/python3.12/site-packages/openai/_base_client.py", line 1003'
    )


def cite_all(messages: list[dict[str, str]]) -> str:
    """An answering model that cites every passage stating a vault code (so an answer has several citations)."""
    prompt = _user(messages)
    if "were taken from it" not in prompt and "A long document was too long" not in prompt:
        return reply(messages)
    found = []
    for paragraph in re.split(r"\n\n", prompt):
        if (match := _ANSWER_RE.search(paragraph)) and (label := _LABEL.search(paragraph)):
            found.append(f"- The vault code is **{match.group(1)}** [S{label.group(1)}].")
    return "The document gives these codes:\n\n" + "\n".join(found) if found else "The passages do not say."


def slow_stream(messages: list[dict[str, str]]) -> str:
    """`cite_all`, streamed a word every 0.4 s: long enough to watch an answer being written."""
    return cite_all(messages)


slow_stream.stream_delay_s = 0.4  # type: ignore[attr-defined]  # read by the scripted provider's streaming
