"""Attention-guided evidence retrieval over a document of any length (InfiniRetri + ICR + Attrieval).

1. Units: sentences with exact char offsets (`split_sentences`), long ones cut at 128 tokens. The
   document is tokenized once with offsets, so every unit is an exact run of the model's tokens.
2. Chunks: units packed into chunks of W tokens. Each chunk is scored with the carried cache —
   the best units found so far — placed before it, and the question last.
3. Carried cache (InfiniRetri): after each chunk, carry and chunk units compete on the same forward
   pass and the top `carry_tokens` worth of them become the new carry, so it is re-selected, not
   appended. With batch_size > 1 (GPU) the chunks of a batch share the carry that precedes them.
4. Evidence: the final carry first (it won every comparison), then the remaining units by their
   score standardised within their chunk, until `evidence_tokens`; returned in document order.
5. Multi-hop (Attrieval-style query expansion): the question is extended with the evidence found so
   far and the document is re-read; stops when a round adds no new unit to the carry.
6. Resuming: with a `ScanStore`, each pass saves its carry, the best score of every unit read and its
   trace after every batch of chunks, and a pass that finds a saved state starts from the chunk after
   it. The state holds exactly what the next chunk depends on, so a resumed pass ends as an unbroken one.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from longread.agents.attention.config import AttentionConfig
from longread.agents.attention.scoring import PromptLayout, build_layout, token_scores, unit_score
from longread.agents.base import ProgressFn, no_progress
from longread.agents.selection import within_budget
from longread.ingest.segment import split_sentences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """A sentence (or a piece of a long one): char span in the document and its token run."""

    index: int
    start: int
    end: int
    tok_start: int
    tok_end: int

    @property
    def n_tokens(self) -> int:
        return self.tok_end - self.tok_start


@dataclass
class ScoredUnit:
    unit: Unit
    score: float
    z: float
    hop: int = 0


@dataclass
class Retrieval:
    """The retriever's answer: evidence units in document order, with diagnostics."""

    evidence: list[ScoredUnit]
    trace: list[dict[str, Any]] = field(default_factory=list)
    n_tokens: int = 0
    n_chunks: int = 0
    scored_tokens: int = 0
    seconds: float = 0.0
    carried: list[int] = field(default_factory=list)


@dataclass
class DocumentTokens:
    ids: list[int]
    units: list[Unit]


def tokenize_document(tokenizer: Any, text: str, unit_max_tokens: int = 128) -> DocumentTokens:
    """Tokenize once with offsets and map tokens onto sentence units (exact char spans)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
    sentences = split_sentences(text)
    if not sentences or not ids:
        return DocumentTokens(ids, [])
    starts = [s.start for s in sentences]
    owner = [max(bisect.bisect_right(starts, max(a, b - 1)) - 1, 0) for a, b in offsets]
    units: list[Unit] = []
    tok = 0
    n = len(ids)
    for si, sentence in enumerate(sentences):
        first = tok
        while tok < n and owner[tok] <= si:
            tok += 1
        if tok == first:
            continue
        # Cut long sentences into pieces of at most unit_max_tokens tokens, at token boundaries.
        for a in range(first, tok, unit_max_tokens):
            b = min(a + unit_max_tokens, tok)
            c0 = sentence.start if a == first else max(offsets[a][0], sentence.start)
            c1 = sentence.end if b == tok else min(offsets[b - 1][1], sentence.end)
            c0 = _skip_space(text, c0, c1)
            if c1 > c0:
                units.append(Unit(len(units), c0, c1, a, b))
    return DocumentTokens(ids, units)


def _skip_space(text: str, start: int, end: int) -> int:
    while start < end and text[start].isspace():
        start += 1
    return start


def pack_chunks(units: list[Unit], chunk_tokens: int) -> list[list[Unit]]:
    """Whole units, greedily, into chunks of at most chunk_tokens tokens."""
    chunks: list[list[Unit]] = []
    current: list[Unit] = []
    used = 0
    for unit in units:
        if current and used + unit.n_tokens > chunk_tokens:
            chunks.append(current)
            current, used = [], 0
        current.append(unit)
        used += unit.n_tokens
    if current:
        chunks.append(current)
    return chunks


def _select(candidates: list[tuple[Unit, float]], budget: int, max_units: int) -> list[tuple[Unit, float]]:
    """Best-scoring units that fit the token budget and unit cap (at least one), best first.

    The unit cap keeps a budget from filling up with many tiny filler sentences.
    """
    ranked = sorted(candidates, key=lambda c: -c[1])
    return within_budget(ranked, budget, lambda c: c[0].n_tokens, first_always=True, max_items=max_units)


class ScanStore(Protocol):
    """Where a reading's passes keep their progress (`storage.scans.ScanCheckpoints` in the database)."""

    def load(self, pass_key: str) -> tuple[int, dict[str, Any]] | None: ...

    def save(self, pass_key: str, next_chunk: int, total: int, state: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


@dataclass
class PassState:
    """What the next chunk of a pass depends on: the carried units, each unit's best standardised score,
    and what the pass has recorded so far."""

    carry: list[tuple[Unit, float]] = field(default_factory=list)
    best: dict[int, ScoredUnit] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    scored_tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        # Scores as float.hex: exact, and -inf survives JSON (PostgreSQL's json has no Infinity).
        return {
            "carry": [[unit.index, score.hex()] for unit, score in self.carry],
            "best": [[i, s.score.hex(), s.z.hex(), s.hop] for i, s in self.best.items()],
            "trace": self.trace,
            "scored_tokens": self.scored_tokens,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], units: list[Unit]) -> PassState:
        return cls(
            carry=[(units[i], float.fromhex(score)) for i, score in data["carry"]],
            best={
                int(i): ScoredUnit(units[i], float.fromhex(score), float.fromhex(z), int(hop))
                for i, score, z, hop in data["best"]
            },
            trace=list(data["trace"]),
            scored_tokens=int(data["scored_tokens"]),
            seconds=float(data["seconds"]),
        )


