"""`auto` as a planner: estimate every strategy for a question, then pick the best expected one within the caps.

For each registered strategy the planner takes the strategy's own estimate (`agents.estimates`: calls,
prompt and completion tokens, forward-pass and embedding work) and prices it:

- cost from litellm's bundled price map (`longread.llm.pricing`); in-process models cost nothing;
- wall time on this deployment from measured speeds (`storage.speeds`, added after every run): a local
  model's seconds per prompt and per completion token (a least-squares fit over its calls), a hosted
  model's mean seconds per call, the attention reader's tokens read per second. Defaults stand in until
  something is measured. Parallel steps (a tree level) run `LLM_MAX_CONCURRENCY` calls at once on a
  hosted model, which is also the provider cap shared by the workers; the in-process model runs one
  call at a time.

It then picks, among the strategies that fit the caps, the one with the best expected quality for the
kind of question (a look-up of one place, or a question about the whole text) and the document's length
against the model's window; ties go to the faster. The quality priors and where they come from are in
`QUALITY` below. A strategy that runs the local model over the document is left out when the best strategy
on the hosted model alone would be `LOCAL_SLOWER_LIMIT` times faster, unless the caller asked to stay local.
Nothing here calls a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from longread.agents import registry
from longread.agents.base import no_progress
from longread.agents.estimates import Calibration, Estimate, Step
from longread.agents.router import FULL_WINDOW_SHARE, is_aggregation, local_model_available
from longread.config import get_settings
from longread.llm.pricing import cost_usd, priced, runs_in_process
from longread.llm.usage import Budget
from longread.storage import speeds

if TYPE_CHECKING:
    from sqlmodel import Session

    from longread.llm import LLMClient
    from longread.storage.models import Document

LOOKUP = "look-up"
WHOLE_TEXT = "whole-text"

# Expected quality (share of questions answered from the right evidence) when the document is longer than
# the model's window, as (look-up, whole-text). Sources:
# - look-up: the books development set (shared/bookqa, issue 10: whole Austen novels, evidence budget 1,000
#   tokens): BM25 held the answer in its evidence for 25 of 28 questions, dense (MiniLM) 21 of 28, the
#   full attention scan 1 of 4. Chain and tree, not run on the books, take their RULER evidence recall
#   (docs/eval-results.md, run ruler-local: chain 56.7%, tree 32.9%), where BM25 and dense also lead on
#   accuracy (60.7% and 57.1%). `shortlist` re-ranks the BM25 + dense shortlist with the local model's
#   attention; it is taken equal to BM25 (the faster BM25 wins the tie) except where it was measured, in
#   `LOCAL_ANSWER_QUALITY`.
# - whole-text: only the chain reads every part in order (Chain of Agents reports its largest gains on
#   aggregation over long inputs); the tree answers from summaries; retrieval shows 1,000 tokens of the
#   document, which cannot hold a whole-text answer.
QUALITY: dict[str, tuple[float, float]] = {
    "bm25": (0.89, 0.2),
    "shortlist": (0.89, 0.2),
    "dense": (0.75, 0.2),
    "chain": (0.57, 0.7),
    "tree": (0.33, 0.4),
    "attention": (0.25, 0.1),
}
LOCAL_ANSWER_QUALITY: dict[str, tuple[float, float]] = {"shortlist": (0.92, 0.2)}
"""Priors that hold when the local model writes the answer. On the books suite with the bundled model the
shortlist reader led BM25 and dense (answer accuracy 29.2% against 20.8% and 16.7%; a cited quote held the
answer for 62.5% against 8.3% and 16.7%), so there it ranks above BM25."""
UNKNOWN_QUALITY = 0.5
"""A strategy registered without a prior yet."""
FULL_QUALITY = 0.95
"""`full` when the whole document fits: nothing is missed. Beyond the window it is scaled by the share it sees."""

LOCAL_SLOWER_LIMIT = 4.0
"""A local-model strategy this many times slower than the best hosted one is not chosen (unless staying local)."""

# Speeds until measured, on the project's 2-core CPU box with the bundled Gemma 3 270M (docs/eval-results.md:
# `full` read 5.6K tokens and wrote 32 in 24 s, `bm25` 0.9K and 22 in 4.5 s; the README's 128K-token attention
# scan took 4 min 20 s), the MiniLM encoder on the same CPU, and a typical hosted chat call.
LOCAL_PROMPT_S = 1 / 250
LOCAL_COMPLETION_S = 1 / 30
LOCAL_CALL_S = 0.05
SCAN_TOKENS_PER_S = 500.0
ENCODE_TOKENS_PER_S = 2000.0
HOSTED_CALL_S = 2.0
IN_PROCESS_CALL_S = 0.01
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Speed:
    """How long a model's calls take here: fixed seconds per call plus seconds per prompt and completion token."""

    model: str
    call_s: float
    prompt_s: float = 0.0
    completion_s: float = 0.0
    measured_calls: int = 0

    def seconds(self, prompt_tokens: float, completion_tokens: float) -> float:
        return self.call_s + prompt_tokens * self.prompt_s + completion_tokens * self.completion_s


