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

from longread.agents.base import AnswerDraft, ReadRequest, UnknownStrategy

if TYPE_CHECKING:
    from longread.agents.estimates import Calibration, Estimate

__all__ = ["AUTO", "ReadRequest", "Strategy", "UnknownStrategy"]

AUTO = "auto"
FanOut = Literal["tree", "chain"]


Reader = Callable[[ReadRequest], AnswerDraft]
Estimator = Callable[[ReadRequest, "Calibration"], "Estimate"]
"""Counts a reader's work for a request before it runs (agents.estimates); never calls a model."""


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
    estimate: Estimator | None = None
    """Its calls and tokens for a question, for the planner (`auto`, `longread plan`, dry runs)."""

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
        conversation=request.conversation,
    )


def _summarise_full(request: ReadRequest) -> AnswerDraft:
    from longread.agents.baselines import summarize_full

    return summarize_full(request.document.text, request.client, segments=request.segments(), progress=request.progress)


def _retrieval_reader(method: str) -> Reader:
    """bm25 and dense differ only in their retriever: one reader for each, built from the baselines' entry."""

    def read(request: ReadRequest) -> AnswerDraft:
        from longread.agents import baselines

        answer = baselines.answer_bm25 if method == "bm25" else baselines.answer_dense
        return answer(
            request.document.text,
            request.require_question(),
            request.client,
            segments=request.segments(),
            progress=request.progress,
            partial=request.note_partial,
            conversation=request.conversation,
        )

    return read


def _read_tree(request: ReadRequest) -> AnswerDraft:
    from longread.agents.memwalker.navigate import navigate
    from longread.agents.memwalker.tree import build_tree

    tree = build_tree(request.session, request.document, request.client, progress=request.progress)
    return navigate(
        request.session,
        tree,
        request.document,
        request.require_question(),
        request.client,
        progress=request.progress,
        partial=request.note_partial,
        conversation=request.conversation,
    )


def _summarise_tree(request: ReadRequest) -> AnswerDraft:
    from longread.agents.memwalker.summary import summarize_from_tree

    return summarize_from_tree(request.session, request.document, request.client, request.progress)


def _read_chain(request: ReadRequest) -> AnswerDraft:
    from longread.agents.chain import run_chain

    return run_chain(
        request.session,
        request.document,
        request.question,
        request.client,
        progress=request.progress,
        partial=request.note_partial,
        conversation=request.conversation,
    )


def _read_attention(request: ReadRequest) -> AnswerDraft:
    # Imported here: it loads torch, which the API process and hosted-model workers never need.
    from longread.agents.attention.strategy import read_with_attention
    from longread.storage.scans import ScanCheckpoints

    document_id = request.document.id
    return read_with_attention(
        request.document.text,
        request.require_question(),
        segments=request.segments(),
        answer_model=request.answer_with or request.client.model,
        usage=request.client.usage,
        client=request.client,
        progress=request.progress,
        partial=request.note_partial,
        conversation=request.conversation,
        checkpoints=lambda key: ScanCheckpoints(request.session, document_id, key),
    )


def _read_shortlist(request: ReadRequest) -> AnswerDraft:
    # Imported here: it loads torch, which the API process and hosted-model workers never need.
    from longread.agents.shortlist.strategy import read_with_shortlist

    return read_with_shortlist(request)


# ----------------------------------------------------------------------------------------- estimates


def _estimate(name: str) -> Estimator:
    """agents.estimates.estimate_<name>, imported when first called (it reads the tree and chain modules)."""

    def estimate(request: ReadRequest, calibration: Calibration) -> Estimate:
        from longread.agents import estimates

        function: Estimator = getattr(estimates, f"estimate_{name}")
        return function(request, calibration)

    estimate.__name__ = f"estimate_{name}"
    return estimate


# --------------------------------------------------------------------------------------- declarations

STRATEGIES: tuple[Strategy, ...] = (
    Strategy(
        "full",
        "the whole document in one call, cut at the model's window",
        _read_full,
        _summarise_full,
        estimate=_estimate("full"),
    ),
    Strategy(
        "bm25",
        "BM25 passages within the evidence budget, then one answering call",
        _retrieval_reader("bm25"),
        estimate=_estimate("bm25"),
    ),
    Strategy(
        "dense",
        "MiniLM embedding passages within the evidence budget, then one answering call",
        _retrieval_reader("dense"),
        estimate=_estimate("dense"),
    ),
    Strategy(
        "tree",
        "navigate a summary tree built once per document (MemWalker)",
        _read_tree,
        _summarise_tree,
        fan_out="tree",
        estimate=_estimate("tree"),
    ),
    Strategy(
        "chain",
        "a chain of reading agents passing evidence along, then a manager (Chain of Agents)",
        _read_chain,
        _read_chain,
        fan_out="chain",
        estimate=_estimate("chain"),
    ),
    Strategy(
        "attention",
        "the local model scans the whole document; its attention picks the evidence (InfiniRetri)",
        _read_attention,
        needs_local_model=True,
        estimate=_estimate("attention"),
    ),
    Strategy(
        "shortlist",
        "BM25 and dense retrieval shortlist passages; the local model's attention re-ranks them (ICR)",
        _read_shortlist,
        needs_local_model=True,
        estimate=_estimate("shortlist"),
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


QuestionStrategy = StrEnum("QuestionStrategy", {name: name for name in question_choices()})  # type: ignore[misc]  # built from the registry; mypy types literal enums only
"""The question strategies as an enum, for the API schema and the CLI's choices."""
SummaryStrategy = StrEnum("SummaryStrategy", {name: name for name in summary_choices()})  # type: ignore[misc]  # built from the registry; mypy types literal enums only
"""The summary strategies as an enum."""
