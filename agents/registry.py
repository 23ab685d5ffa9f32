"""Every reading strategy, declared once.

The engine reads with `get(name).read`, the workers route and fan out by `queue` and `fan_out`, the API
and CLI take their choices from `question_choices()` / `summary_choices()`, the evaluation runs and
orders its reports by `names()`, and the web page builds its menu from `/v1/strategies`, which lists
`STRATEGIES`. A name that is not here is an `UnknownStrategy` everywhere, never a silent fallback.

`auto` is not a strategy of its own: it is the planner's choice among these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from longread.agents.base import AnswerDraft, ProgressFn

if TYPE_CHECKING:
    from sqlmodel import Session

    from longread.llm import LLMClient
    from longread.storage.models import Document, Segment

AUTO = "auto"
FanOut = Literal["tree", "chain"]


class UnknownStrategy(ValueError):
    """A strategy name that no declaration matches (or one that cannot do what was asked)."""


@dataclass
class ReadRequest:
    """Everything a strategy's reader gets; `question` is None for a summary."""

    session: Session
    document: Document
    question: str | None
    client: LLMClient
    progress: ProgressFn
    answer_with: str | None = None

    def segments(self) -> list[Segment]:
        from longread.agents.segments import ensure_segments

        return ensure_segments(self.session, self.document, self.client.model)

    def require_question(self) -> str:
        if self.question is None:
            raise UnknownStrategy("this strategy needs a question")
        return self.question


Reader = Callable[[ReadRequest], AnswerDraft]


@dataclass(frozen=True)
class Strategy:
    """One reading strategy and what the rest of the system needs to know about it."""

    name: str
    title: str
    """One line for menus and `--help`."""
    read: Reader
    summarise: Reader | None = None
    """Query-free reading; None when the strategy only answers questions."""
    needs_local_model: bool = False
    """Runs the in-process transformer itself (whatever model answers), so it goes to the `local` queue."""
    fan_out: FanOut | None = None
    """How workers spread the work over tasks: per tree level, per chain step, or one task."""

    def queue(self, model: str) -> str:
        """The Celery queue for this strategy with this model: in-process model work goes to `local`."""
        return "local" if self.needs_local_model or model.startswith("local/") else "default"


# ------------------------------------------------------------------------------------------- readers


def _read_full(request: ReadRequest) -> AnswerDraft:
    from longread.agents.baselines import answer_full

    return answer_full(
        request.document.text,
        request.require_question(),
        request.client,
        segments=request.segments(),
        progress=request.progress,
    )


def _summarise_full(request: ReadRequest) -> AnswerDraft:
    from longread.agents.baselines import summarize_full

    return summarize_full(request.document.text, request.client, segments=request.segments(), progress=request.progress)


def _read_bm25(request: ReadRequest) -> AnswerDraft:
    from longread.agents.baselines import answer_bm25

    return answer_bm25(
        request.document.text,
        request.require_question(),
        request.client,
        segments=request.segments(),
        progress=request.progress,
    )


def _read_dense(request: ReadRequest) -> AnswerDraft:
    from longread.agents.baselines import answer_dense

    return answer_dense(
        request.document.text,
        request.require_question(),
        request.client,
        segments=request.segments(),
        progress=request.progress,
    )


def _read_tree(request: ReadRequest) -> AnswerDraft:
    from longread.agents.memwalker.navigate import navigate
    from longread.agents.memwalker.tree import build_tree

    tree = build_tree(request.session, request.document, request.client, progress=request.progress)
    return navigate(
        request.session, tree, request.document, request.require_question(), request.client, progress=request.progress
    )


def _summarise_tree(request: ReadRequest) -> AnswerDraft:
    from longread.agents.memwalker.summary import summarize_from_tree

    return summarize_from_tree(request.session, request.document, request.client, request.progress)


def _read_chain(request: ReadRequest) -> AnswerDraft:
    from longread.agents.chain import run_chain

    return run_chain(request.session, request.document, request.question, request.client, progress=request.progress)


def _read_attention(request: ReadRequest) -> AnswerDraft:
    # Imported here: it loads torch, which the API process and hosted-model workers never need.
    from longread.agents.attention.strategy import read_with_attention

    return read_with_attention(
        request.document.text,
        request.require_question(),
        segments=request.segments(),
        answer_model=request.answer_with or request.client.model,
        usage=request.client.usage,
        progress=request.progress,
    )


def _read_shortlist(request: ReadRequest) -> AnswerDraft:
    # Imported here: it loads torch, which the API process and hosted-model workers never need.
    from longread.agents.shortlist.strategy import read_with_shortlist

    return read_with_shortlist(request)


# --------------------------------------------------------------------------------------- declarations

STRATEGIES: tuple[Strategy, ...] = (
    Strategy("full", "the whole document in one call, cut at the model's window", _read_full, _summarise_full),
    Strategy("bm25", "BM25 passages within the evidence budget, then one answering call", _read_bm25),
    Strategy("dense", "MiniLM embedding passages within the evidence budget, then one answering call", _read_dense),
    Strategy(
        "tree",
        "navigate a summary tree built once per document (MemWalker)",
        _read_tree,
        _summarise_tree,
        fan_out="tree",
    ),
    Strategy(
        "chain",
        "a chain of reading agents passing evidence along, then a manager (Chain of Agents)",
        _read_chain,
        _read_chain,
        fan_out="chain",
    ),
    Strategy(
        "attention",
        "the local model scans the whole document; its attention picks the evidence (InfiniRetri)",
        _read_attention,
        needs_local_model=True,
    ),
    Strategy(
        "shortlist",
        "BM25 and dense retrieval shortlist passages; the local model's attention re-ranks them (ICR)",
        _read_shortlist,
        needs_local_model=True,
    ),
)

_BY_NAME = {strategy.name: strategy for strategy in STRATEGIES}


def names() -> tuple[str, ...]:
    """Every strategy name, in the order reports and menus show them."""
    return tuple(_BY_NAME)


def question_choices() -> tuple[str, ...]:
    """What a question may ask for: `auto` and every strategy."""
    return (AUTO, *names())


def summary_choices() -> tuple[str, ...]:
    """What a summary may ask for: `auto` and the strategies that read without a query."""
    return (AUTO, *(s.name for s in STRATEGIES if s.summarise is not None))


def get(name: str) -> Strategy:
    """The declaration for `name`; UnknownStrategy (a ValueError) naming the choices otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownStrategy(f"unknown strategy '{name}' (choose from {', '.join(question_choices())})") from None


def check_question_strategy(name: str) -> str:
    """`name` when a question may be read with it."""
    if name != AUTO:
        get(name)
    return name


def check_summary_strategy(name: str) -> str:
    """`name` when a summary may be written with it."""
    if name not in summary_choices():
        raise UnknownStrategy(f"summaries use one of {', '.join(summary_choices())}, not '{name}'")
    return name


QuestionStrategy = StrEnum("QuestionStrategy", {name: name for name in question_choices()})  # type: ignore[misc]
"""The question strategies as an enum, for the API schema and the CLI's choices."""
SummaryStrategy = StrEnum("SummaryStrategy", {name: name for name in summary_choices()})  # type: ignore[misc]
"""The summary strategies as an enum."""