def scan_model() -> str:
    """The key under which the attention reader's forward-pass speed is kept (its model is LOCAL_MODEL)."""
    return f"local:{get_settings().LOCAL_MODEL}"


def speed_for(session: Session, model: str) -> Speed:
    """The measured speed of a model's calls, or the defaults for its kind until MIN_SAMPLES calls are measured."""
    row = speeds.load(session, model)
    n = row.n if row is not None else 0
    if model.startswith("local/"):
        if row is None or n < MIN_SAMPLES:
            return Speed(model, LOCAL_CALL_S, LOCAL_PROMPT_S, LOCAL_COMPLETION_S)
        det = row.pp * row.cc - row.pc * row.pc
        if det > 1e-6 * row.pp * row.cc:
            a = (row.ps * row.cc - row.cs * row.pc) / det
            b = (row.cs * row.pp - row.ps * row.pc) / det
            if a > 0 and b > 0:
                return Speed(model, 0.0, a, b, n)
        # Too few kinds of call to tell reading from writing: scale the defaults to the measured total.
        predicted = LOCAL_CALL_S * n + LOCAL_PROMPT_S * row.prompt_tokens + LOCAL_COMPLETION_S * row.completion_tokens
        scale = row.seconds / predicted if predicted > 0 else 1.0
        return Speed(model, LOCAL_CALL_S * scale, LOCAL_PROMPT_S * scale, LOCAL_COMPLETION_S * scale, n)
    default = IN_PROCESS_CALL_S if runs_in_process(model) else HOSTED_CALL_S
    if row is None or n < MIN_SAMPLES:
        return Speed(model, default)
    return Speed(model, row.seconds / n, measured_calls=n)


def scan_tokens_per_s(session: Session) -> float:
    row = speeds.load(session, scan_model(), speeds.SCAN)
    if row is None or row.n < 1 or row.seconds <= 0:
        return SCAN_TOKENS_PER_S
    return row.prompt_tokens / row.seconds


def calibration(session: Session, models: list[str]) -> Calibration:
    """Each model's measured completion fill per output cap, where MIN_SAMPLES calls were measured."""
    return Calibration({model: speeds.fills(session, model, MIN_SAMPLES) for model in models})


def lanes(model: str) -> int:
    """Calls of one parallel step that run at once: the in-process local model runs one at a time."""
    return 1 if model.startswith("local/") else max(1, get_settings().LLM_MAX_CONCURRENCY)


# ----------------------------------------------------------------------------------------------- plan


