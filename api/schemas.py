"""Request and response bodies (what the OpenAPI docs at /docs show)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Response
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from longread.agents.citations import answer_fields, with_pages
from longread.agents.registry import QuestionStrategy, SummaryStrategy
from longread.api.validation import CONTROL_CHARS, QUESTION_PATTERN, TEXT_PATTERN, model_name, question_text
from longread.failures import sanitise
from longread.storage.jobs import as_utc, eta_seconds
from longread.storage.models import Answer, CollectionAnswer, Document, Job


class DocumentOut(BaseModel):
    id: str
    filename: str
    n_chars: int
    n_tokens: int
    created_at: datetime | None = None

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        return cls(
            id=document.id,
            filename=document.filename,
            n_chars=document.n_chars,
            n_tokens=document.n_tokens,
            created_at=as_utc(document.created_at),
        )


class DocumentDetail(DocumentOut):
    ingest_job_id: str | None = None


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    limit: int
    offset: int


class UploadOut(BaseModel):
    document_id: str
    job_id: str | None = Field(description="the ingest job (the original one when deduplicated)")
    deduplicated: bool = Field(description="the same content was uploaded before; nothing new was stored")


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    stage: str
    done: int
    total: int
    eta_s: float | None = Field(description="estimated seconds left, from progress so far")
    document_id: str | None
    result_id: str | None = Field(description="answer id (questions, summaries), document or tree id")
    error: str | None = Field(description="a human sentence (never an exception text); details are in server logs")
    error_code: str | None = Field(default=None, description="stable code of `error`, e.g. model_unavailable")
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    llm_retries: int = Field(default=0, description="failed provider requests that were retried (and got past)")
    llm_last_retry_code: str | None = Field(
        default=None, description="stable code of the latest retried provider failure, e.g. model_rate_limited"
    )
    llm_last_retry_error: str | None = Field(
        default=None, description="the latest retried provider failure in a sentence (never the provider's text)"
    )
    attempts: int = Field(description="times a worker claimed the job (more than 1 after a worker died)")
    params: dict[str, Any]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind.value,
            status=job.status.value,
            stage=_stage(job),
            done=job.done,
            total=job.total,
            eta_s=eta_seconds(job),
            document_id=job.document_id,
            result_id=job.result_id,
            error=sanitise(job.error) if job.error else None,
            error_code=(job.error_code or "job_failed") if job.error else None,
            llm_calls=job.llm_calls,
            cached_calls=job.cached_calls,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            cost_usd=round(job.cost_usd, 6),
            llm_retries=job.llm_retries,
            llm_last_retry_code=job.llm_last_retry_code,
            llm_last_retry_error=sanitise(job.llm_last_retry_error) if job.llm_last_retry_error else None,
            attempts=job.attempts,
            params=job.params,
            created_at=as_utc(job.created_at),
            started_at=as_utc(job.started_at),
            finished_at=as_utc(job.finished_at),
            heartbeat_at=as_utc(job.heartbeat_at),
        )


def _stage(job: Job) -> str:
    """A claimed job keeps the stage `queued` until its first progress report: say it is starting."""
    if job.status.value == "running" and job.stage == "queued":
        return "starting"
    return job.stage


class CapsIn(BaseModel):
    """A job's budget caps: reaching one stops the job cleanly with its best partial answer and the reason."""

    max_cost_usd: float | None = Field(default=None, ge=0, description="stop before spending more (USD)")
    max_seconds: float | None = Field(default=None, ge=0, description="stop after this many seconds of work")
    max_tokens: int | None = Field(default=None, ge=0, description="stop before using more model tokens")

    def caps_params(self) -> dict[str, float | int]:
        values = {"max_cost_usd": self.max_cost_usd, "max_seconds": self.max_seconds, "max_tokens": self.max_tokens}
        return {name: value for name, value in values.items() if value is not None}


class QuestionIn(CapsIn):
    question: str = Field(min_length=1, max_length=4000, json_schema_extra={"pattern": QUESTION_PATTERN})
    conversation_id: str | None = Field(
        default=None, description="continue this thread of the document (follow-ups see its recent turns)"
    )
    strategy: QuestionStrategy = QuestionStrategy("auto")
    model: str | None = Field(
        default=None,
        description="one of the configured models; the default when unset",
        json_schema_extra={"pattern": TEXT_PATTERN},
    )
    dry_run: bool = Field(
        default=False, description="return the plan (estimates per strategy and auto's choice) and start no job"
    )
    stay_local: bool | None = Field(
        default=None,
        description="let auto choose local-model strategies even when a hosted model would be much faster "
        "(default: the server's LONGREAD_STAY_LOCAL)",
    )

    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str) -> str:
        return question_text(value)

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


