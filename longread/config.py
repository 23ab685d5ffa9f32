"""The one place Longread reads its configuration from (environment and `.env`, prefix `LONGREAD_`).

Every other module imports `get_settings()`; nothing else reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings. Defaults are the embedded, offline configuration."""

    model_config = SettingsConfigDict(env_prefix="LONGREAD_", env_file=".env", env_ignore_empty=True, extra="ignore")

    DATA_DIR: Path = Field(default=Path("data"), description="Folder for SQLite, caches and uploads.")
    DATABASE_URL: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in DATA_DIR when unset.")
    REDIS_URL: str | None = Field(
        default=None, description="Broker/result backend; an embedded server is started when unset."
    )

    LLM: str = Field(
        default="local/default",
        description="litellm model string (openai/gpt-4o-mini, hosted_vllm/..., ollama_chat/...) "
        "or local/<hf-name-or-path> for the in-process model.",
    )
    LLM_API_BASE: str | None = None
    LLM_API_KEY: str | None = None
    LLM_TIMEOUT_S: float = 120.0
    LLM_NUM_RETRIES: int = Field(
        default=8,
        description="Retries of a failed provider call (429 after its Retry-After, 5xx, timeouts, connection "
        "errors, unreadable bodies), in the litellm Router only: no other layer retries these. At 30% "
        "failing calls, 8 retries leave about 2 failed calls in 100,000.",
    )
    LLM_MAX_CONCURRENCY: int = 8
    LLM_MAX_OUTPUT_TOKENS: int = 512
    LLM_CONTEXT_WINDOW: int | None = Field(
        default=None, description="Override of the model's context window in tokens."
    )
    LLM_CACHE: bool = True
    LLM_PROMPT_STYLE: Literal["auto", "chat", "completion"] = Field(
        default="auto",
        description="'chat': instruction prompts; 'completion': few-shot continuation prompts for base "
        "(not instruction-tuned) models, from prompts/completion/; 'auto': completion for a local model "
        "without a chat template, chat otherwise.",
    )

    LOCAL_MODEL: str = Field(
        default="bundled",
        description="'bundled' (the packaged Gemma 3 270M GGUF), a HF model id, a folder or a .gguf file.",
    )
    LOCAL_DEVICE: str = Field(default="auto", description="auto, cpu or cuda")
    LOCAL_MODEL_PRELOAD: bool = Field(
        default=True,
        description="A worker that serves the `local` queue loads the local model before it reports ready, "
        "so its pool processes share one loaded copy and no job (a resumed one included) waits for a load.",
    )

    SEGMENT_TOKENS: int = Field(default=1000, description="MemWalker leaf segment size in model tokens.")
    TREE_FANOUT: int = Field(default=8, description="Maximum children per summary-tree node.")
    NAV_MAX_STEPS: int = Field(default=24, description="Navigation step limit.")
    NAV_MEMORY_TOKENS: int = Field(default=1500, description="Working-memory budget while navigating.")
    CHAIN_CHUNK_TOKENS: int = Field(
        default=8000, description="Chain-of-agents worker window (chunk + instruction + question + unit)."
    )
    CHAIN_UNIT_TOKENS: int = Field(default=800, description="Room reserved for the communication unit.")

    ATTENTION_CHUNK_TOKENS: int | None = Field(
        default=None, description="Attention-retriever chunk size; 1024 on CPU, 4096 on GPU when unset."
    )
    ATTENTION_EVIDENCE_TOKENS: int = 1000
    ATTENTION_LAYERS: str = Field(
        default="band",
        description="Scoring layers: 'last' (InfiniRetri), 'band' (global layers at 40-75% depth), "
        "'all', or explicit indexes '5,11'; heads may be picked as 'layer:head' pairs '11:0,11:3'.",
    )
    ATTENTION_CARRY_TOKENS: int | None = Field(
        default=None, description="Carried-cache budget placed before each chunk; chunk/8 when unset."
    )
    ATTENTION_BATCH_SIZE: int | None = Field(
        default=None, description="Chunks scored together; 1 on CPU (exact InfiniRetri carry), 8 on GPU."
    )

    STAY_LOCAL: bool = Field(
        default=False,
        description="`auto` may choose strategies that run the local model over the document even when a "
        "hosted model would be many times faster (the planner leaves them out otherwise).",
    )
    EVIDENCE_TOKENS: int = Field(
        default=1500,
        description="Evidence budget (tokens) every retrieval strategy may show the answering model: "
        "the bm25/dense baselines use it so they compete on equal terms with the agentic strategies.",
    )
    RETRIEVAL_UNIT_TOKENS: int = Field(
        default=128, description="Size of the passages the bm25/dense baselines rank (whole sentences)."
    )
    SHORTLIST_SIZE: int = Field(
        default=48, description="Passages the shortlist strategy's local model re-ranks by attention (ICR)."
    )
    SHORTLIST_DEPTH: int = Field(
        default=100, description="How far down the BM25 and the dense ranking the shortlist's fusion reads."
    )
    SHORTLIST_UNIT_TOKENS: int | None = Field(
        default=None, description="Size of the shortlist strategy's passages; RETRIEVAL_UNIT_TOKENS when unset."
    )
    SHORTLIST_LAYERS: str = Field(
        default="all",
        description="Layers whose attention re-ranks the shortlist, as ATTENTION_LAYERS ('all' = every "
        "global-attention layer, as ICR sums over layers).",
    )
    EVAL_JUDGE_MODEL: str | None = Field(
        default=None,
        description="Model that judges free-form answers in `longread eval`; the answering model when unset.",
    )

    UPLOAD_MAX_BYTES: int = 50 * 1024 * 1024
    ARCHIVE_MAX_UNCOMPRESSED_BYTES: int = Field(
        default=128 * 1024 * 1024,
        description="A .docx or .epub whose members declare more bytes than this in all is refused "
        "(413 archive_too_large) before anything is inflated: zip bombs stay small in memory.",
    )
    ARCHIVE_MAX_MEMBERS: int = Field(default=10_000, description="Most members a .docx or .epub may hold.")
    PDF_MAX_STREAM_BYTES: int = Field(
        default=16 * 1024 * 1024,
        description="A PDF with one stream inflating past this is refused (413 pdf_too_large) before its text "
        "is extracted; a text page's content is tens of KB.",
    )
    PDF_MAX_INFLATED_BYTES: int = Field(
        default=64 * 1024 * 1024,
        description="A PDF whose page contents inflate past this in all is refused (413 pdf_too_large): text "
        "extraction parses a few MB a second, so this bounds the API's time and memory per PDF.",
    )
    RATE_LIMIT_PER_MINUTE: int = 120
    JOB_HEARTBEAT_TIMEOUT_S: int = Field(
        default=15,
        description="A running job whose row has not beaten for this long belonged to a dead worker and is "
        "resumed elsewhere. Running tasks beat every quarter of it from a thread, even inside a long model "
        "call, so it bounds recovery time (timeout + sweep interval), not the length of a call.",
    )
    TASK_TIME_LIMIT_S: int = 3600
    SWEEP_INTERVAL_S: float = Field(
        default=5.0, description="How often workers look for running jobs whose heartbeat went stale."
    )
    JOB_STALL_LIMIT_S: int = Field(
        default=3600,
        description="A running job that has not beaten for this long (its workers or the database were gone "
        "that long) is failed with `job_stalled` when the sweeper next runs, instead of resumed: an outage "
        "shorter than this ends with the job finished, a longer one with a clear reason.",
    )
    QUEUED_RESEND_AFTER_S: int = Field(
        default=900,
        description="A job still queued after this long is sent once more, in case its broker message "
        "was lost (claims are conditional, so a duplicate message is harmless).",
    )
    REDIS_KEY_PREFIX: str = Field(
        default="",
        description="Prefix of every Redis key (queues, results, rate limits, slots), so several "
        "deployments or test runs can share one Redis server without seeing each other's tasks.",
    )
    ALLOWED_MODELS: list[str] = Field(
        default_factory=list,
        description="Models an API request may name besides LLM (requests cannot pick arbitrary "
        "litellm or scripted models).",
    )
    STREAM_TOKEN_SECRET: str | None = Field(
        default=None,
        description="HMAC secret that signs the short-lived tokens of job event streams (browsers cannot send "
        "headers to an event stream, and API keys must not travel in URLs); when unset, a random secret is "
        "created once in DATA_DIR. Set it when API processes do not share DATA_DIR.",
    )
    STREAM_TOKEN_TTL_S: int = Field(default=300, description="How long an event-stream token may open a stream.")
    ANONYMOUS_LOCAL: bool = Field(
        default=False,
        description="Keyless API requests act as the local tenant while no API key exists "
        "(set by `make run` in embedded mode).",
    )

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorated properties
    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{(self.DATA_DIR / 'longread.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings; tests clear the cache after changing the environment."""
    return Settings()