@dataclass
class Option:
    """One strategy as the planner saw it."""

    strategy: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    quality: float = 0.0
    over: list[str] = field(default_factory=list)
    """The caps it would exceed."""
    excluded: str | None = None
    """Why it cannot be chosen (it cannot run here, or the local model would be far slower)."""
    note: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def fits(self) -> bool:
        return not self.over

    @property
    def runnable(self) -> bool:
        return self.excluded is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 1),
            "quality": round(self.quality, 2),
            "fits": self.fits,
            "over": self.over,
            "excluded": self.excluded,
            "note": self.note,
            "steps": self.steps,
        }


@dataclass
class Plan:
    """The choice, why, and every option it was chosen from (stored with the answer as `plan`)."""

    strategy: str
    reason: str
    kind: str
    model: str
    document_tokens: int
    window: int
    caps: Budget | None
    stay_local: bool
    priced: bool
    options: list[Option]

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.strategy == name), None)

    @property
    def chosen(self) -> Option | None:
        return self.option(self.strategy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "reason": self.reason,
            "question_kind": self.kind,
            "model": self.model,
            "document_tokens": self.document_tokens,
            "window": self.window,
            "caps": self.caps.as_dict() if self.caps else None,
            "stay_local": self.stay_local,
            "priced": self.priced,
            "options": [o.as_dict() for o in self.options],
        }


def quality(
    name: str, kind: str, document_tokens: int, window: int, full_budget: int, *, local_answer: bool = False
) -> float:
    """Expected quality of a strategy for this kind of question and this document length (see QUALITY).

    `local_answer`: the in-process local model writes the answer (LOCAL_ANSWER_QUALITY then applies).
    """
    if name == "full":
        fits = document_tokens <= window * FULL_WINDOW_SHARE
        return FULL_QUALITY if fits else FULL_QUALITY * min(1.0, full_budget / max(document_tokens, 1))
    prior = (LOCAL_ANSWER_QUALITY.get(name) if local_answer else None) or QUALITY.get(name)
    if prior is None:
        return UNKNOWN_QUALITY
    return prior[0] if kind == LOOKUP else prior[1]


def _over(option: Option, caps: Budget | None) -> list[str]:
    if caps is None:
        return []
    over = []
    if caps.max_cost_usd is not None and option.cost_usd > caps.max_cost_usd:
        over.append("cost")
    if caps.max_seconds is not None and option.seconds > caps.max_seconds:
        over.append("seconds")
    if caps.max_tokens is not None and option.tokens > caps.max_tokens:
        over.append("tokens")
    return over


def _new_option(name: str, expected_quality: float, local_ok: bool) -> Option:
    """A strategy's option in a plan, excluded from the start when it needs the local model and there is none."""
    option = Option(name, quality=expected_quality)
    if registry.get(name).needs_local_model and not local_ok:
        option.excluded = "needs the local model (torch and transformers are not installed)"
    return option


def _fill(
    option: Option,
    estimate: Estimate,
    session: Session,
    model: str,
    speed_cache: dict[str, Speed],
    caps: Budget | None,
) -> None:
    """`option` with `estimate`'s calls, tokens, note and steps, priced on this deployment, and the caps it
    would exceed."""
    option.calls = estimate.calls
    option.prompt_tokens = estimate.prompt_tokens
    option.completion_tokens = estimate.completion_tokens
    option.cost_usd, option.seconds = price(session, estimate, model, speed_cache)
    option.note = estimate.note
    option.steps = [step.as_dict() for step in estimate.steps]
    option.over = _over(option, caps)


