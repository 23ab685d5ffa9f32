"""What each strategy will do for a question, counted before it runs: model calls, prompt and completion tokens.

Each strategy declares its estimate function in `agents.registry` next to its reader, and each function
uses the same structural arithmetic its reader will (the tree's `level_sizes` over the stored
segments, the chain's `chain_budget` and `plan_chunks`, the baselines' window and evidence budgets),
so the counts are what the reader will actually do, not rules of thumb. Work already stored costs
nothing: a built tree's nodes, a chain run's persisted steps.

Prompt tokens are counted on the rendered prompt files (in the model's own prompt style). Completion
tokens are each call's cap times a fill: the share of its cap the model writes, measured per model
from earlier runs (`storage.speeds`), or a default per kind of call until something is measured.

No function here calls a model. Turning counts into seconds and dollars is `agents.planner`'s work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import col, select

from longread.config import get_settings
from longread.storage.models import TreeNode

if TYPE_CHECKING:
    from longread.agents.base import ReadRequest
    from longread.llm import LLMClient

CHAT_TOKENS = 8
"""Chat-format tokens around one message (the same allowance `chain_budget` makes)."""
LABEL_TOKENS = 6
"""A passage's "[S12] " label and the blank line after it."""

# Default fills (share of a call's output cap that a model writes) until the model's own is measured.
# A summary asked for N words fills most of its cap (the cap is 1.6 tokens per word + 16, English runs
# about 1.3); a navigation decision is a sentence or two and an action; an answer is a phrase or a
# short paragraph under a cap sized for the longest.
SUMMARY_FILL = 0.75
DECISION_FILL = 0.3
ANSWER_FILL = 0.15
UNIT_FILL = 0.75

MEMORY_ENTRY_TOKENS = 100
"""A working-memory line of the tree walk: a summary cut at 400 characters."""
SHORTLIST_QUESTION_TOKENS = 64
"""The question and the instruction around the shortlist in the re-ranking forward pass."""
LOCAL_ANSWER_TOKENS = 48
"""The attention reader's local answer cap (agents.attention.strategy)."""
LOCAL_ANSWER_PROMPT_TOKENS = 200
"""The few-shot examples and the question around the evidence in the local answer prompt."""


@dataclass(frozen=True)
class Calibration:
    """What earlier runs measured that changes counts (not speeds): each model's completion fill per cap.

    Calls of one kind share a completion cap (a leaf summary, a navigation decision, an answer), so the
    fill measured at a cap is that kind of call's; a cap never measured gets the kind's default.
    """

    fills: Mapping[str, Mapping[int, float]] = field(default_factory=dict)

    def fill(self, model: str, cap: int, default: float) -> float:
        return min(1.0, max(0.01, self.fills.get(model, {}).get(cap, default)))

    def completion(self, model: str, cap: int, default: float) -> int:
        """Expected completion tokens of one call with this cap."""
        return round(cap * self.fill(model, cap, default))


