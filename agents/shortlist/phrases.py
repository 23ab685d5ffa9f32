"""Candidate answer phrases in evidence text: what a short factual answer could be, copied verbatim.

A small base model writes a free answer badly (it repeats the question, stops mid-name, or copies the
wrong line) but ranks given phrases by likelihood well. So the reader lists the phrases an answer could
be and lets the model choose among them (`llm.local_provider.choose_continuation`):

- names: runs of capitalised words ("Robert Martin", "Box Hill", "Lovers' Vows", "Bath"), without a
  leading title or sentence opener, and their last word alone (a surname is often the answer);
- numbers, years and codes (any word with a digit: "1811", "7,319", a UUID);
- short noun phrases after a determiner ("an amber cross" gives "amber cross" and "cross").

A phrase made only of the question's own words or of function words is left out: the answer to "Whom
does Harriet Smith marry?" is not "Harriet Smith".
"""

from __future__ import annotations

import math
import re
from collections import Counter

_FUNCTION_WORDS = frozenset(
    """a an the and but or nor of to in on at by for with from as into upon than then so if not no yes
    he she it they i we you me him us them his her hers their theirs its my our your this that these those
    there here when where what which who whom whose why how all any some each every one such very much
    mr mrs miss ms dr sir lady lord captain colonel madam dear oh ah well now yet still only even also
    is was were be been being are am has had have do did does shall will would should could may might must
    chapter volume""".split()
)
_HYPHEN = r"-(?!-)"
"""A hyphen inside a word ("Bond-street"); two in a row are a dash between words ("Grey--it"), as in
printed texts that spell an em dash with two hyphens."""
_NAME_WORD = rf"[A-Z](?:[\w'’]|{_HYPHEN})*"
_NAME = re.compile(rf"{_NAME_WORD}(?:\s+(?:of\s+|de\s+|du\s+)?{_NAME_WORD})*")
_CODE = re.compile(rf"\b(?:\w|{_HYPHEN})*\d(?:\w|{_HYPHEN})*(?:[.,:]\d+)*\b")
_LOWER_WORD = rf"[a-z](?:[a-z]|{_HYPHEN})+"
_NOUN_PHRASE = re.compile(
    rf"\b(?:a|an|the|his|her|their|my|its|our|your|some)\s+((?:{_LOWER_WORD}\s+){{0,2}}{_LOWER_WORD})"
)
_WORD = re.compile(r"\w+")
_EDGES = " ,;:.!?\"'“”‘’"
"""Punctuation and quotes a phrase never starts or ends with."""
MAX_PHRASES = 40
"""Most phrases scored per question: each costs a short forward pass over the cached prompt."""


def _words(phrase: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(phrase)]


def _informative(phrase: str, asked: set[str]) -> bool:
    words = _words(phrase)
    return bool(words) and not all(w in asked or w in _FUNCTION_WORDS for w in words)


def _clean_name(match: str) -> list[str]:
    """A capitalised run without leading titles or openers, with possessive endings dropped."""
    words = [re.sub(r"['’]s$", "", w) for w in match.split()]
    while words and words[0].lower().rstrip(".") in _FUNCTION_WORDS:
        words = words[1:]
    while words and words[-1].lower() in _FUNCTION_WORDS:
        words = words[:-1]
    return words


def candidate_phrases(evidence: str, question: str, limit: int = MAX_PHRASES) -> list[str]:
    """Phrases of the evidence that could answer the question, most frequent first (ties: first seen)."""
    asked = set(_words(question))
    counts: Counter[str] = Counter()
    order: dict[str, int] = {}

    def add(phrase: str) -> None:
        phrase = phrase.strip(_EDGES)
        if len(phrase) < 2 or not _informative(phrase, asked):
            return
        counts[phrase] += 1
        order.setdefault(phrase, len(order))

    for match in _NAME.finditer(evidence):
        words = _clean_name(match.group(0))
        if not words:
            continue
        joined = " ".join(words)
        add(joined)
        # "Augusta Hawkins of Bath" also gives "Augusta Hawkins", "Hawkins" and "Bath".
        parts = re.split(r"\s+(?:of|de|du)\s+", joined) if len(words) > 2 else [joined]
        for part in parts:
            add(part)
            if " " in part:
                add(part.rsplit(" ", 1)[1])
    for match in _CODE.finditer(evidence):
        add(match.group(0))
    for match in _NOUN_PHRASE.finditer(evidence):
        words = match.group(1).split()
        while words and words[0] in _FUNCTION_WORDS:
            words = words[1:]
        for first in range(len(words)):
            add(" ".join(words[first:]))
    ranked = sorted(counts, key=lambda p: (-counts[p], order[p]))
    return ranked[:limit]


_LEAD = re.compile(r"^(?:(?:to|at|in|on|by|with|from|of|the|a|an)\s+)+", re.IGNORECASE)


def copied_phrase(written: str, evidence: str, question: str) -> str | None:
    """A model's own short answer, trimmed of quotes, end punctuation and leading prepositions, when the
    evidence holds it word for word and it says more than the question; None otherwise."""
    phrase = written.strip().strip(_EDGES).strip()
    phrase = _LEAD.sub("", phrase).strip()
    if len(phrase) < 2 or len(phrase.split()) > 8 or not _informative(phrase, set(_words(question))):
        return None
    return phrase if phrase.lower() in " ".join(evidence.split()).lower() else None


REDUNDANCY_WEIGHT = 1.5
"""Nats a phrase gains per e-fold of its mentions in the evidence. Passages retrieved for a question
keep returning to its answer ("Hartfield" five times where a passing name appears once), while a small
model's likelihood alone favours whatever name sits nearest the question."""
PLACEMENT_WEIGHT = 2.0
"""Nats between a phrase found in the passage the re-ranker put first and one found only in its last:
the attention ranking is evidence about where the answer is, which likelihood does not see."""


def evidence_prior(phrase: str, passages: list[str]) -> float:
    """What the evidence itself says for a phrase, in nats, added to the model's log-probability.

    `passages` are the evidence best first (whitespace collapsed). The prior is `REDUNDANCY_WEIGHT` ×
    ln(mentions across the passages) plus `PLACEMENT_WEIGHT` × how high the best passage holding the
    phrase ranks (1 for the first, 0 for the last); a phrase no passage holds gets nothing.
    """
    needle = phrase.lower()
    found = [text.lower().count(needle) for text in passages]
    mentions = sum(found)
    if not mentions:
        return 0.0
    first = next(rank for rank, count in enumerate(found) if count)
    placement = 1.0 - first / (len(passages) - 1) if len(passages) > 1 else 1.0
    return REDUNDANCY_WEIGHT * math.log(mentions) + PLACEMENT_WEIGHT * placement