class SummaryIn(CapsIn):
    strategy: SummaryStrategy = SummaryStrategy("tree")
    model: str | None = Field(default=None, json_schema_extra={"pattern": TEXT_PATTERN})

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


def _stored_fields(answer: Answer | CollectionAnswer) -> dict[str, Any]:
    """The fields a document's answer and a collection's answer show alike."""
    return {
        "id": answer.id,
        "kind": answer.kind,
        "job_id": answer.job_id,
        "conversation_id": answer.conversation_id,
        **answer_fields(answer),
        "created_at": as_utc(answer.created_at),
    }


class AnswerOut(BaseModel):
    id: str
    kind: str
    document_id: str
    job_id: str | None
    conversation_id: str | None = None
    question: str | None
    answer: str
    strategy: str
    strategy_reason: str
    model: str
    citations: list[dict[str, Any]] = Field(
        description="segment id, character offsets, quote and PDF page (`page`, 1-based; null for other formats) "
        "of each cited passage"
    )
    dropped_citations: int
    trace: list[dict[str, Any]]
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    stopped_reason: str | None = Field(default=None, description="why reading stopped early (a cap); null when done")
    plan: dict[str, Any] | None = Field(
        default=None, description="auto's choice, why, the estimates per strategy and what the reading actually took"
    )
    created_at: datetime | None

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        return cls(**_stored_fields(answer), document_id=answer.document_id, plan=answer.plan)


class PlanOptionOut(BaseModel):
    strategy: str
    calls: int = Field(description="estimated model calls")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = Field(description="from litellm's price map; 0 for local and unpriced models")
    seconds: float = Field(description="estimated wall time on this deployment, from measured speeds")
    quality: float = Field(description="expected quality for this kind of question (the planner's prior)")
    fits: bool = Field(description="within every cap given")
    over: list[str] = Field(description="the caps it would exceed")
    excluded: str | None = Field(description="why auto cannot choose it")
    note: str
    steps: list[dict[str, Any]]


class PlanOut(BaseModel):
    """A dry run: what each strategy would cost and which one auto would read with. No job was started."""

    dry_run: bool = True
    document_id: str
    strategy: str = Field(description="the strategy auto would read with (or the one asked for)")
    reason: str
    question_kind: str = Field(description="look-up or whole-text")
    model: str
    document_tokens: int
    window: int
    caps: dict[str, float | int | None] | None
    stay_local: bool
    priced: bool = Field(description="whether litellm's price map knows the model (otherwise costs read 0)")
    options: list[PlanOptionOut]


class JobWithAnswer(JobOut):
    answer: AnswerOut | None = Field(default=None, description="present when the job finished within ?wait=")


class TextOut(BaseModel):
    document_id: str
    start: int
    end: int
    n_chars: int
    text: str


class StrategyOut(BaseModel):
    name: str
    title: str
    answers_questions: bool
    summarises: bool
    needs_local_model: bool


class ConversationOut(BaseModel):
    id: str
    document_id: str | None = Field(description="the document the thread is about (null for a collection's)")
    collection_id: str | None = Field(
        default=None, description="the collection the thread is about (null for a document's)"
    )
    title: str
    turns: int = Field(description="questions answered in this thread")
    created_at: datetime | None
    updated_at: datetime | None


class StreamTokenOut(BaseModel):
    token: str = Field(description="pass as ?token= to the job's event stream; valid for this job only")
    expires_at: datetime
    events_url: str


def json_response(body: BaseModel) -> Response:
    """A response body already built from typed fields, serialised once.

    Returned from a route that declares `response_model`, it keeps the OpenAPI schema but skips
    FastAPI's second validation of the same model (which a sync route runs in another thread-pool call).
    """
    return Response(body.model_dump_json(), media_type="application/json")