@dataclass(frozen=True)
class Step:
    """A group of model calls of one kind; `parallel` ones may run at once (a tree level)."""

    what: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    parallel: bool = False
    model: str | None = None
    """The model that answers these calls when it is not the job's (an `--answer-with` model)."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "what": self.what,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
        if self.parallel:
            out["parallel"] = True
        if self.model:
            out["model"] = self.model
        return out


@dataclass(frozen=True)
class Estimate:
    """A strategy's work for one question, before it runs."""

    steps: tuple[Step, ...] = ()
    scan_tokens: int = 0
    """Tokens the in-process model reads by forward passes outside any call (attention scoring)."""
    encode_tokens: int = 0
    """Tokens the dense encoder embeds (the first question on a document; reused within a process)."""
    note: str = ""

    @property
    def calls(self) -> int:
        return sum(step.calls for step in self.steps)

    @property
    def prompt_tokens(self) -> int:
        return sum(step.prompt_tokens for step in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(step.completion_tokens for step in self.steps)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def prompt_tokens(client: LLMClient, name: str, **variables: object) -> int:
    """Tokens of a prompt file as this model gets it (its completion variant for a base model)."""
    text, _ = client.render_prompt(name, **variables)
    return client.counter.count(text) + CHAT_TOKENS


def _answer(calibration: Calibration, client: LLMClient) -> int:
    """Expected tokens of an answer written under the default output cap."""
    return calibration.completion(client.model, client.max_output_tokens, ANSWER_FILL)


# ------------------------------------------------------------------------------------------ baselines


def estimate_full(request: ReadRequest, calibration: Calibration) -> Estimate:
    """One call with the document from its start until the window is full."""
    from longread.agents.baselines import full_context_budget

    client, question = request.client, request.require_question()
    window = full_context_budget(client, question)
    document = sum(segment.n_tokens + LABEL_TOKENS for segment in request.segments())
    shown = min(window, document)
    overhead = prompt_tokens(client, "baseline_answer", question=question, passages=[], truncated=shown < document)
    completion = _answer(calibration, client)
    note = "" if shown >= document else f"reads the first {shown} of {document} tokens"
    return Estimate((Step("answer", 1, overhead + shown, completion),), note=note)


def _retrieved(request: ReadRequest, calibration: Calibration, *, encode: bool) -> Estimate:
    from longread.agents.baselines import bm25_evidence, full_context_budget

    client, question = request.client, request.require_question()
    settings = get_settings()
    segments = request.segments()
    document = sum(segment.n_tokens for segment in segments)
    budget = min(settings.EVIDENCE_TOKENS, full_context_budget(client, question))
    if encode:  # every passage has a similarity, so the budget fills up
        shown = min(budget, document)
    else:  # BM25 shows only passages sharing a term with the question: rank them (no model involved)
        text = request.document.text
        evidence = bm25_evidence(text, question, counter=client.counter, budget_tokens=budget, segments=segments)
        shown = sum(client.counter.count(text[e.start : e.end]) for e in evidence)
    overhead = prompt_tokens(client, "baseline_answer", question=question, passages=[], truncated=False)
    # Evidence units are grouped by segment, one label per segment: a few labels per answer.
    labels = LABEL_TOKENS * max(1, shown // max(settings.RETRIEVAL_UNIT_TOKENS, 1))
    completion = _answer(calibration, client)
    return Estimate(
        (Step("answer", 1, overhead + shown + labels, completion),),
        encode_tokens=document if encode else 0,
        note="embeds the document on its first question" if encode else "",
    )


def estimate_bm25(request: ReadRequest, calibration: Calibration) -> Estimate:
    return _retrieved(request, calibration, encode=False)


def estimate_dense(request: ReadRequest, calibration: Calibration) -> Estimate:
    return _retrieved(request, calibration, encode=True)


# ----------------------------------------------------------------------------------------------- tree


def _stored_nodes(request: ReadRequest) -> dict[int, int]:
    """Nodes per level of the tree this question would use, if one is stored already."""
    from longread.agents.memwalker.tree import stored_tree

    tree = stored_tree(request.session, request.document, request.client.model)
    if tree is None:
        return {}
    rows = request.session.exec(
        select(TreeNode.level, func.count()).where(TreeNode.tree_id == tree.id).group_by(col(TreeNode.level))
    ).all()
    return {int(level): int(count) for level, count in rows}


def estimate_tree(request: ReadRequest, calibration: Calibration) -> Estimate:
    """Build whatever of the summary tree is not stored (level by level, each level in parallel), then walk it.

    The walk is costed as one path from the root to the leaf that answers: a triage call per internal
    level and one leaf call. Backtracking adds calls; MemWalker reports 15-19% of paths going astray.
    """
    from longread.agents.memwalker.navigate import DECISION_TOKENS
    from longread.agents.memwalker.tree import (
        LEAF_SUMMARY_WORDS,
        NODE_SUMMARY_WORDS,
        level_sizes,
        words_to_tokens,
    )

    client, question = request.client, request.require_question()
    settings = get_settings()
    segments = request.segments()
    sizes = level_sizes(len(segments), settings.TREE_FANOUT)
    have = _stored_nodes(request)
    leaf_out = calibration.completion(client.model, words_to_tokens(LEAF_SUMMARY_WORDS), SUMMARY_FILL)
    node_out = calibration.completion(client.model, words_to_tokens(NODE_SUMMARY_WORDS), SUMMARY_FILL)
    steps: list[Step] = []

    todo = max(0, sizes[0] - have.get(0, 0))
    if todo:
        overhead = prompt_tokens(client, "tree_leaf_summary", text="", max_words=LEAF_SUMMARY_WORDS)
        text = sum(s.n_tokens for s in segments) * todo // sizes[0]
        steps.append(Step("summarise leaves", todo, todo * overhead + text, todo * leaf_out, parallel=True))
    for level in range(1, len(sizes)):
        todo = max(0, sizes[level] - have.get(level, 0))
        if not todo:
            continue
        children = sizes[level - 1] / sizes[level]
        child_out = leaf_out if level == 1 else node_out
        overhead = prompt_tokens(client, "tree_node_summary", summaries=[], max_words=NODE_SUMMARY_WORDS)
        prompt = round(todo * (overhead + children * (child_out + LABEL_TOKENS)))
        steps.append(Step(f"summarise level {level + 1}", todo, prompt, todo * node_out, parallel=True))

    decision_out = calibration.completion(client.model, DECISION_TOKENS, DECISION_FILL)
    depth = len(sizes) - 1
    memory = [min(settings.NAV_MEMORY_TOKENS, i * MEMORY_ENTRY_TOKENS) for i in range(depth + 1)]
    if depth:
        overhead = prompt_tokens(client, "nav_triage", question=question, memory="", children=[])
        triage = 0
        for i, level in enumerate(range(depth, 0, -1)):
            children = math.ceil(sizes[level - 1] / sizes[level])
            child_out = leaf_out if level == 1 else node_out
            triage += overhead + memory[i] + children * (child_out + LABEL_TOKENS)
        steps.append(Step("choose a part", depth, triage, depth * decision_out))
    overhead = prompt_tokens(client, "nav_leaf", text="", question=question, memory="", segment_index=0)
    leaf = overhead + memory[depth] + sum(s.n_tokens for s in segments) // len(segments)
    steps.append(Step("read a passage", 1, leaf, decision_out))
    built = not any(step.parallel for step in steps)
    return Estimate(tuple(steps), note="the tree is stored" if built else f"builds a tree of {sum(sizes)} nodes")


# ---------------------------------------------------------------------------------------------- chain


def estimate_chain(request: ReadRequest, calibration: Calibration) -> Estimate:
    """The workers `run_chain` will run (the stored steps of an interrupted run excepted) and the manager."""
    from longread.agents.chain import plan_chain, stored_steps

    client, question = request.client, request.question
    plan = plan_chain(request.session, request.document, question, client)
    budget, chunks = plan.budget, plan.chunks
    done = len(stored_steps(request.session, plan.key))
    unit = min(budget.unit_tokens, calibration.completion(client.model, budget.output_tokens, UNIT_FILL))
    todo = chunks[done:]
    steps: list[Step] = []
    if todo:
        carried = unit * (len(todo) - (0 if done else 1))  # the first worker starts from an empty unit
        prompt = len(todo) * budget.overhead + sum(chunk.n_tokens for chunk in todo) + carried
        steps.append(Step("workers", len(todo), prompt, unit * len(todo)))
    if question:
        overhead = prompt_tokens(client, "chain_manager", unit="", question=question)
        completion = _answer(calibration, client)
    else:
        from longread.agents.chain import SUMMARY_WORDS
        from longread.agents.memwalker.tree import words_to_tokens

        overhead = prompt_tokens(client, "chain_manager_summary", unit="", max_words=SUMMARY_WORDS)
        completion = calibration.completion(client.model, words_to_tokens(SUMMARY_WORDS), SUMMARY_FILL)
    steps.append(Step("manager", 1, overhead + unit, completion))
    note = f"{len(chunks)} workers" + (f", {done} stored" if done else "")
    return Estimate(tuple(steps), note=note)


# ------------------------------------------------------------------------------------ local attention


def _local_or_hosted_answer(request: ReadRequest, calibration: Calibration, evidence: int, prompt: str) -> Step:
    """The answering call of a reader whose evidence the local model chose."""
    from longread.llm import LLMClient

    model = request.answer_with or request.client.model
    if model.startswith("local/"):
        # The local answer's cap is already answer-sized, so it fills more of it.
        completion = calibration.completion(model, LOCAL_ANSWER_TOKENS, ANSWER_FILL * 4)
        return Step("answer", 1, evidence + LOCAL_ANSWER_PROMPT_TOKENS, completion, model=model)
    client = request.client if model == request.client.model else LLMClient(model)
    overhead = prompt_tokens(client, prompt, passages=[], question=request.require_question())
    completion = _answer(calibration, client)
    return Step("answer", 1, overhead + evidence, completion, model=None if model == request.client.model else model)


def estimate_attention(request: ReadRequest, calibration: Calibration) -> Estimate:
    """The local model reads the whole document chunk by chunk (no call), then one answering call."""
    document = sum(segment.n_tokens for segment in request.segments())
    evidence = get_settings().ATTENTION_EVIDENCE_TOKENS
    answer = _local_or_hosted_answer(request, calibration, evidence, "attention_answer_hosted")
    return Estimate((answer,), scan_tokens=document, note="the local model reads every token")


def _index_stored(request: ReadRequest, unit_tokens: int) -> bool:
    """Whether the shortlist's retrieval index (passages and embeddings) is stored for this document already."""
    from longread.agents.shortlist.index import EMBED_MODEL, index_scheme
    from longread.storage.models import RetrievalIndex

    scheme = index_scheme(request.segments(), unit_tokens)
    query = select(RetrievalIndex.id).where(
        RetrievalIndex.document_id == request.document.id,
        RetrievalIndex.scheme == scheme,
        RetrievalIndex.embed_model == EMBED_MODEL,
    )
    return request.session.exec(query).first() is not None


def estimate_shortlist(request: ReadRequest, calibration: Calibration) -> Estimate:
    """BM25 + dense shortlist (the document embedded once and stored), one forward pass over it, one answer.

    A second hop (the answer names what the question depends on) adds a pass and a call; it is not counted.
    """
    settings = get_settings()
    document = sum(segment.n_tokens for segment in request.segments())
    evidence = min(settings.EVIDENCE_TOKENS, document)
    unit_tokens = settings.SHORTLIST_UNIT_TOKENS or settings.RETRIEVAL_UNIT_TOKENS
    shortlist = settings.SHORTLIST_SIZE * unit_tokens
    stored = _index_stored(request, unit_tokens)
    answer = _local_or_hosted_answer(request, calibration, evidence, "shortlist_answer_hosted")
    return Estimate(
        (answer,),
        scan_tokens=min(shortlist + SHORTLIST_QUESTION_TOKENS, document),
        encode_tokens=0 if stored else document,
        note="the retrieval index is stored" if stored else "embeds the document once (then stored)",
    )