def price(
    session: Session, estimate: Estimate, model: str, speed_cache: dict[str, Speed] | None = None
) -> tuple[float, float]:
    """(cost in USD, wall seconds) of an estimate on this deployment."""
    cache = speed_cache if speed_cache is not None else {}
    cost = 0.0
    seconds = 0.0
    for step in estimate.steps:
        step_model = step.model or model
        if step_model not in cache:
            cache[step_model] = speed_for(session, step_model)
        speed = cache[step_model]
        cost += cost_usd(step_model, step.prompt_tokens, step.completion_tokens)
        if step.calls:
            per_call = speed.seconds(step.prompt_tokens / step.calls, step.completion_tokens / step.calls)
            rounds = math.ceil(step.calls / lanes(step_model)) if step.parallel else step.calls
            seconds += rounds * per_call
    if estimate.scan_tokens:
        seconds += estimate.scan_tokens / scan_tokens_per_s(session)
    seconds += estimate.encode_tokens / ENCODE_TOKENS_PER_S
    return cost, seconds


def plan_question(
    session: Session,
    document: Document,
    question: str,
    client: LLMClient,
    *,
    strategy: str = registry.AUTO,
    answer_with: str | None = None,
    caps: Budget | None = None,
    stay_local: bool | None = None,
) -> Plan:
    """Estimate the strategies for a question (only the named one unless `auto`) and choose; no model call."""
    registry.check_question_strategy(strategy)
    stay = get_settings().STAY_LOCAL if stay_local is None else stay_local
    request = registry.ReadRequest(session, document, question, client, no_progress, answer_with)
    segments = request.segments()
    document_tokens = sum(segment.n_tokens for segment in segments)
    window = client.context_window
    kind = WHOLE_TEXT if is_aggregation(question) else LOOKUP
    from longread.agents.baselines import full_context_budget

    full_budget = full_context_budget(client, question)
    models = [client.model] + ([answer_with] if answer_with else [])
    cal = calibration(session, models)
    names = registry.names() if strategy == registry.AUTO else (strategy,)
    speed_cache: dict[str, Speed] = {}
    options: list[Option] = []
    local_ok = local_model_available()
    local_answer = (answer_with or client.model).startswith("local/")
    for name in names:
        declared = registry.get(name)
        option = _new_option(
            name, quality(name, kind, document_tokens, window, full_budget, local_answer=local_answer), local_ok
        )
        options.append(option)
        if declared.estimate is None:
            option.excluded = option.excluded or "declares no estimate"
            continue
        try:
            estimate = declared.estimate(request, cal)
        except (ValueError, LookupError) as exc:  # a window too small for the chain, and the like
            option.excluded = f"cannot run: {exc}"
            continue
        _fill(option, estimate, session, client.model, speed_cache, caps)
    all_priced = all(priced(m) for m in models)
    if strategy != registry.AUTO:
        return Plan(
            strategy,
            "chosen by the caller",
            kind,
            client.model,
            document_tokens,
            window,
            caps,
            stay,
            all_priced,
            options,
        )
    chosen, reason = choose(options, kind=kind, hosted_model=not runs_in_process(client.model), stay_local=stay)
    reason = _explain(chosen, reason, kind, document_tokens, window)
    return Plan(chosen.strategy, reason, kind, client.model, document_tokens, window, caps, stay, all_priced, options)


def choose(options: list[Option], *, kind: str, hosted_model: bool, stay_local: bool) -> tuple[Option, str]:
    """The best expected option within the caps; marks the local-model options a hosted model would outrun.

    Returns the option and a reason fragment about the caps and exclusions.
    """
    if hosted_model and not stay_local:
        # Measured against what auto would read with on the hosted model alone (best quality, then fastest).
        hosted = [o for o in options if o.runnable and o.fits and not registry.get(o.strategy).needs_local_model]
        reference = max(hosted, key=lambda o: (o.quality, -o.seconds), default=None)
        for option in options:
            if option.runnable and registry.get(option.strategy).needs_local_model and reference is not None:
                ratio = option.seconds / max(reference.seconds, 1e-6)
                if ratio >= LOCAL_SLOWER_LIMIT:
                    option.excluded = (
                        f"the local model would take {ratio:.0f}x as long as {reference.strategy} on the hosted "
                        "model (stay local to allow it)"
                    )
    runnable = [o for o in options if o.runnable]
    if not runnable:
        fallback = next((o for o in options if o.strategy == "bm25"), options[0])
        return fallback, "no strategy could be estimated"
    fitting = [o for o in runnable if o.fits]
    if fitting:
        best = max(fitting, key=lambda o: (o.quality, -o.seconds, -o.cost_usd))
        better = [o for o in runnable if o.quality > best.quality and not o.fits]
        note = f"; {', '.join(o.strategy for o in better)} would exceed the caps" if better else ""
        return best, note

    def overshoot(option: Option) -> float:
        return len(option.over) + option.seconds / 1e6

    closest = min(runnable, key=overshoot)
    return closest, "; no strategy fits the caps, so it stops at the cap with its best partial answer"


