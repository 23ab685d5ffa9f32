"""Running a suite through every requested strategy, the way the service would answer.

tree, chain, attention and auto go through `longread.engine.ask` / `summarize` (stored documents,
summary trees, chain steps and checked citations, in the evaluation's own database); full, bm25 and
dense go through `agents.baselines` over the same stored segments, and their citations are checked
the same way. Model calls are cached by the LLM layer, so a repeated run costs nothing new; results
are appended per item, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from longread.agents import registry
from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.results import ResultStore
from longread.evaluation.scoring import parse_verdict
from longread.llm import Usage
from longread.storage.cache import stored_client

STRATEGIES = (*registry.names(), registry.AUTO)
"""Every strategy, in report order (`auto` last)."""
BASELINES = ("full", "bm25", "dense")
"""Strategies that can also run retrieval-only (what they would show the model, without asking it)."""
SUMMARY_STRATEGIES = tuple(name for name in STRATEGIES if name in registry.summary_choices())
JUDGED_SUITES = ("aa-lcr",)
_TEXT_LIMIT = 2000


@dataclass
class RunSummary:
    planned: int = 0
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    not_applicable: list[str] = field(default_factory=list)


def parse_strategies(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        raise ValueError(f"unknown strategies {unknown} (choose from {', '.join(STRATEGIES)})")
    return list(dict.fromkeys(names))


def make_judge(model: str, usage: Usage) -> Judge:
    """AA-LCR's judge: the dataset's CORRECT/INCORRECT rubric; an unparseable reply counts as incorrect."""
    client = stored_client(model, usage)

    def judge(question: str, official: str, candidate: str) -> bool:
        reply = client.complete(
            "eval_judge", max_tokens=16, question=question, official_answer=official, candidate_answer=candidate
        )
        return parse_verdict(reply.text) is True

    return judge


def _run_baseline(session: Any, document: Any, item: EvalItem, strategy: str, model: str, usage: Usage) -> Outcome:
    from longread.agents import baselines
    from longread.agents.citations import check_citations
    from longread.agents.segments import ensure_segments

    client = stored_client(model, usage)
    segments = ensure_segments(session, document, client.model)
    if item.question is None:
        draft = baselines.summarize_full(document.text, client, segments=segments)
    else:
        answer = {"full": baselines.answer_full, "bm25": baselines.answer_bm25, "dense": baselines.answer_dense}
        draft = answer[strategy](document.text, item.question, client, segments=segments)
    checked = check_citations(draft, document.text, segments, item.question, page_starts=document.page_starts)
    return Outcome(checked.answer, checked.citations, read=[(e.start, e.end) for e in draft.read])


def _retrieve_only(session: Any, document: Any, item: EvalItem, strategy: str, model: str) -> Outcome:
    """What a baseline would show the model, without asking it: retrieval recall at no model cost."""
    from longread.agents import baselines
    from longread.agents.segments import ensure_segments

    if item.question is None:
        raise ValueError("retrieval-only runs need questions; summary suites have none")
    client = stored_client(model)
    segments = ensure_segments(session, document, client.model)
    if strategy == "full":
        budget = baselines.full_context_budget(client, item.question)
        shown, _ = baselines.fill_window(document.text, client.counter, segments, budget)
    else:
        finder = baselines.bm25_evidence if strategy == "bm25" else baselines.dense_evidence
        shown = finder(document.text, item.question, counter=client.counter, segments=segments)
    return Outcome("", [], read=[(e.start, e.end) for e in shown])


def _run_engine(
    session: Any, document: Any, item: EvalItem, strategy: str, model: str, usage: Usage
) -> tuple[Outcome, str]:
    from longread import engine

    if item.question is None:
        row = engine.summarize(session, document, strategy=strategy, model=model, usage=usage)
    else:
        row = engine.ask(session, document, item.question, strategy=strategy, model=model, usage=usage)
    return Outcome(row.answer, list(row.citations)), row.strategy


def _answer_and_score(
    session: Any,
    suite: Suite,
    document: Any,
    item: EvalItem,
    strategy: str,
    model: str,
    usage: Usage,
    judge: Judge | None,
    retrieval_only: bool,
    started: float,
) -> dict[str, Any]:
    """The record's answer fields and scores; `wall_s` is the strategy's time, before any judging."""
    if retrieval_only:
        outcome = _retrieve_only(session, document, item, strategy, model)
        return {
            "answer": "",
            "wall_s": time.monotonic() - started,
            "citations": 0,
            "strategy_used": strategy,
            "error": None,
            "accuracy": None,
            "evidence_recall": None,
            "retrieval_recall": suite.retrieval_recall(item, outcome.read or [], document.text),
        }
    used = strategy
    if strategy in BASELINES:
        outcome = _run_baseline(session, document, item, strategy, model, usage)
    else:
        outcome, used = _run_engine(session, document, item, strategy, model, usage)
    wall = time.monotonic() - started
    scores = suite.score(item, outcome, document.text, judge)
    return {
        "wall_s": wall,
        "answer": outcome.answer[:_TEXT_LIMIT],
        "citations": len(outcome.citations),
        "strategy_used": used,
        "error": None,
        "retrieval_recall": suite.retrieval_recall(item, outcome.read, document.text) if outcome.read else None,
        **scores,
    }


def run_item(
    session: Any,
    suite: Suite,
    item: EvalItem,
    strategy: str,
    model: str,
    judge: Judge | None,
    judge_usage: Usage,
    *,
    retrieval_only: bool = False,
) -> dict[str, Any]:
    """One (item, strategy): answer, score and account. Errors are recorded, not raised.

    With `retrieval_only` (baselines only) nothing is answered: the record holds the retrieval recall
    of what would have been shown, under the strategy name `<strategy>-retrieval`.
    """
    from longread import engine

    record: dict[str, Any] = {
        "suite": suite.name,
        "item_id": item.item_id,
        "strategy": f"{strategy}-retrieval" if retrieval_only else strategy,
        "model": model,
        "task": item.task,
        "length": item.length,
        "doc_key": item.doc_key,
        "question": (item.question or "")[-_TEXT_LIMIT:],
        "references": [r[:_TEXT_LIMIT] for r in item.references],
        "meta": {k: v for k, v in item.meta.items() if isinstance(v, str | int | float | bool)},
    }
    usage = Usage()
    judge_calls_before = judge_usage.calls + judge_usage.cached_calls
    started = time.monotonic()
    try:
        filename, text = suite.document(item)
        document, _ = engine.store_text(session, filename=filename, text=text)
        record.update(
            _answer_and_score(session, suite, document, item, strategy, model, usage, judge, retrieval_only, started)
        )
        wall = record["wall_s"]
    except Exception as exc:  # noqa: BLE001 - one failing item must not stop a long run
        session.rollback()
        wall = time.monotonic() - started
        record.update(error=f"{type(exc).__name__}: {exc}"[:_TEXT_LIMIT], accuracy=None, evidence_recall=None)
    record.update(
        **usage.as_dict(),
        wall_s=round(wall, 3),
        judge_calls=judge_usage.calls + judge_usage.cached_calls - judge_calls_before,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return record


def run_eval(
    suite: Suite,
    strategies: list[str],
    model: str,
    out_dir: Path,
    *,
    limit: int | None = None,
    judge_model: str | None = None,
    workers: int = 1,
    retrieval_only: bool = False,
    on_planned: Callable[[int], None] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Run every (item, strategy) not yet finished and append its record to out_dir/results.jsonl.

    Items sharing a document run in order on one worker (so a summary tree is built once); with
    `workers` > 1 different documents run in parallel, which suits hosted models.
    """
    from longread.storage.db import session_scope

    summary = RunSummary()
    if retrieval_only and any(s not in BASELINES for s in strategies):
        raise ValueError(f"retrieval-only runs take the baselines only ({', '.join(BASELINES)})")
    if suite.kind == "summary":
        summary.not_applicable = [s for s in strategies if s not in SUMMARY_STRATEGIES]
        strategies = [s for s in strategies if s in SUMMARY_STRATEGIES]
    store = ResultStore(Path(out_dir) / "results.jsonl")
    items = suite.items(limit)
    groups: dict[str, list[tuple[EvalItem, str]]] = {}
    for item in items:
        for strategy in strategies:
            summary.planned += 1
            label = f"{strategy}-retrieval" if retrieval_only else strategy
            if store.done((suite.name, item.item_id, label, model)):
                summary.skipped += 1
                continue
            groups.setdefault(item.doc_key, []).append((item, strategy))
    if on_planned is not None:
        on_planned(sum(len(g) for g in groups.values()))
    judge_usage = Usage()
    judged = suite.name in JUDGED_SUITES and not retrieval_only
    judge = make_judge(judge_model or model, judge_usage) if judged else None

    lock = threading.Lock()

    def run_group(work: list[tuple[EvalItem, str]]) -> None:
        with session_scope() as session:
            for item, strategy in work:
                record = run_item(
                    session, suite, item, strategy, model, judge, judge_usage, retrieval_only=retrieval_only
                )
                if judge is not None:
                    record["judge_model"] = judge_model or model
                store.add(record)
                with lock:
                    if record["error"]:
                        summary.failed += 1
                    else:
                        summary.finished += 1
                    if on_record is not None:
                        on_record(record)

    if workers <= 1:
        for work in groups.values():
            run_group(work)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(run_group, work) for work in groups.values()]:
                future.result()
    return summary
