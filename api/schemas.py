"""Request and response bodies (what the OpenAPI docs at /docs show)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from longread.agents.registry import QuestionStrategy, SummaryStrategy
from longread.api.validation import model_name, question_text
from longread.storage.jobs import as_utc, eta_seconds
from longread.storage.models import Answer, Document, Job


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
    error: str | None
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    attempts: int
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
            stage=job.stage,
            done=job.done,
            total=job.total,
            eta_s=eta_seconds(job),
            document_id=job.document_id,
            result_id=job.result_id,
            error=job.error,
            llm_calls=job.llm_calls,
            cached_calls=job.cached_calls,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            cost_usd=round(job.cost_usd, 6),
            attempts=job.attempts,
            params=job.params,
            created_at=as_utc(job.created_at),
            started_at=as_utc(job.started_at),
            finished_at=as_utc(job.finished_at),
            heartbeat_at=as_utc(job.heartbeat_at),
        )


class QuestionIn(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    strategy: QuestionStrategy = QuestionStrategy("auto")
    model: str | None = Field(default=None, description="one of the configured models; the default when unset")

    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str) -> str:
        return question_text(value)

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


class SummaryIn(BaseModel):
    strategy: SummaryStrategy = SummaryStrategy("tree")
    model: str | None = None

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return model_name(value)


class AnswerOut(BaseModel):
    id: str
    kind: str
    document_id: str
    job_id: str | None
    question: str | None
    answer: str
    strategy: str
    strategy_reason: str
    model: str
    citations: list[dict[str, Any]] = Field(description="segment id, character offsets and quote of each cited passage")
    dropped_citations: int
    trace: list[dict[str, Any]]
    llm_calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    created_at: datetime | None

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        return cls(
            id=answer.id,
            kind=answer.kind,
            document_id=answer.document_id,
            job_id=answer.job_id,
            question=answer.question,
            answer=answer.answer,
            strategy=answer.strategy,
            strategy_reason=answer.strategy_reason,
            model=answer.model,
            citations=answer.citations,
            dropped_citations=answer.dropped_citations,
            trace=answer.trace,
            llm_calls=answer.llm_calls,
            cached_calls=answer.cached_calls,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=round(answer.cost_usd, 6),
            latency_s=answer.latency_s,
            created_at=as_utc(answer.created_at),
        )


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