def pass_key(stage: str, hop: int, question: str) -> str:
    """Names one pass of a reading: its stage, hop and the (possibly expanded) query it reads with."""
    return hashlib.sha256(f"{stage}|{hop}|{question}".encode()).hexdigest()[:32]


class AttentionRetriever:
    """Reads a tokenized document chunk by chunk and keeps the sentences the question attends to."""

    def __init__(self, lm: Any, config: AttentionConfig, store: ScanStore | None = None) -> None:
        self.lm = lm
        self.config = config
        self.store = store

    def _resume(self, key: str, doc: DocumentTokens, total: int, stage: str) -> tuple[int, PassState]:
        """The chunk to start from and the state before it: a saved pass's, else the beginning."""
        if self.store is None:
            return 0, PassState()
        saved = self.store.load(key)
        if saved is None:
            return 0, PassState()
        next_chunk, data = saved
        try:
            state = PassState.from_json(data, doc.units)
        except (KeyError, IndexError, TypeError, ValueError):
            log.warning("the saved %s pass does not fit this document; reading it from the start", stage)
            return 0, PassState()
        start = min(max(next_chunk, 0), total)
        log.info("%s pass resumes at chunk %d of %d", stage, start, total)
        return start, state

    def _context(self, doc: DocumentTokens, units: list[Unit]) -> tuple[list[int], list[tuple[int, int]]]:
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for unit in units:
            spans.append((len(ids), len(ids) + unit.n_tokens))
            ids.extend(doc.ids[unit.tok_start : unit.tok_end])
        return ids, spans

    def read(
        self,
        doc: DocumentTokens,
        question: str,
        *,
        progress: ProgressFn = no_progress,
        hop: int = 0,
        stage: str = "attention",
    ) -> Retrieval:
        """One pass over the document with the carried cache; evidence and per-chunk trace."""
        started = time.perf_counter()
        cfg = self.config
        layout: PromptLayout = build_layout(self.lm.tokenizer, question, cfg.null_query)
        chunks = pack_chunks(doc.units, cfg.chunk_tokens)
        total = len(chunks)
        key = pass_key(stage, hop, question)
        begin, state = self._resume(key, doc, total, stage)
        carry, best, trace = state.carry, state.best, state.trace
        progress(stage, begin, total)
        for first in range(begin, total, cfg.batch_size):
            batch = chunks[first : first + cfg.batch_size]
            carry_units = sorted((u for u, _ in carry), key=lambda u: u.index)
            members = [carry_units + chunk for chunk in batch]
            built = [self._context(doc, m) for m in members]
            scores = token_scores(self.lm, layout, [ids for ids, _ in built], cfg)
            candidates: dict[int, tuple[Unit, float]] = {}
            for offset, (chunk_units, (ids, spans), tok_scores) in enumerate(zip(members, built, scores, strict=True)):
                state.scored_tokens += len(ids) + len(layout.head) + len(layout.query) + len(layout.null)
                unit_scores = [unit_score(tok_scores[a:b]) for a, b in spans]
                self._remember(best, chunk_units[len(carry_units) :], unit_scores[len(carry_units) :], hop)
                for unit, score in zip(chunk_units, unit_scores, strict=True):
                    if unit.index not in candidates or candidates[unit.index][1] < score:
                        candidates[unit.index] = (unit, score)
                ranked = sorted(zip(chunk_units, unit_scores, strict=True), key=lambda p: -p[1])[:3]
                trace.append(
                    {
                        "stage": stage,
                        "hop": hop,
                        "chunk": first + offset,
                        "tokens": len(ids),
                        "carried": len(carry_units),
                        "top": [{"start": u.start, "end": u.end, "score": round(s, 5)} for u, s in ranked],
                    }
                )
            carry = state.carry = _select(list(candidates.values()), cfg.carry_tokens, cfg.carry_units)
            done = min(first + len(batch), total)
            if self.store is not None:  # a finished pass too: a multi-hop reading resumed later replays it
                elapsed = state.seconds + time.perf_counter() - started
                self.store.save(key, done, total, PassState(carry, best, trace, state.scored_tokens, elapsed).to_json())
            progress(stage, done, total)
        evidence = self._final(carry, best, hop)
        return Retrieval(
            evidence=evidence,
            trace=trace,
            n_tokens=len(doc.ids),
            n_chunks=total,
            scored_tokens=state.scored_tokens,
            seconds=state.seconds + time.perf_counter() - started,
            carried=[u.index for u, _ in carry],  # best first
        )

    @staticmethod
    def _remember(best: dict[int, ScoredUnit], units: list[Unit], scores: list[float], hop: int) -> None:
        """Keep each unit's score standardised within its own chunk (chunks are not comparable raw)."""
        if not units:
            return
        values = torch.tensor(scores, dtype=torch.float64)
        finite = values[torch.isfinite(values)]
        mean = float(finite.mean()) if finite.numel() else 0.0
        std = float(finite.std()) if finite.numel() > 1 else 1.0
        std = std if std > 1e-12 else 1.0
        for unit, score in zip(units, scores, strict=True):
            z = (score - mean) / std
            if unit.index not in best or best[unit.index].z < z:
                best[unit.index] = ScoredUnit(unit, score, z, hop)

    def _final(self, carry: list[tuple[Unit, float]], best: dict[int, ScoredUnit], hop: int) -> list[ScoredUnit]:
        top_z = max((s.z for s in best.values()), default=0.0)
        # Carried units won head-to-head comparisons; rank them above every chunk-local score.
        carried = [
            ScoredUnit(unit, score, top_z + 1.0 + score, hop) for unit, score in sorted(carry, key=lambda c: -c[1])
        ]
        return _carried_then_best(carried, best.values(), self.config.evidence_tokens)


