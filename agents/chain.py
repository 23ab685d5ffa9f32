"""Chain of agents: workers read the document in order, each rewriting a carried communication unit.

A worker's window must hold its instruction, the question, the incoming unit and its chunk, and leave
room for the unit it writes; chunks are runs of whole segments sized to what is left (the paper's
B = k - |q| - |I| formula, plus the unit it forgets). The unit is cut to its reserved size before it is
carried, so the arithmetic holds whatever a model writes. After each worker the unit is persisted, so a
restarted run resumes at the next step. A manager answers (or summarises) from the last unit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.memwalker.tree import words_to_tokens
from longread.agents.partial import PartialFn, no_partial
from longread.agents.segments import ensure_segments
from longread.config import get_settings
from longread.llm import LLMClient
from longread.storage.models import ChainStep, Document, Segment

CHAIN_PROMPTS = ("chain_worker", "chain_worker_summary")
LABEL_TOKENS = 6  # "[S123] " plus the blank line between passages
EMPTY_UNIT = "(none yet)"
SUMMARY_WORDS = 400
TRACE_NOTES_CHARS = 1200
"""How much of each worker's notes the trace keeps (the page shows them; the full unit is in ChainStep)."""


@dataclass(frozen=True)
class Chunk:
    first: int
    last: int
    start: int
    end: int
    n_tokens: int


@dataclass(frozen=True)
class ChainBudget:
    window: int
    overhead: int
    unit_tokens: int
    output_tokens: int
    chunk_tokens: int


def _worker_prompt(question: str | None) -> str:
    return "chain_worker" if question else "chain_worker_summary"


def unit_words(unit_tokens: int) -> int:
    return max(50, int(unit_tokens * 0.6))


def render_worker(
    client: LLMClient, question: str | None, *, step: int, total: int, chunk: str, unit: str, unit_tokens: int
) -> tuple[str, bool]:
    """(prompt, raw) for one worker, in the prompt style of the client's model."""
    variables: dict[str, object] = {
        "step": step,
        "total": total,
        "chunk": chunk,
        "unit": unit,
        "max_words": unit_words(unit_tokens),
    }
    if question:
        variables["question"] = question
    return client.render_prompt(_worker_prompt(question), **variables)


