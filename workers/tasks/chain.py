"""Chain of agents as a chain of Celery tasks: one task per worker step, the unit persisted after each.

Each step task plans the chain with `agents.chain.plan_chain` (the very plan `run_chain` reads with, so
the CLI and the workers read the same chunks under the same run key), reads the stored steps, runs the
next one and hands on to the step after it, so consecutive steps may run on different workers and a
worker that dies loses at most the step it was on. After the last step the answer task runs the
manager, which finds every step stored and only writes the answer.
"""

from __future__ import annotations

from sqlmodel import Session

from longread.agents.chain import EMPTY_UNIT, ChainPlan, plan_chain, run_step, stored_steps
from longread.llm import LLMClient, Usage
from longread.llm.usage import BudgetExceeded
from longread.progress import JobCanceled
from longread.storage import jobs, speeds
from longread.storage.cache import stored_client
from longread.storage.models import Document, Job, JobKind
from longread.workers.budget import remaining_caps
from longread.workers.celery_app import app
from longread.workers.dispatch import ANSWER_TASK, CHAIN_STEP_TASK, continue_job_with, job_model
from longread.workers.tasks.base import continue_job

STAGE = "reading in order"


def job_plan(session: Session, job: Job, document: Document, client: LLMClient) -> ChainPlan:
    """The job's chain plan: its question (none for a summary; a follow-up's rewrite) read with the job's model."""
    question = str(job.params.get("reading_question") or job.params["question"]) if job.kind is JobKind.ASK else None
    return plan_chain(session, document, question, client)


def _next(job: Job, done: int, n_chunks: int) -> None:
    continue_job_with(CHAIN_STEP_TASK if done < n_chunks else ANSWER_TASK, job)


def start_chain(session: Session, job: Job, document: Document) -> None:
    """Continue from the stored steps: the next step task, or straight to the manager."""
    plan = job_plan(session, job, document, stored_client(job_model(job), tenant_id=job.tenant_id))
    done = len(stored_steps(session, plan.key))
    jobs.set_progress(session, job.id, stage=STAGE, done=done, total=len(plan.chunks) + 1)
    _next(job, done, len(plan.chunks))


@app.task(name=CHAIN_STEP_TASK)
def chain_step_task(job_id: str, attempt: int) -> str:
    """Run the next chain step of a job, persist its unit, and hand on to the next task."""

    def body(session: Session, job: Job) -> str | None:
        document = session.get(Document, job.document_id)
        if document is None:
            raise LookupError(f"document {job.document_id} no longer exists")
        usage = Usage(budget=remaining_caps(job))
        client = stored_client(job_model(job), usage, tenant_id=job.tenant_id)
        plan = job_plan(session, job, document, client)
        done = stored_steps(session, plan.key)
        step = len(done)
        if step < len(plan.chunks):
            unit = done[-1].unit if done else EMPTY_UNIT
            try:
                run_step(session, document, plan, step, unit, client)
            except BudgetExceeded:  # a cap: the answer task stores the unit so far and the reason
                session.rollback()
                jobs.add_usage(session, job.id, usage)
                continue_job_with(ANSWER_TASK, job)
                return None
            jobs.add_usage(session, job.id, usage)
            speeds.record_calls(session, usage.samples)
            jobs.set_progress(session, job.id, stage=STAGE, done=step + 1, total=len(plan.chunks) + 1)
            if jobs.cancel_requested(session, job.id):
                raise JobCanceled(job.id)
        _next(job, step + 1, len(plan.chunks))
        return None

    return continue_job(job_id, attempt, body)
