"""`longread eval SUITE`: the command function registered on the `longread` typer app."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from longread.config import get_settings
from longread.evaluation.runner import STRATEGIES

err = Console(stderr=True)

DEFAULT_STRATEGIES = ",".join(STRATEGIES)


def _ints(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    out = []
    for part in value.split(","):
        part = part.strip().lower()
        scale = 1024 if part.endswith("k") else 1
        try:
            out.append(int(part.rstrip("k")) * scale)
        except ValueError:
            raise typer.BadParameter(f"'{part}' is not a length like 4096 or 4k") from None
    return tuple(out)


def _floats(value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(p) for p in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a list of depths like 0,0.5,1") from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def use_data_dir(data_dir: Path) -> None:
    """Point this process's settings at the evaluation's own data folder and SQLite database.

    Settings come from the environment, so the evaluation sets its own values there before anything
    reads them; the service's database (and its documents) are never touched by a benchmark run.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["LONGREAD_DATA_DIR"] = str(data_dir)
    os.environ["LONGREAD_DATABASE_URL"] = f"sqlite:///{(data_dir / 'longread.db').resolve()}"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    get_settings.cache_clear()


def eval_command(
    suite: Annotated[str, typer.Argument(help="ruler, aa-lcr, doc2dial, aclsum, niah or books.")],
    strategies: Annotated[
        str, typer.Option(help="Comma-separated: full, bm25, dense, tree, chain, attention, auto.")
    ] = DEFAULT_STRATEGIES,
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="Judge for aa-lcr; default LONGREAD_EVAL_JUDGE_MODEL or --model."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Sample size: items per (task, length) cell for ruler/niah, first N items otherwise."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder; default reports/<suite>-<model>.")] = None,
    lengths: Annotated[str | None, typer.Option(help="ruler/niah context lengths, e.g. 4k,8k,16k,32k.")] = None,
    tasks: Annotated[str | None, typer.Option(help="ruler tasks (default: all 13).")] = None,
    haystack: Annotated[Path | None, typer.Option(help="niah haystack file (default: RULER's essays).")] = None,
    depths: Annotated[str | None, typer.Option(help="niah needle depths, e.g. 0,0.25,0.5,0.75,1.")] = None,
    split: Annotated[str, typer.Option(help="aclsum split: train, val or test.")] = "test",
    books: Annotated[
        Path | None,
        typer.Option(help="books suite folder (texts/ + questions.json); default LONGREAD_BOOKS_DIR or shared/bookqa."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Documents run in parallel (hosted models); 1 for local.")] = 1,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The evaluation's own data folder; default DATA_DIR/eval.")
    ] = None,
    report_only: Annotated[bool, typer.Option("--report-only", help="Rewrite the report from results.jsonl.")] = False,
    retrieval_only: Annotated[
        bool,
        typer.Option("--retrieval-only", help="full/bm25/dense: score what they would show, ask no model."),
    ] = False,
    docs: Annotated[
        Path | None, typer.Option(help="Also publish the report to this Markdown file, charts in its img/.")
    ] = None,
    readme: Annotated[
        Path | None,
        typer.Option(help="Also put the headline table and chart into this page's marked section (needs --docs)."),
    ] = None,
    regenerate_with: Annotated[
        str | None,
        typer.Option(
            help="Command shown in published sections (a script running several commands); default: this one."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a benchmark suite through the chosen strategies and write a report folder (resumable)."""
    from longread.evaluation.report import write_report
    from longread.evaluation.runner import parse_strategies, run_eval
    from longread.evaluation.suites import make_suite

    settings = get_settings()
    model = model or settings.LLM
    out = out or Path("reports") / f"{_slug(suite)}-{_slug(model)}"
    if readme is not None and docs is None:
        err.print("[bold red]error:[/] --readme needs --docs (the full tables and charts it links to)", highlight=False)
        raise typer.Exit(2)
    if report_only:
        _report(write_report, out, docs, readme, regenerate_with)
        return
    try:
        chosen = parse_strategies(strategies)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--strategies") from None
    if workers < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--workers")
    use_data_dir(data_dir or settings.DATA_DIR / "eval")
    judge = judge_model or get_settings().EVAL_JUDGE_MODEL
    from longread.evaluation.data import EvalDataMissing
    from longread.evaluation.suites.ruler import RulerGenerationError

    try:
        bench = make_suite(
            suite,
            cache_dir=get_settings().DATA_DIR,
            lengths=_ints(lengths),
            tasks=tuple(t.strip() for t in tasks.split(",")) if tasks else None,
            haystack=haystack,
            depths=_floats(depths),
            split=split,
            books=books,
        )
        with _progress(quiet) as (on_planned, on_record):
            result = run_eval(
                bench, chosen, model, out, limit=limit, judge_model=judge, workers=workers, retrieval_only=retrieval_only,
                on_planned=on_planned, on_record=on_record,
            )  # fmt: skip
    except (ValueError, EvalDataMissing, RulerGenerationError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if result.not_applicable:
        err.print(f"[yellow]{suite} is a summary suite; skipped {', '.join(result.not_applicable)}[/]")
    err.print(
        f"{result.finished} finished, {result.skipped} already done, {result.failed} failed (of {result.planned})",
        highlight=False,
    )
    _report(write_report, out, docs, readme, regenerate_with)
    if result.failed:
        raise typer.Exit(1)


def _report(
    write_report: Any, out: Path, docs: Path | None, readme: Path | None = None, command: str | None = None
) -> None:
    from longread.evaluation.report import publish_report, publish_summary

    try:
        report = write_report(out)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    typer.echo(str(report))
    if docs is not None:
        # the run command (a resumed run rewrites the same report); --report-only is how it was published
        if command is None:
            args = [shlex.quote(a) for a in sys.argv[1:] if a != "--report-only"]
            command = " ".join([*_changed_settings(), "longread", *args])
        typer.echo(str(publish_report(out, docs, command)))
        if readme is not None:
            try:
                typer.echo(str(publish_summary(out, readme, docs, command)))
            except ValueError as exc:
                err.print(f"[bold red]error:[/] {exc}", highlight=False)
                raise typer.Exit(2) from None


_RESULT_SETTINGS = (
    "LLM_MAX_OUTPUT_TOKENS",
    "LLM_CONTEXT_WINDOW",
    "EVIDENCE_TOKENS",
    "RETRIEVAL_UNIT_TOKENS",
    "SEGMENT_TOKENS",
    "TREE_FANOUT",
    "CHAIN_CHUNK_TOKENS",
    "ATTENTION_EVIDENCE_TOKENS",
)


def _changed_settings() -> list[str]:
    """`LONGREAD_X=value` for the settings that change results and differ from their defaults."""
    settings = get_settings()
    fields = type(settings).model_fields
    return [
        f"LONGREAD_{name}={getattr(settings, name)}"
        for name in _RESULT_SETTINGS
        if name in fields and getattr(settings, name) != fields[name].default
    ]


class _progress:
    """A rich progress bar over the (item, strategy) pairs still to run, with the running accuracy."""

    def __init__(self, quiet: bool) -> None:
        self.log = not quiet and not err.is_terminal  # one line per result when stderr is a file
        self.quiet = quiet or not err.is_terminal
        self.bar: Progress | None = None
        self.task: Any = None
        self.scores: list[float] = []

    def __enter__(self) -> tuple[Any, Any]:
        if not self.quiet:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TimeRemainingColumn(), console=err,
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task("evaluating", total=None)
        return self.on_planned, self.on_record

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def on_planned(self, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def on_record(self, record: dict[str, Any]) -> None:
        if record.get("accuracy") is not None:
            self.scores.append(float(record["accuracy"]))
        if self.bar is not None:
            running = f" · acc {100 * sum(self.scores) / len(self.scores):.0f}%" if self.scores else ""
            self.bar.update(self.task, advance=1, description=f"{record['strategy']} {record['item_id']}{running}")
        elif self.log:
            accuracy = record.get("accuracy")
            shown = "error" if record.get("error") else f"{100 * accuracy:.0f}%" if accuracy is not None else "—"
            err.print(f"{record['strategy']} {record['item_id']} {shown} {record['wall_s']:.1f}s", highlight=False)