def _explain(option: Option, note: str, kind: str, document_tokens: int, window: int) -> str:
    if option.strategy == "full" and document_tokens <= window * FULL_WINDOW_SHARE:
        why = f"the document ({document_tokens} tokens) fits the model's {window}-token window"
    elif kind == WHOLE_TEXT:
        why = (
            f"the question asks about the whole text; {option.strategy} has the best expected quality "
            f"for that ({option.quality:.2f})"
        )
    else:
        why = (
            f"a look-up question over {document_tokens} tokens (window {window}); {option.strategy} has the best "
            f"expected quality ({option.quality:.2f})"
        )
    cost = f", ${option.cost_usd:.4f}" if option.cost_usd else ""
    estimate = f"estimated {option.calls} calls, {option.tokens} tokens{cost}, about {option.seconds:.0f} s"
    return f"{why}: {estimate}{note}"


# ------------------------------------------------------------------------------------------ collections

COLLECTION_STRATEGIES = ("shortlist", "bm25", "dense", "tree", "chain")
"""The strategies that read a collection (longread.collection_reading)."""


@dataclass
class _Parts:
    """Per-document figures of one strategy over a collection, summed as the documents are visited."""

    steps: list[Step] = field(default_factory=list)
    scan_tokens: int = 0
    encode_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    def estimate(self, note: str) -> Estimate:
        merged: dict[tuple[str, bool, str | None], Step] = {}
        for step in self.steps:
            key = (step.what, step.parallel, step.model)
            if key in merged:
                had = merged[key]
                step = Step(
                    step.what,
                    had.calls + step.calls,
                    had.prompt_tokens + step.prompt_tokens,
                    had.completion_tokens + step.completion_tokens,
                    step.parallel,
                    step.model,
                )
            merged[key] = step
        return Estimate(tuple(merged.values()), self.scan_tokens, self.encode_tokens, note)