def retrieve(
    lm: Any,
    text: str,
    question: str,
    config: AttentionConfig,
    *,
    progress: ProgressFn = no_progress,
    multi_hop: bool = False,
    expand: Callable[[str, list[str]], str] | None = None,
    store: ScanStore | None = None,
) -> Retrieval:
    """Evidence for `question` from `text`; multi-hop re-reads with the query expanded by evidence.

    With a `store`, every pass saves its progress there and resumes from what it finds saved.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    doc = tokenize_document(lm.tokenizer, text, config.unit_max_tokens)
    if not doc.units:
        return Retrieval(evidence=[], n_tokens=len(doc.ids))
    retriever = AttentionRetriever(lm, config, store)
    result = retriever.read(doc, question, progress=progress)
    if not multi_hop:
        return result
    expand = expand or _expand_query
    found = {s.unit.index: s for s in result.evidence}
    # Facts: the best carried units of each round. Units already known are skipped when ranking a
    # round's new facts, since a fact quoted in the query draws attention to its own source by copying.
    facts: list[int] = result.carried[: config.hop_facts]
    trace, chunks, scored, seconds = list(result.trace), result.n_chunks, result.scored_tokens, result.seconds
    for hop in range(1, config.multi_hop_rounds):
        known = [text[doc.units[i].start : doc.units[i].end] for i in sorted(facts)]
        hop_result = retriever.read(
            doc, expand(question, known), progress=progress, hop=hop, stage=f"attention hop {hop + 1}"
        )
        trace += hop_result.trace
        chunks += hop_result.n_chunks
        scored += hop_result.scored_tokens
        seconds += hop_result.seconds
        for scored_unit in hop_result.evidence:
            found.setdefault(scored_unit.unit.index, scored_unit)
        new = [i for i in hop_result.carried if i not in facts][: config.hop_facts]
        if not new:
            break
        facts += new
    evidence = _merge_hops({i: doc.units[i] for i in facts}, found, config.evidence_tokens)
    return Retrieval(evidence, trace, len(doc.ids), chunks, scored, seconds, carried=list(facts))


def _expand_query(question: str, facts: list[str]) -> str:
    return question + "\n" + " ".join(facts)


def _merge_hops(carried: dict[int, Unit], found: dict[int, ScoredUnit], budget: int) -> list[ScoredUnit]:
    facts = []
    for index in sorted(carried):
        base = found.get(index)
        facts.append(ScoredUnit(carried[index], base.score if base else 0.0, float("inf"), base.hop if base else 0))
    return _carried_then_best(facts, found.values(), budget)


def _carried_then_best(carried: list[ScoredUnit], scored: Iterable[ScoredUnit], budget: int) -> list[ScoredUnit]:
    """Carried units first (at least one), then the best-scoring others in what is left; document order."""
    chosen = within_budget(carried, budget, lambda s: s.unit.n_tokens, first_always=True)
    taken = {s.unit.index for s in chosen}
    left = budget - sum(s.unit.n_tokens for s in chosen)
    rest = [s for s in sorted(scored, key=lambda s: -s.z) if s.unit.index not in taken]
    chosen += within_budget(rest, left, lambda s: s.unit.n_tokens)
    return sorted(chosen, key=lambda s: s.unit.index)
