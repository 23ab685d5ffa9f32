"""`longread` command line: ask questions of and summarise long documents on the embedded defaults."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from longread import engine
from longread.agents import registry
from longread.agents.base import ProgressFn
from longread.evaluation.cli import eval_command
from longread.ingest import IngestError
from longread.llm import LLMError, Usage
from longread.storage.db import session_scope
from longread.storage.models import Answer, Document

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Read documents longer than any context window.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

QUOTE_CHARS = 400


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressFn]:
    """A progress bar on stderr showing the stage and done/total."""
    if not enabled:
        yield lambda _stage, _done, _total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        yield update


def _load(session: Any, source: str) -> Document:
    path = Path(source)
    if path.exists():
        document, _ = engine.ingest_file(session, path)
        return document
    document = engine.find_document(session, source)
    if document is None:
        fail(f"{source}: no such file or stored document id")
    assert document is not None
    return document


def answer_payload(answer: Answer, document: Document) -> dict[str, Any]:
    return {
        "document_id": document.id,
        "filename": document.filename,
        "question": answer.question,
        "answer": answer.answer,
        "strategy": answer.strategy,
        "strategy_reason": answer.strategy_reason,
        "model": answer.model,
        "citations": answer.citations,
        "dropped_citations": answer.dropped_citations,
        "trace": answer.trace,
        **Usage.of(answer).as_dict(),
        "latency_s": answer.latency_s,
    }


def _print(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    out.print(payload["answer"], highlight=False)
    out.print(f"\n[bold]strategy:[/] {payload['strategy']} — {payload['strategy_reason']}", highlight=False)
    if payload["citations"]:
        out.print("[bold]evidence:[/]")
    for c in payload["citations"]:
        quote = c["quote"] if len(c["quote"]) <= QUOTE_CHARS else c["quote"][:QUOTE_CHARS] + "…"
        out.print(
            f'  [{c["n"]}] {c["label"]} (segment {c["segment_id"]}, chars {c["start"]}–{c["end"]}): "{quote}"',
            highlight=False,
        )
    if not payload["citations"]:
        out.print("[yellow]no evidence passage could be verified for this answer[/]")
    out.print(
        f"[dim]{payload['llm_calls']} LLM calls ({payload['cached_calls']} cached), "
        f"{payload['prompt_tokens']}+{payload['completion_tokens']} tokens, ${payload['cost_usd']:.4f}, "
        f"{payload['latency_s']:.1f}s[/]",
        highlight=False,
    )


def _run(action: Any, as_json: bool, quiet: bool) -> None:
    try:
        with session_scope() as session, progress_bar(not quiet and not as_json and err.is_terminal) as progress:
            payload = action(session, progress)
    except IngestError as exc:
        fail(f"{exc.filename}: {exc.reason}")
    except LLMError as exc:
        fail(f"model call failed: {exc}", code=3)
    except ValueError as exc:
        fail(str(exc))
    _print(payload, as_json)


def _check_strategy(check: Any, name: str) -> None:
    """Refuse an unknown strategy before any file is read or stored."""
    try:
        check(name)
    except registry.UnknownStrategy as exc:
        fail(str(exc))


@app.command()
def ask(
    source: Annotated[str, typer.Argument(help="A file (txt, md, html, pdf, docx, epub) or a stored document id.")],
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    strategy: Annotated[str, typer.Option(help=f"How to read: {', '.join(registry.question_choices())}.")] = "auto",
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    answer_with: Annotated[
        str | None, typer.Option("--answer-with", help="Model that answers from attention-selected evidence.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Answer a question about a document, citing the passages the answer rests on."""
    _check_strategy(registry.check_question_strategy, strategy)

    def action(session: Any, progress: ProgressFn) -> dict[str, Any]:
        document = _load(session, source)
        answer = engine.ask(
            session,
            document,
            question,
            strategy=strategy,
            model=model,
            progress=progress,
            answer_with=answer_with,
        )
        return answer_payload(answer, document)

    _run(action, as_json, quiet)


@app.command()
def summarize(
    source: Annotated[str, typer.Argument(help="A file or a stored document id.")],
    strategy: Annotated[str, typer.Option(help=f"How to read: {', '.join(registry.summary_choices())}.")] = "tree",
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Summarise a whole document."""
    _check_strategy(registry.check_summary_strategy, strategy)

    def action(session: Any, progress: ProgressFn) -> dict[str, Any]:
        document = _load(session, source)
        answer = engine.summarize(session, document, strategy=strategy, model=model, progress=progress)
        return answer_payload(answer, document)

    _run(action, as_json, quiet)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="The file to store.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Store a document and print its id (the same content always gets the same id)."""
    try:
        with session_scope() as session:
            document, created = engine.ingest_file(session, path)
    except IngestError as exc:
        fail(f"{exc.filename}: {exc.reason}")
    payload = {
        "document_id": document.id,
        "filename": document.filename,
        "tokens": document.n_tokens,
        "created": created,
    }
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        out.print(
            f"{document.id}  {document.filename}  {document.n_tokens} tokens{'' if created else ' (already stored)'}"
        )


app.command("eval")(eval_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