def estimate_collection(
    session: Session,
    document_ids: list[str],
    question: str,
    client: LLMClient,
    calibration: Calibration,
    *,
    answer_with: str | None = None,
    ordered: bool = False,
) -> tuple[dict[str, Estimate | str], int]:
    """Each collection strategy's estimate (or why it cannot run), and the collection's tokens.

    Per-document figures are summed, one document in memory at a time; what is stored already (a
    document's summary tree, its retrieval index) counts as paid. The tree adds the walk from the
    collection root (and the collection nodes past the fanout) down one document's tree; the chain's
    workers read every document, their notes carried from one into the next, then one manager; the
    retrieval readers index what is not indexed, then make one answering call over the evidence budget.
    A question about the whole collection with no stated order (`ordered`) is costed as the chain's
    map-reduce: each document's own chain (its stored steps paid), then one combining call.
    """
    from longread.agents import estimates
    from longread.agents.chain import plan_chain
    from longread.agents.memwalker.navigate import DECISION_TOKENS
    from longread.agents.memwalker.tree import NODE_SUMMARY_WORDS, child_range, words_to_tokens
    from longread.storage.models import Document

    settings = get_settings()
    fanout = settings.TREE_FANOUT
    unit_tokens = settings.SHORTLIST_UNIT_TOKENS or settings.RETRIEVAL_UNIT_TOKENS
    tree, chain, retrieval = _Parts(), _Parts(), _Parts()
    walks: list[tuple[int, tuple[Step, ...]]] = []
    errors: dict[str, str] = {}
    total = 0
    first: registry.ReadRequest | None = None
    unit = 0
    map_reduce = is_aggregation(question) and not ordered
    for document_id in document_ids:
        document = session.get(Document, document_id)
        if document is None:
            continue
        request = registry.ReadRequest(session, document, question, client, no_progress, answer_with)
        tokens = sum(segment.n_tokens for segment in request.segments())
        total += tokens
        if first is None:
            first = request
        stored_index = estimates._index_stored(request, unit_tokens)
        if not stored_index:
            retrieval.encode_tokens += tokens
            retrieval.notes.append(document.filename)
        built = estimates.estimate_tree(request, calibration)
        tree.steps.extend(step for step in built.steps if step.parallel)
        if any(step.parallel for step in built.steps):
            tree.notes.append(document.filename)
        walks.append((tokens, tuple(step for step in built.steps if not step.parallel)))
        if "chain" not in errors and map_reduce:
            try:  # each document's own chain, its stored steps already paid
                chain.steps.extend(estimates.estimate_chain(request, calibration).steps)
            except ValueError as exc:
                errors["chain"] = f"cannot run: {exc}"
        elif "chain" not in errors:
            try:
                plan = plan_chain(session, document, question, client)
            except ValueError as exc:
                errors["chain"] = f"cannot run: {exc}"
            else:
                budget, chunks = plan.budget, plan.chunks
                unit = min(
                    budget.unit_tokens, calibration.completion(client.model, budget.output_tokens, estimates.UNIT_FILL)
                )
                prompt = len(chunks) * (budget.overhead + unit) + sum(chunk.n_tokens for chunk in chunks)
                chain.steps.append(Step("workers", len(chunks), prompt, unit * len(chunks)))
        session.expunge(document)
    out: dict[str, Estimate | str] = dict(errors)
    if first is None:
        return dict.fromkeys(COLLECTION_STRATEGIES, "the collection has no documents"), 0
    answer_out = estimates._answer(calibration, client)
    if "chain" not in out and map_reduce:
        overhead = estimates.prompt_tokens(client, "chain_manager", unit="", question=question)
        answers = sum(step.completion_tokens for step in chain.steps if step.what == "manager")
        chain.steps.append(Step("combine", 1, overhead + answers + 8 * len(walks), answer_out))
        out["chain"] = chain.estimate(f"map-reduce: a chain per document ({len(walks)}), then one combining call")
    elif "chain" not in out:
        overhead = estimates.prompt_tokens(client, "chain_manager", unit="", question=question)
        chain.steps.append(Step("manager", 1, overhead + unit, answer_out))
        workers = sum(step.calls for step in chain.steps) - 1
        out["chain"] = chain.estimate(f"{workers} workers over {len(walks)} documents, in order")
    # The tree: the collection nodes past the fanout, a triage per collection level, one document's walk.
    node_out = calibration.completion(client.model, words_to_tokens(NODE_SUMMARY_WORDS), estimates.SUMMARY_FILL)
    decision_out = calibration.completion(client.model, DECISION_TOKENS, estimates.DECISION_FILL)
    summary_overhead = estimates.prompt_tokens(client, "tree_node_summary", summaries=[], max_words=NODE_SUMMARY_WORDS)
    level = len(walks)
    while level > fanout:
        parents = -(-level // fanout)
        groups = [child_range(level, parents, p) for p in range(parents)]
        prompt = sum(summary_overhead + (end - start) * (node_out + estimates.LABEL_TOKENS) for start, end in groups)
        tree.steps.append(Step("summarise collection nodes", parents, prompt, parents * node_out, parallel=True))
        level = parents
    triage_overhead = estimates.prompt_tokens(client, "nav_triage", question=question, memory="", children=[])
    levels, level = 0, len(walks)
    triage = 0
    while True:
        shown = min(level, fanout)
        triage += triage_overhead + shown * (node_out + estimates.LABEL_TOKENS + 8)
        levels += 1
        if level <= fanout:
            break
        level = -(-level // fanout)
    tree.steps.append(Step("choose a document", levels, triage, levels * decision_out))
    deepest = max(walks, key=lambda walk: walk[0])[1]
    tree.steps.extend(deepest)
    reused = len(walks) - len(tree.notes)
    tree_note = f"{reused} of {len(walks)} documents' trees stored" + (
        f"; builds {', '.join(tree.notes[:5])}" + ("..." if len(tree.notes) > 5 else "") if tree.notes else ""
    )
    out["tree"] = tree.estimate(tree_note)
    # The retrieval readers: one answer over the evidence budget (the shortlist's after one forward pass).
    evidence = min(settings.EVIDENCE_TOKENS, total)
    index_note = (
        f"indexes {len(retrieval.notes)} of {len(walks)} documents (then stored)"
        if retrieval.notes
        else "every document's retrieval index is stored"
    )
    answer = estimates._local_or_hosted_answer(first, calibration, evidence, "collection_answer_hosted")
    for name in ("bm25", "dense"):
        out[name] = Estimate((answer,), encode_tokens=retrieval.encode_tokens, note=index_note)
    shortlist = settings.SHORTLIST_SIZE * unit_tokens
    out["shortlist"] = Estimate(
        (answer,),
        scan_tokens=min(shortlist + estimates.SHORTLIST_QUESTION_TOKENS, total),
        encode_tokens=retrieval.encode_tokens,
        note=index_note,
    )
    return out, total


def plan_collection_question(
    session: Session,
    document_ids: list[str],
    question: str,
    client: LLMClient,
    *,
    strategy: str = registry.AUTO,
    answer_with: str | None = None,
    caps: Budget | None = None,
    stay_local: bool | None = None,
    ordered: bool = False,
) -> Plan:
    """Estimate the collection strategies for a question (every one, so the plan also shows what `auto`
    would pick) and choose; the named strategy when not `auto`. No model call."""
    if strategy not in (registry.AUTO, *COLLECTION_STRATEGIES):
        raise registry.UnknownStrategy(
            f"unknown strategy '{strategy}' for a collection (choose from auto, {', '.join(COLLECTION_STRATEGIES)})"
        )
    stay = get_settings().STAY_LOCAL if stay_local is None else stay_local
    models = [client.model] + ([answer_with] if answer_with else [])
    cal = calibration(session, models)
    found, total = estimate_collection(
        session, document_ids, question, client, cal, answer_with=answer_with, ordered=ordered
    )
    kind = WHOLE_TEXT if is_aggregation(question) else LOOKUP
    window = client.context_window
    local_ok = local_model_available()
    local_answer = (answer_with or client.model).startswith("local/")
    speed_cache: dict[str, Speed] = {}
    options: list[Option] = []
    for name in COLLECTION_STRATEGIES:
        option = _new_option(name, quality(name, kind, total, window, 0, local_answer=local_answer), local_ok)
        options.append(option)
        estimate = found.get(name)
        if not isinstance(estimate, Estimate):
            option.excluded = option.excluded or str(estimate)
            continue
        _fill(option, estimate, session, client.model, speed_cache, caps)
    chosen, note = choose(options, kind=kind, hosted_model=not runs_in_process(client.model), stay_local=stay)
    if strategy == registry.AUTO:
        reason = _explain(chosen, note, kind, total, window).replace("the document", "the collection", 1)
        name = chosen.strategy
    else:
        name, reason = strategy, f"chosen by the caller (auto would pick {chosen.strategy})"
    return Plan(name, reason, kind, client.model, total, window, caps, stay, all(priced(m) for m in models), options)