DocumentId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": QUESTION_PATTERN})
    document_ids: list[DocumentId] = Field(
        default_factory=list, max_length=1000, description="documents it starts with"
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if CONTROL_CHARS.search(value):
            raise PydanticCustomError("invalid_characters", "the name contains control characters (such as NUL)")
        if not value.strip():
            raise PydanticCustomError("blank_name", "the name is empty or only whitespace")
        return value.strip()


class MembersIn(BaseModel):
    document_ids: list[DocumentId] = Field(min_length=1, max_length=1000)


class CollectionDocumentOut(BaseModel):
    document_id: str
    filename: str
    n_tokens: int


class CollectionOut(BaseModel):
    id: str
    name: str
    n_documents: int
    created_at: datetime | None


class IndexJobOut(BaseModel):
    document_id: str
    job_id: str


class CollectionDetail(CollectionOut):
    documents: list[CollectionDocumentOut]
    indexing: list[IndexJobOut] = Field(
        default_factory=list,
        description="the index jobs this request started: one per joining document whose retrieval index is "
        "not built yet (documents already indexed, and members already in, start none)",
    )


CollectionStrategy = Literal["auto", "shortlist", "bm25", "dense", "tree", "chain"]


class CollectionQuestionIn(CapsIn):
    question: str = Field(min_length=1, max_length=4000, json_schema_extra={"pattern": QUESTION_PATTERN})
    conversation_id: str | None = Field(
        default=None,
        max_length=100,
        description="continue this thread of the collection (follow-ups see its recent turns); a new one when unset",
    )
    strategy: CollectionStrategy = Field(
        default="auto",
        description="shortlist (auto): BM25 + dense across every document, re-ranked by the local model's "
        "attention; bm25 or dense: that ranking alone; tree: the summary walk from a collection root over each "
        "document's stored tree; chain: workers read the documents in order, notes carried across them",
    )
    order: (
        list[Annotated[str, Field(min_length=1, max_length=500, json_schema_extra={"pattern": TEXT_PATTERN})]] | None
    ) = Field(
        default=None,
        max_length=1000,
        description="the chain's reading order: document ids or filenames, read first as listed, then the "
        "other members in the collection's order",
    )
    model: str | None = Field(default=None, json_schema_extra={"pattern": TEXT_PATTERN})
    dry_run: bool = Field(default=False, description="return the estimate and start no job")

    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str) -> str:
        return question_text(value)

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


class CollectionAnswerOut(BaseModel):
    id: str
    kind: str = Field(default="answer", description="answer (to a question) or summary")
    collection_id: str
    job_id: str | None
    conversation_id: str | None = None
    document_ids: list[str] = Field(description="the documents read")
    question: str = Field(description="empty for a summary")
    answer: str
    strategy: str
    strategy_reason: str
    model: str
    citations: list[dict[str, Any]] = Field(
        description="document id and filename, segment, character offsets, quote and PDF page (`page`, 1-based; "
        "null for other formats) of each cited passage"
    )
    dropped_citations: int
    trace: list[dict[str, Any]]
    summaries: list[dict[str, Any]] = Field(
        default_factory=list,
        description="a summary's per-document summaries: document id, filename, answer id (the document's own "
        "stored summary), text, citations and the cap that stopped it if one did",
    )
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    stopped_reason: str | None = None
    created_at: datetime | None

    @classmethod
    def of(cls, answer: CollectionAnswer) -> CollectionAnswerOut:
        return cls(
            **_stored_fields(answer),
            collection_id=answer.collection_id,
            document_ids=answer.document_ids,
            summaries=[{**part, "citations": with_pages(part.get("citations", []))} for part in answer.summaries],
        )


class CollectionSummaryIn(CapsIn):
    strategy: SummaryStrategy = Field(
        default=SummaryStrategy("auto"), description="how each document is summarised (auto: its summary tree)"
    )
    model: str | None = Field(default=None, json_schema_extra={"pattern": TEXT_PATTERN})
    dry_run: bool = Field(default=False, description="return the estimate and start no job")

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


class CollectionSummaryPlanOut(BaseModel):
    """A dry run of a collection summary: what it would read. No job was started, no model called."""

    dry_run: bool = True
    collection_id: str
    strategy: str
    model: str
    documents: int
    document_tokens: int
    summaries: int = Field(description="document summaries to write (a document's summary tree is reused)")
    overall_calls: int = Field(description="model calls for the overall summary: one")


class CollectionJobOut(JobOut):
    answer: CollectionAnswerOut | None = Field(default=None, description="present when the job finished within ?wait=")


class CollectionPlanOut(BaseModel):
    """A dry run over a collection: what the reading would take. No job was started, no model called."""

    dry_run: bool = True
    collection_id: str
    strategy: str
    model: str
    documents: int
    document_tokens: int
    documents_to_index: int = Field(description="documents whose retrieval index is not built yet")
    calls: int = Field(description="the strategy's model calls, per-document figures summed")
    prompt_tokens: int = Field(description="its prompt tokens (stored trees and indexes count as already paid)")
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = Field(default=0.0, description="expected wall time on this deployment")
    needs_local_model: bool
    reason: str = Field(default="", description="why this strategy (auto's choice, or the caller's)")
    auto_choice: str | None = Field(default=None, description="the strategy auto would pick for this question")
    question_kind: str | None = Field(default=None, description="look-up or whole-text")
    priced: bool = True
    options: list[dict[str, Any]] = Field(
        default_factory=list,
        description="every collection strategy: calls, tokens, cost, seconds, quality, fits, excluded, note, steps",
    )


class ConversationDetail(ConversationOut):
    items: list[AnswerOut | CollectionAnswerOut] = Field(
        description="the thread's answers, oldest first (collection answers for a collection's thread)"
    )
