"""Question and summary jobs. Tree-backed ones first build the tree across workers (tasks.tree)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from longread import collection_reading, engine
from longread.agents import registry
from longread.agents.memwalker.tree import prepare_tree
from longread.conversation import recent_turns, standalone_question
from longread.llm import LLMClient, Usage
from longread.progress import ProgressFn
from longread.storage import answer_stream, jobs
from longread.storage.cache import stored_client
from longread.storage.collections import find_collection
from longread.storage.models import Answer, Document, Job, JobKind, TreeStatus
from longread.workers.budget import remaining_caps, stay_local
from longread.workers.celery_app import app
from longread.workers.dispatch import ANSWER_TASK, job_model
from longread.workers.tasks.base import continue_job, run_job
from longread.workers.tasks.chain import start_chain
from longread.workers.tasks.tree import start_build

EngineCall = Callable[[Session, Document, ProgressFn, Usage], Answer]


def _document(session: Session, job: Job) -> Document:
    document = session.get(Document, job.document_id)
    if document is None:
        raise LookupError(f"document {job.document_id} no longer exists")
    return document


def effective_strategy(session: Session, job: Job, document: Document) -> str:
    """The strategy the engine will use, so tree and chain work can be spread over tasks first."""
    default = "tree" if job.kind is JobKind.SUMMARIZE else registry.AUTO
    strategy = str(job.params.get("strategy") or default)
    if job.kind is JobKind.SUMMARIZE:
        return "tree" if strategy == registry.AUTO else registry.check_summary_strategy(strategy)
    if strategy == registry.AUTO:
        question = str(job.params.get("reading_question") or job.params.get("question", ""))
        plan = engine.route_question(
            session,
            document,
            question,
            registry.AUTO,
            LLMClient(job_model(job)),
            caps=remaining_caps(job),
            stay_local=stay_local(job),
        )
        strategy = plan.strategy
    return strategy


def _run_engine(session: Session, job: Job, call: EngineCall) -> str:
    usage = Usage()
    base = jobs.counters(job)
    document = _document(session, job)
    try:
        answer = call(session, document, jobs.progress_callback(session, job, usage), usage)
    except BaseException:
        session.rollback()
        jobs.set_usage(session, job, base, usage)
        raise
    jobs.set_usage(session, job, base, usage)
    return answer.id


def _ask(session: Session, job: Job, progress: ProgressFn, usage: Usage, document: Document) -> Answer:
    return engine.ask(
        session,
        document,
        str(job.params["question"]),
        strategy=str(job.params.get("strategy") or "auto"),
        model=job_model(job),
        progress=progress,
        job=job,
        usage=usage,
        caps=remaining_caps(job),
        stay_local=stay_local(job),
        conversation_id=job.params.get("conversation_id"),
        on_answer_text=answer_stream.writer(job.id, job.attempts),
        standalone=job.params.get("reading_question"),
    )


def _summarize(session: Session, job: Job, progress: ProgressFn, usage: Usage, document: Document) -> Answer:
    return engine.summarize(
        session,
        document,
        strategy=str(job.params.get("strategy") or "tree"),
        model=job_model(job),
        progress=progress,
        job=job,
        usage=usage,
        caps=remaining_caps(job),
    )


def answer_body(session: Session, job: Job) -> str | None:
    """The reading itself, once any tree it needs is ready."""
    call = _summarize if job.kind is JobKind.SUMMARIZE else _ask
    return _run_engine(session, job, lambda s, d, p, u: call(s, job, p, u, d))


def _rewrite_follow_up(session: Session, job: Job) -> None:
    """A follow-up's standalone question, made once and kept in the job's params.

    Planning, the chain's step tasks (their run key hashes the question) and the engine then all read
    the same question, so a chain spread over tasks is not read a second time by the answer task.
    """
    conversation_id = job.params.get("conversation_id")
    if job.kind is not JobKind.ASK or not conversation_id or "reading_question" in job.params:
        return
    turns = recent_turns(session, str(conversation_id))
    usage = Usage()
    client = stored_client(job_model(job), usage, tenant_id=job.tenant_id)
    question = str(job.params["question"])
    job.params = {**job.params, "reading_question": standalone_question(client, turns, question)}
    session.add(job)
    session.commit()
    jobs.add_usage(session, job.id, usage)


def entry_body(session: Session, job: Job) -> str | None:
    """Tree jobs fan out per level, chain jobs run one task per step; the rest read in this task."""
    document = _document(session, job)
    _rewrite_follow_up(session, job)
    strategy = effective_strategy(session, job, document)
    fan_out = registry.get(strategy).fan_out
    if fan_out == "tree":
        tree = prepare_tree(session, document, job_model(job))
        if tree.status is not TreeStatus.READY:
            return start_build(session, job, tree)
    elif fan_out == "chain":
        start_chain(session, job, document)
        return None
    return answer_body(session, job)


@app.task(bind=True, name="longread.workers.tasks.answers.ask_task")
def ask_task(self, job_id: str) -> str:
    """Answer a question (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, entry_body)


@app.task(bind=True, name="longread.workers.tasks.answers.summarize_task")
def summarize_task(self, job_id: str) -> str:
    """Summarise a document (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, entry_body)


@app.task(name=ANSWER_TASK)
def answer_task(job_id: str, attempt: int) -> str:
    """After the tree fan-out: navigate (or summarise from the top) and store the answer."""
    return continue_job(job_id, attempt, answer_body)


def collection_body(session: Session, job: Job) -> str | None:
    """A question over a collection, read by its strategy (the shortlist readers, the tree, the chain), in this task.

    A summary job: each document's summary, one after another, then the overall one, in this task."""
    collection = find_collection(session, str(job.params["collection_id"]), tenant_id=job.tenant_id)
    if collection is None:
        raise LookupError(f"collection {job.params['collection_id']} no longer exists")
    usage = Usage()
    base = jobs.counters(job)
    try:
        if job.kind is JobKind.SUMMARIZE_COLLECTION:
            answer = collection_reading.summarize_collection(
                session,
                collection,
                strategy=str(job.params.get("strategy") or "auto"),
                model=job_model(job),
                progress=jobs.progress_callback(session, job, usage),
                job=job,
                usage=usage,
                caps=remaining_caps(job),
            )
        else:
            answer = collection_reading.ask_collection(
                session,
                collection,
                str(job.params["question"]),
                strategy=str(job.params.get("strategy") or "auto"),
                model=job_model(job),
                progress=jobs.progress_callback(session, job, usage),
                job=job,
                usage=usage,
                caps=remaining_caps(job),
                order=[str(d) for d in job.params.get("order") or []] or None,
                on_answer_text=answer_stream.writer(job.id, job.attempts),
                conversation_id=job.params.get("conversation_id"),
            )
    except BaseException:
        session.rollback()
        jobs.set_usage(session, job, base, usage)
        raise
    jobs.set_usage(session, job, base, usage)
    return answer.id


@app.task(bind=True, name="longread.workers.tasks.answers.ask_collection_task")
def ask_collection_task(self, job_id: str) -> str:
    """Answer a question over a collection (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, collection_body)


@app.task(bind=True, name="longread.workers.tasks.answers.summarize_collection_task")
def summarize_collection_task(self, job_id: str) -> str:
    """Summarise every document of a collection and the whole (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, collection_body)