def chain_budget(client: LLMClient, question: str | None) -> ChainBudget:
    """Split a worker's window between instruction, question, carried unit, output and chunk."""
    settings = get_settings()
    window = min(settings.CHAIN_CHUNK_TOKENS, client.context_window)
    # A small window still needs room for text: the unit never takes more than a fifth of it.
    unit_tokens = min(settings.CHAIN_UNIT_TOKENS, window // 5)
    overhead = (
        client.counter.count(
            render_worker(client, question, step=9999, total=9999, chunk="", unit="", unit_tokens=unit_tokens)[0]
        )
        + 8
    )  # chat-format tokens around the message
    chunk_tokens = window - overhead - unit_tokens - unit_tokens
    if chunk_tokens < 64:
        raise ValueError(
            f"a worker window of {window} tokens leaves no room for text after the instruction, "
            f"question and {unit_tokens}-token unit; raise LONGREAD_CHAIN_CHUNK_TOKENS"
        )
    return ChainBudget(window, overhead, unit_tokens, unit_tokens, chunk_tokens)


def plan_chunks(segments: list[Segment], chunk_tokens: int) -> list[Chunk]:
    """Consecutive runs of whole segments, each within the chunk budget (labels included)."""
    chunks: list[Chunk] = []
    run: list[Segment] = []
    used = 0
    for segment in segments:
        cost = segment.n_tokens + LABEL_TOKENS
        if cost > chunk_tokens:
            raise ValueError(
                f"segment S{segment.index} ({segment.n_tokens} tokens) exceeds the chunk budget of {chunk_tokens}; "
                "lower LONGREAD_SEGMENT_TOKENS or raise LONGREAD_CHAIN_CHUNK_TOKENS"
            )
        if run and used + cost > chunk_tokens:
            chunks.append(Chunk(run[0].index, run[-1].index, run[0].start, run[-1].end, used))
            run, used = [], 0
        run.append(segment)
        used += cost
    if run:
        chunks.append(Chunk(run[0].index, run[-1].index, run[0].start, run[-1].end, used))
    return chunks


def chunk_text(document: Document, segments: list[Segment], chunk: Chunk) -> str:
    return "\n\n".join(f"[S{s.index}] {document.text[s.start : s.end]}" for s in segments[chunk.first : chunk.last + 1])


def run_key(
    document: Document, client: LLMClient, question: str | None, budget: ChainBudget, segment_tokens: int
) -> str:
    """Identifies a chain run's stored steps by everything its chunks and prompts depend on.

    The worker prompts' fingerprint, the document, the model (its tokenizer and prompt style), the
    question, the budget and the segment size: change any of them and the stored steps of another run
    are not mistaken for this one's.
    """
    version = client.prompt_fingerprint(*CHAIN_PROMPTS)
    parts = [
        version,
        document.id,
        client.model,
        question or "",
        str(budget.window),
        str(budget.chunk_tokens),
        str(budget.unit_tokens),
        str(budget.output_tokens),
        str(segment_tokens),
    ]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainPlan:
    """Everything a chain run reads with, computed in one place for the CLI and the workers alike."""

    question: str | None
    budget: ChainBudget
    segment_tokens: int
    segments: list[Segment]
    chunks: list[Chunk]
    key: str


def plan_chain(session: Session, document: Document, question: str | None, client: LLMClient) -> ChainPlan:
    """The budget, segmentation, chunks and run key of a chain over `document` for `client`'s model.

    Chunks are runs of whole segments; with a small window the segments are made small enough that one
    fits in a chunk, so the segment size depends on the budget and is part of the key.
    """
    budget = chain_budget(client, question)
    segment_tokens = min(get_settings().SEGMENT_TOKENS, budget.chunk_tokens - LABEL_TOKENS)
    segments = ensure_segments(session, document, client.model, segment_tokens=segment_tokens)
    chunks = plan_chunks(segments, budget.chunk_tokens)
    key = run_key(document, client, question, budget, segment_tokens)
    return ChainPlan(question, budget, segment_tokens, segments, chunks, key)


def stored_steps(session: Session, key: str) -> list[ChainStep]:
    return list(session.exec(select(ChainStep).where(ChainStep.run_key == key).order_by(col(ChainStep.step))))


def run_step(
    session: Session, document: Document, plan: ChainPlan, step: int, unit: str, client: LLMClient
) -> ChainStep:
    """One worker: read chunk `step` with the incoming unit, persist the rewritten unit."""
    chunk = plan.chunks[step]
    budget = plan.budget
    prompt, raw = render_worker(
        client,
        plan.question,
        step=step + 1,
        total=len(plan.chunks),
        chunk=chunk_text(document, plan.segments, chunk),
        unit=unit,
        unit_tokens=budget.unit_tokens,
    )
    completion = client.complete_messages(
        [{"role": "user", "content": prompt}], max_tokens=budget.output_tokens, raw=raw
    )
    new_unit = client.counter.truncate(completion.text, budget.unit_tokens) or unit
    key = plan.key
    row = ChainStep(
        document_id=document.id,
        run_key=key,
        step=step,
        chunk_start=chunk.start,
        chunk_end=chunk.end,
        segment_first=chunk.first,
        segment_last=chunk.last,
        unit=new_unit,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # a concurrent or earlier run already stored this step
        session.rollback()
        row = session.exec(select(ChainStep).where(ChainStep.run_key == key, ChainStep.step == step)).one()
    return row


def run_chain(
    session: Session,
    document: Document,
    question: str | None,
    client: LLMClient,
    *,
    progress: ProgressFn = no_progress,
    partial: PartialFn = no_partial,
    conversation: str = "",
) -> AnswerDraft:
    """Read the whole document through the chain; answer the question, or summarise when there is none.

    `conversation` (a follow-up's recent turns) goes to the manager, which writes the answer.

    After every step the carried unit is noted as the partial answer (its [S<n>] labels cite what was read).
    """
    plan = plan_chain(session, document, question, client)
    chunks, segments, segment_tokens = plan.chunks, plan.segments, plan.segment_tokens
    done = stored_steps(session, plan.key)
    unit = done[-1].unit if done else EMPTY_UNIT
    trace = [
        {
            "step": s.step + 1,
            "segments": [s.segment_first, s.segment_last],
            "unit_tokens": client.counter.count(s.unit),
            "notes": s.unit[:TRACE_NOTES_CHARS],
            "resumed": True,
        }
        for s in done
    ]

    def note(unit: str, last_segment: int) -> None:
        read = [Evidence(s.index, s.start, s.end) for s in segments[: last_segment + 1]]
        partial(AnswerDraft(answer=unit, strategy="chain", segment_tokens=segment_tokens, read=read, trace=trace))

    if done:
        note(unit, done[-1].segment_last)
    for step in range(len(done), len(chunks)):
        progress("reading in order", step, len(chunks) + 1)
        row = run_step(session, document, plan, step, unit, client)
        unit = row.unit
        trace.append(
            {
                "step": step + 1,
                "segments": [row.segment_first, row.segment_last],
                "unit_tokens": client.counter.count(unit),
                "notes": unit[:TRACE_NOTES_CHARS],
            }
        )
        note(unit, row.segment_last)
    progress("writing the answer" if question else "writing the summary", len(chunks), len(chunks) + 1)
    if question:
        completion = client.complete("chain_manager", unit=unit, question=question, conversation=conversation)
    else:
        completion = client.complete(
            "chain_manager_summary", unit=unit, max_words=SUMMARY_WORDS, max_tokens=words_to_tokens(SUMMARY_WORDS)
        )
    trace.append({"step": len(chunks) + 1, "role": "manager"})
    read = [Evidence(s.index, s.start, s.end) for s in segments]
    return AnswerDraft(
        answer=completion.text,
        strategy="chain",
        segment_tokens=segment_tokens,
        read=read,
        trace=trace,
    )
