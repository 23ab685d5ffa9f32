"""Chain of agents as a chain of Celery tasks: one task per worker step, the unit persisted after each.

Each step task reads the stored steps (ChainStep rows, keyed by the run), runs the next one and
enqueues the step after it, so consecutive steps may run on different workers and a worker that dies
loses at most the step it was on. After the last step the answer task runs the manager, which finds
every step stored and only writes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from longread.agents.chain import (
    EMPTY_UNIT,
    ChainBudget,
    Chunk,
    chain_budget,
    plan_chunks,
    run_key,
    run_step,
    stored_steps,
)
from longread.agents.segments import ensure_segments
from longread.config import get_settings
from longread.llm import LLMClient, Usage
from longread.storage.models import Document, Job, JobKind, Segment
from longread.workers import jobs
from longread.workers.celery_app import app, queue_for
from longread.workers.tasks.base import continue_job

STAGE = "reading in order"


@dataclass
class ChainPlan:
    client: LLMClient
    question: str | None
    segments: list[Segment]
    budget: ChainBudget
    chunks: list[Chunk]
    key: str


def _model(job: Job) -> str:
    return str(job.params.get("model") or get_settings().LLM)


def plan(session: Session, job: Job, document: Document, usage: Usage | None = None) -> ChainPlan:
    """The same chunking and run key as `agents.chain.run_chain`, so the engine resumes these steps."""
    client = LLMClient(_model(job), usage)
    question = str(job.params["question"]) if job.kind is JobKind.ASK else None
    segments = ensure_segments(session, document, client.model)
    budget = chain_budget(client, question)
    chunks = plan_chunks(segments, budget.chunk_tokens)
    return ChainPlan(client, question, segments, budget, chunks, run_key(document, client, question, budget))


def _next(job: Job) -> None:
    chain_step_task.apply_async((job.id, job.attempts), queue=queue_for(_model(job)))


def _answer(job: Job) -> None:
    from longread.workers.tasks.answers import answer_task

    answer_task.apply_async((job.id, job.attempts), queue=queue_for(_model(job)))


def start_chain(session: Session, job: Job, document: Document) -> None:
    """Continue from the stored steps: the next step task, or straight to the manager."""
    chain = plan(session, job, document)
    done = len(stored_steps(session, chain.key))
    jobs.set_progress(session, job.id, stage=STAGE, done=done, total=len(chain.chunks) + 1)
    if done < len(chain.chunks):
        _next(job)
    else:
        _answer(job)


@app.task(name="longread.workers.tasks.chain.chain_step_task")
def chain_step_task(job_id: str, attempt: int) -> str:
    """Run the next chain step of a job, persist its unit, and hand on to the next task."""

    def body(session: Session, job: Job) -> str | None:
        document = session.get(Document, job.document_id)
        if document is None:
            raise LookupError(f"document {job.document_id} no longer exists")
        usage = Usage()
        chain = plan(session, job, document, usage)
        done = stored_steps(session, chain.key)
        step = len(done)
        if step < len(chain.chunks):
            unit = done[-1].unit if done else EMPTY_UNIT
            run_step(
                session,
                document,
                chain.segments,
                chain.chunks,
                step,
                unit,
                chain.question,
                chain.client,
                chain.key,
                chain.budget,
            )
            jobs.add_usage(session, job.id, usage)
            jobs.set_progress(session, job.id, stage=STAGE, done=step + 1, total=len(chain.chunks) + 1)
            if jobs.cancel_requested(session, job.id):
                from longread.agents.base import JobCanceled

                raise JobCanceled(job.id)
        if step + 1 < len(chain.chunks):
            _next(job)
        else:
            _answer(job)
        return None

    return continue_job(job_id, attempt, body)
