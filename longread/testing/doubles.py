"""Scripted models for tests: deterministic readers of Longread's own prompts, served through litellm.

Each function receives the chat messages and returns the reply, as `scripted/longread.testing.doubles.<name>`.
They behave like a careful reader that matches question words against the text, which is enough to
check that the strategies route the right text to the right place.
"""

from __future__ import annotations

import re
import threading

_WORD = re.compile(r"[A-Za-z0-9]+")
_STOP = set("the a an of is was what who which how and or in on to for by with did does do are were".split())

calls: list[str] = []
_lock = threading.Lock()


def _record(prompt: str) -> None:
    with _lock:
        calls.append(prompt)


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def _between(prompt: str, start: str, end: str) -> str:
    head = prompt.split(start, 1)[1] if start in prompt else prompt
    return head.split(end, 1)[0] if end in head else head


def _question(prompt: str) -> str:
    match = re.search(r"Question: (.*)", prompt)
    return match.group(1).strip() if match else ""


def _notable(sentence: str) -> bool:
    """Numbers and names (capitals after the first word) are what a summary must keep."""
    return bool(re.search(r"\d", sentence) or re.search(r"\s[A-Z]", sentence))


def _digits_or_first(text: str) -> str:
    sentences = _sentences(text)
    keep = [s for s in sentences if _notable(s)]
    return " ".join((sentences[:1] + keep)[:6])


_PRONOUN = re.compile(r"\b(it|that|this|he|she|they|them|him|her)\b", re.I)
_WH = re.compile(r"^\s*(what|who|where|when|which|how|why)\s+(is|are|was|were|did|does|do)\s+", re.I)


def standalone(prompt: str) -> str:
    """Rewrite a follow-up as a careful reader would: its pronouns name the subject of the last question."""
    earlier = re.findall(r"^(?:Earlier question|Question): (.*)$", prompt, re.M)
    follow_up = re.search(r"^Follow-up: (.*)$", prompt, re.M)
    if not follow_up:
        return ""
    subject = _WH.sub("", earlier[-1]).rstrip("?. ") if earlier else ""
    return _PRONOUN.sub(subject, follow_up.group(1), count=1) if subject else follow_up.group(1)


def reader(messages: list[dict[str, str]]) -> str:
    prompt = messages[-1]["content"]
    _record(prompt)
    question = _question(prompt)
    if prompt.startswith("Below is a conversation about a long document"):
        return standalone(prompt)
    if prompt.startswith("Summarise the following passage"):
        return _digits_or_first(_between(prompt, "Passage:\n", "\n\nSummary:"))
    if prompt.startswith("The following are summaries"):
        parts = re.findall(r"Part \d+:\n(.*?)\n\n", prompt, re.S)
        return " ".join(parts)
    if "walking down its table of summaries" in prompt:
        parts = re.findall(r"\[(\d+)\] (.*?)\n\n", _between(prompt, "Parts:\n", "Decide which"), re.S)
        q = words(question)
        scored = [(len(q & words(text)), int(n)) for n, text in parts]
        best_score, best = max(scored, key=lambda item: (item[0], -item[1]))
        if best_score == 0:
            return "Reasoning: nothing here matches the question.\nAction: REVERT"
        return f"Reasoning: part {best} mentions the question's words.\nAction: OPEN {best}"
    if "You opened this passage" in prompt:
        opened = re.search(r"labelled \[S(\d+)\]", prompt)
        label = opened.group(1) if opened else ""
        passage = _between(prompt, f"labelled [S{label}]:\n\n", "\n\nQuestion:")
        q = words(question)
        for sentence in _sentences(passage):
            if len(q & words(sentence)) >= max(2, len(q) - 1) and re.search(r"\d", sentence):
                return f"Reasoning: the passage states it.\nAction: ANSWER {sentence} [S{label}]"
        return "Reasoning: this passage does not give the answer.\nAction: REVERT"
    if prompt.startswith("You searched a long document"):
        return "The answer could not be found."
    if prompt.startswith("You are worker"):
        unit = (
            _between(prompt, "previous workers:\n", "\n\nQuestion:")
            if question
            else _between(prompt, "earlier parts:\n", "\n\nRewrite")
        )
        unit = "" if unit.strip() == "(none yet)" else unit.strip()
        chunk = _between(prompt, "labelled like [S12]):\n", "\n\nNotes from" if question else "\n\nRunning summary")
        found = []
        for label, passage in re.findall(r"\[S(\d+)\] (.*?)(?=\n\n\[S\d+\] |\Z)", chunk, re.S):
            for sentence in _sentences(passage):
                if question and len(words(question) & words(sentence)) >= 2 and re.search(r"\d", sentence):
                    found.append(f"{sentence} [S{label}]")
                if not question and re.search(r"\d", sentence):
                    found.append(f"{sentence} [S{label}]")
        return " ".join([unit] + found).strip() or "(nothing relevant yet)"
    if prompt.startswith("A long document was too long"):
        notes = (
            _between(prompt, "Notes:\n", "\n\nQuestion:")
            if question
            else _between(prompt, "Running summary:\n", "\n\nSummary:")
        )
        return notes.strip()
    if prompt.startswith("The numbered passages below"):
        # Numbered passages (attention and shortlist answers): the sentence sharing most question words,
        # cited by its passage number.
        q = words(question)
        hit = (0, "", "")
        for number, passage in re.findall(r"^\[(\d+)\] (.*?)(?=^\[\d+\] |^Question: )", prompt, re.S | re.M):
            for sentence in _sentences(passage):
                overlap = len(q & words(sentence))
                if overlap > hit[0]:
                    hit = (overlap, sentence, number)
        if not hit[0]:
            return "The document does not say."
        return f"{hit[1]} [{hit[2]}]"
    if prompt.startswith("Below is a summary tree"):
        parts = re.findall(r"Part \d+ \(passages (S\d+)[^)]*\):\n(.*?)\n\n", prompt, re.S)
        return " ".join(f"{text.strip()} [{label}]" for label, text in parts)
    return "I cannot tell."
