"""All stored tables, in one place (SQLModel). Schema changes ship as Alembic migrations."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Column, DateTime, LargeBinary, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

LOCAL_TENANT = "local"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kwargs)


class Tenant(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """An API key, stored only as its SHA-256; the tenant owns everything the key creates."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    key_hash: str = Field(index=True, unique=True)
    prefix: str
    name: str = ""
    revoked: bool = False
    created_at: datetime = _ts()


class Document(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "content_hash"),)

    id: str = Field(primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    filename: str
    content_hash: str = Field(index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    page_starts: list[int] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="a PDF's page boundaries: the offset in `text` where each page starts (None for other formats)",
    )
    n_chars: int
    n_tokens: int
    created_at: datetime = _ts()


class Segment(SQLModel, table=True):
    """A run of whole sentences; the unit that trees summarise and citations name."""

    __table_args__ = (UniqueConstraint("document_id", "scheme", "index"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    scheme: str = Field(description="tokenizer and size the segmentation was made for")
    index: int
    start: int
    end: int
    n_tokens: int


class TreeStatus(enum.StrEnum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Tree(SQLModel, table=True):
    """A MemWalker summary tree, built once per document, model and shape."""

    __table_args__ = (UniqueConstraint("document_id", "model", "scheme", "fanout", "prompt_version"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    model: str
    scheme: str
    fanout: int
    prompt_version: str
    status: TreeStatus = TreeStatus.BUILDING
    n_levels: int = 0
    n_nodes: int = 0
    created_at: datetime = _ts()


class TreeNode(SQLModel, table=True):
    """Level 0 holds one node per segment; node (level, position) summarises a contiguous child run."""

    __table_args__ = (UniqueConstraint("tree_id", "level", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    tree_id: str = Field(foreign_key="tree.id", index=True, ondelete="CASCADE")
    level: int
    position: int
    parent_position: int | None = None
    child_start: int | None = None
    child_end: int | None = Field(default=None, description="exclusive")
    segment_index: int | None = None
    start: int
    end: int
    summary: str = Field(sa_column=Column(Text, nullable=False))
    n_tokens: int = 0


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED}


class JobKind(enum.StrEnum):
    INGEST = "ingest"
    BUILD_TREE = "build_tree"
    ASK = "ask"
    SUMMARIZE = "summarize"
    ASK_COLLECTION = "ask_collection"
    SUMMARIZE_COLLECTION = "summarize_collection"
    BUILD_INDEX = "build_index"


class Job(SQLModel, table=True):
    """Job state lives here, not in Celery: the API and UI read this row."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    kind: JobKind
    document_id: str | None = Field(default=None, index=True)
    status: JobStatus = JobStatus.QUEUED
    stage: str = "queued"
    done: int = 0
    total: int = 0
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result_id: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    error_code: str | None = Field(default=None, description="stable code of `error` (see longread.failures)")
    celery_task_id: str | None = None
    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_retries: int = Field(default=0, description="failed provider calls retried (the Router's retries)")
    llm_last_retry_code: str | None = Field(default=None, description="stable code of the latest retried failure")
    llm_last_retry_error: str | None = Field(
        default=None, description="the latest retried failure as a fixed sentence (never the provider's text)"
    )
    cancel_requested: bool = False
    attempts: int = 0
    created_at: datetime = _ts()
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    heartbeat_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ChainStep(SQLModel, table=True):
    """The communication unit after each chain-of-agents worker, so a restarted job resumes."""

    __table_args__ = (UniqueConstraint("run_key", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    run_key: str = Field(index=True, description="hash of document, model, question and chunking")
    step: int
    chunk_start: int
    chunk_end: int
    segment_first: int
    segment_last: int
    unit: str = Field(sa_column=Column(Text, nullable=False))


class AttentionScan(SQLModel, table=True):
    """An attention scan under way, saved after every chunk so a restarted job resumes where it stopped.

    `run_key` names the reading (document, question, model, scan settings), `pass_key` one pass over the
    document within it (a multi-hop reading makes several). `state` is the pass's carried units, the
    best score of each unit read so far and the chunk trace, as `next_chunk` left them. Rows are removed
    when the reading finishes: they are a resume point, not a result.
    """

    __table_args__ = (UniqueConstraint("run_key", "pass_key"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    run_key: str = Field(index=True)
    pass_key: str
    next_chunk: int
    total: int
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _ts()


class Answer(SQLModel, table=True):
    """A finished answer or summary, with the evidence it names and how it was reached."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    job_id: str | None = Field(default=None, index=True)
    conversation_id: str | None = Field(default=None, index=True, description="the thread a question belongs to")
    kind: str = "answer"
    question: str | None = Field(default=None, sa_column=Column(Text))
    strategy: str
    strategy_reason: str = ""
    model: str
    answer: str = Field(sa_column=Column(Text, nullable=False))
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    dropped_citations: int = 0
    trace: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    plan: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="the planner's choice, its reason and the estimates it chose from (see agents.planner)",
    )
    stopped_reason: str | None = Field(
        default=None, sa_column=Column(Text), description="why reading stopped early (a budget cap); None when done"
    )
    created_at: datetime = _ts()


class ModelSpeed(SQLModel, table=True):
    """How fast a model answers on this deployment, accumulated from every uncached call.

    The sums are what a least-squares fit of `seconds = a * prompt_tokens + b * completion_tokens`
    needs, so the planner can tell a local model's reading speed from its writing speed; a hosted
    model is planned by its mean seconds per call. `kind` is `call` for model calls, `fill:<cap>` for
    the calls made with one completion cap (how much of it the model writes), and `scan` for the
    attention reader's forward passes (tokens read per second).
    """

    __table_args__ = (UniqueConstraint("model", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str
    kind: str = "call"
    n: int = 0
    seconds: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    pp: float = Field(default=0.0, description="sum of prompt_tokens squared")
    cc: float = Field(default=0.0, description="sum of completion_tokens squared")
    pc: float = Field(default=0.0, description="sum of prompt_tokens * completion_tokens")
    ps: float = Field(default=0.0, description="sum of prompt_tokens * seconds")
    cs: float = Field(default=0.0, description="sum of completion_tokens * seconds")
    requested: float = Field(default=0.0, description="sum of the completion caps asked for (max_tokens)")
    updated_at: datetime = _ts()


class Conversation(SQLModel, table=True):
    """A thread of questions about one document or one collection (exactly one of the two is set); its
    turns are the answers (`Answer` or `CollectionAnswer`) that name it.

    Follow-up questions are read with the recent turns, so a thread is what makes "and why?" answerable.
    """

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    document_id: str | None = Field(default=None, foreign_key="document.id", index=True, ondelete="CASCADE")
    collection_id: str | None = Field(default=None, foreign_key="collection.id", index=True, ondelete="CASCADE")
    title: str = ""
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CompletionCache(SQLModel, table=True):
    """Content-addressed completions: the key hashes model, messages and decoding parameters."""

    key: str = Field(primary_key=True)
    model: str
    response: str = Field(sa_column=Column(Text, nullable=False))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = _ts()


class RetrievalIndex(SQLModel, table=True):
    """A document's retrieval passages and their dense embeddings, built once and reused.

    Passages are spans that never cross a segment of `scheme`; `spans` packs (segment index, start, end,
    tokens) per passage as little-endian int64, `vectors` the unit-length embeddings as float16, row by
    row. BM25 is rebuilt from the passages in memory: it costs a second, the embeddings a minute.
    """

    __table_args__ = (UniqueConstraint("document_id", "scheme", "embed_model"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(foreign_key="document.id", index=True, ondelete="CASCADE")
    scheme: str = Field(description="segmentation scheme and passage size the passages were cut for")
    embed_model: str
    n_passages: int
    dim: int
    spans: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    vectors: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts()


class Collection(SQLModel, table=True):
    """A named set of a tenant's documents that questions can be asked across at once."""

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    name: str
    created_at: datetime = _ts()


class CollectionDocument(SQLModel, table=True):
    """Membership: a document belongs to a collection until it is removed (or either is deleted)."""

    collection_id: str = Field(foreign_key="collection.id", primary_key=True, ondelete="CASCADE")
    document_id: str = Field(foreign_key="document.id", primary_key=True, index=True, ondelete="CASCADE")
    added_at: datetime = _ts()


class CollectionAnswer(SQLModel, table=True):
    """An answer over a collection. Each citation names its document (`document_id`, `filename`), since
    one answer may rest on passages of several documents; the rest mirrors `Answer`."""

    id: str = Field(default_factory=new_id, primary_key=True)
    tenant_id: str = Field(default=LOCAL_TENANT, index=True)
    collection_id: str = Field(foreign_key="collection.id", index=True, ondelete="CASCADE")
    job_id: str | None = Field(default=None, index=True)
    conversation_id: str | None = Field(default=None, index=True, description="the thread a question belongs to")
    kind: str = Field(default="answer", sa_column_kwargs={"server_default": "answer"}, description="answer or summary")
    question: str = Field(sa_column=Column(Text, nullable=False))
    strategy: str
    strategy_reason: str = ""
    model: str
    answer: str = Field(sa_column=Column(Text, nullable=False))
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    dropped_citations: int = 0
    document_ids: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False), description="the documents read"
    )
    trace: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summaries: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
        description="a summary's per-document summaries: document id, filename, answer id, text and citations",
    )
    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    stopped_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _ts()


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for statements built once and run with bound values."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]  # SQLModel sets it on every table=True class
