"""`longread` command line: ask questions of and summarise long documents on the embedded defaults."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from longread import collection_reading, engine
from longread.agents import registry
from longread.agents.base import ProgressFn
from longread.agents.citations import answer_fields
from longread.agents.planner import plan_question
from longread.conversation import NoSuchThread, OtherSubject, join_thread
from longread.evaluation.cli import eval_command
from longread.ingest import IngestError
from longread.llm import LLMClient, LLMError
from longread.llm.answer_text import after_restart
from longread.llm.usage import Budget
from longread.storage import collections as stored_collections
from longread.storage.db import session_scope
from longread.storage.models import Answer, Document

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Read documents longer than any context window.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

QUOTE_CHARS = 400


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


class ProgressDisplay:
    """The progress bar on stderr (or nothing): `update` is the engine's progress callback; `stop` takes the
    bar off the screen for good, so streamed answer text on stdout is not drawn over."""

    def __init__(self, bar: Progress | None = None) -> None:
        self.bar = bar
        self.task = bar.add_task("starting", total=None) if bar is not None else None

    def update(self, stage: str, done: int, total: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=stage, completed=done, total=total or None)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressDisplay]:
    """A progress bar on stderr showing the stage and done/total."""
    if not enabled:
        yield ProgressDisplay()
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield ProgressDisplay(bar)


class AnswerStream:
    """The final answering call's text, printed to stdout as the model writes it (not with --json).

    The first piece takes the progress bar away. The stored answer may differ from what was written (its
    unverifiable citations are removed), so `_print` shows the checked answer again only when it does.
    A reader that starts its answer over (a second hop) has the new answer printed after a blank line;
    `text` is then the new answer's.
    """

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.before_first_piece: Callable[[], None] = lambda: None

    def __call__(self, piece: str) -> None:
        piece, restart = after_restart(piece)
        if restart and self.text.strip():  # the reader started its answer over: the new one follows
            out.file.write("\n\n")
            self.pieces.clear()
        if not piece:
            return
        if not self.pieces:
            self.before_first_piece()
        self.pieces.append(piece)
        out.file.write(piece)
        out.file.flush()

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _load(session: Any, source: str) -> Document:
    path = Path(source)
    if path.exists():
        document, _ = engine.ingest_file(session, path)
        return document
    found = engine.find_document(session, source)
    if found is None:
        fail(f"{source}: no such file or stored document id")
    return found


def answer_payload(answer: Answer, document: Document) -> dict[str, Any]:
    return {
        "document_id": document.id,
        "filename": document.filename,
        **answer_fields(answer),
        "plan": answer.plan,
    }


def _print(payload: dict[str, Any], as_json: bool, streamed: str = "") -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    if streamed:
        out.file.write("\n")
        if streamed.strip() != payload["answer"].strip():
            out.print("[dim]checked answer (unverifiable citations removed):[/]", highlight=False)
            out.print(payload["answer"], highlight=False, markup=False)
    else:
        out.print(payload["answer"], highlight=False)
    out.print(f"\n[bold]strategy:[/] {payload['strategy']} — {payload['strategy_reason']}", highlight=False)
    if payload.get("stopped_reason"):
        out.print(f"[bold yellow]stopped early:[/] {payload['stopped_reason']} (partial answer)", highlight=False)
    if payload["strategy"] == "shortlist":
        from longread.agents.shortlist.strategy import how_it_read

        read = how_it_read(payload.get("trace") or [])
        if read:
            out.print(f"[dim]how it read: {read}[/]", highlight=False)
    if payload["citations"]:
        out.print("[bold]evidence:[/]")
    for c in payload["citations"]:
        quote = c["quote"] if len(c["quote"]) <= QUOTE_CHARS else c["quote"][:QUOTE_CHARS] + "…"
        where = f"{c['filename']}, " if c.get("filename") else ""
        where += f"page {c['page']}, " if c.get("page") is not None else ""
        out.print(
            f'  [{c["n"]}] {where}{c["label"]} (segment {c["segment_id"]}, chars {c["start"]}–{c["end"]}): "{quote}"',
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
    chosen = _chosen_option(payload.get("plan"))
    if chosen is not None:
        out.print(
            f"[dim]estimated: {chosen['calls']} LLM calls, {chosen['prompt_tokens']}+{chosen['completion_tokens']} "
            f"tokens, ${chosen['cost_usd']:.4f}, {chosen['seconds']:.1f}s[/]",
            highlight=False,
        )


def _chosen_option(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    if not plan:
        return None
    return next((o for o in plan.get("options", []) if o["strategy"] == plan.get("strategy")), None)


def _run(action: Any, as_json: bool, quiet: bool, stream: AnswerStream | None = None) -> None:
    """Run `action(session, progress)` under the progress bar, then print its payload.

    With `stream`, the answer has been printed as it was written; the bar leaves at its first piece.
    """
    try:
        with session_scope() as session, progress_bar(not quiet and not as_json and err.is_terminal) as display:
            if stream is not None:
                stream.before_first_piece = display.stop
            payload = action(session, display.update)
    except IngestError as exc:
        fail(f"{exc.filename}: {exc.reason}")
    except LLMError as exc:
        fail(f"model call failed: {exc}", code=3)
    except ValueError as exc:
        fail(str(exc))
    _print(payload, as_json, stream.text if stream is not None else "")


MaxCost = Annotated[float | None, typer.Option("--max-cost", min=0.0, help="Stop the job before it spends more (USD).")]
MaxSeconds = Annotated[float | None, typer.Option("--max-seconds", min=0.0, help="Stop the job after this long.")]
MaxTokens = Annotated[
    int | None, typer.Option("--max-tokens", min=0, help="Stop the job before it uses more model tokens.")
]
StayLocal = Annotated[
    bool | None,
    typer.Option(
        "--stay-local/--no-stay-local",
        help="Let auto choose local-model strategies even when a hosted model would be much faster "
        "(default LONGREAD_STAY_LOCAL).",
    ),
]


def _caps(max_cost: float | None, max_seconds: float | None, max_tokens: int | None) -> Budget | None:
    """The job's caps; its clock starts now, so reading the file counts against --max-seconds."""
    budget = Budget(max_cost_usd=max_cost, max_seconds=max_seconds, max_tokens=max_tokens)
    return budget if budget.capped else None


def _check_strategy(check: Any, name: str) -> None:
    """Refuse an unknown strategy before any file is read or stored."""
    try:
        check(name)
    except registry.UnknownStrategy as exc:
        fail(str(exc))


@app.command()
def ask(
    source: Annotated[
        str,
        typer.Argument(
            help="A file (txt, md, html, pdf, docx, epub), a stored document id, or a folder (read as one collection)."
        ),
    ],
    question: Annotated[
        str | None, typer.Argument(help="The question to answer (with --collection, the only argument).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Ask across every document of this collection (name or id).")
    ] = None,
    strategy: Annotated[str, typer.Option(help=f"How to read: {', '.join(registry.question_choices())}.")] = "auto",
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    answer_with: Annotated[
        str | None, typer.Option("--answer-with", help="Model that answers from attention-selected evidence.")
    ] = None,
    order: Annotated[
        str | None,
        typer.Option(
            "--order",
            help="A collection's reading order for the chain: filenames or document ids, comma-separated "
            "(the rest follow in the collection's order).",
        ),
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            help="With --collection: continue this thread of the collection (its id; follow-ups are read with "
            "its recent turns), or `new` to start one. The answer shows the thread's id.",
        ),
    ] = None,
    max_cost: MaxCost = None,
    max_seconds: MaxSeconds = None,
    max_tokens: MaxTokens = None,
    stay_local: StayLocal = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Answer a question about a document, citing the passages the answer rests on.

    With caps, a job that reaches one stops cleanly and prints its best partial answer and the reason.
    A folder, or --collection, is read as one collection: passages are ranked across all its documents
    and every citation names its document.
    """
    caps = _caps(max_cost, max_seconds, max_tokens)
    if collection is not None or Path(source).is_dir():
        if collection is not None and question is not None:
            fail("with --collection, give only the question")
        ask_collection_command(
            folder=None if collection is not None else Path(source),
            collection=collection,
            question=source if collection is not None else (question or ""),
            strategy=strategy,
            model=model,
            answer_with=answer_with,
            caps=caps,
            as_json=as_json,
            quiet=quiet,
            order=[name.strip() for name in order.split(",") if name.strip()] if order else None,
            conversation=conversation,
        )
        return
    if conversation is not None:
        fail("--conversation continues a collection's thread: use it with --collection")
    if question is None:
        fail("give a question after the document")
    _check_strategy(registry.check_question_strategy, strategy)
    stream = None if as_json else AnswerStream()

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
            caps=caps,
            stay_local=stay_local,
            on_answer_text=stream,
        )
        return answer_payload(answer, document)

    _run(action, as_json, quiet, stream)


@app.command()
def summarize(
    source: Annotated[str, typer.Argument(help="A file or a stored document id.")],
    strategy: Annotated[str, typer.Option(help=f"How to read: {', '.join(registry.summary_choices())}.")] = "tree",
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    max_cost: MaxCost = None,
    max_seconds: MaxSeconds = None,
    max_tokens: MaxTokens = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Summarise a whole document."""
    _check_strategy(registry.check_summary_strategy, strategy)
    caps = _caps(max_cost, max_seconds, max_tokens)

    def action(session: Any, progress: ProgressFn) -> dict[str, Any]:
        document = _load(session, source)
        answer = engine.summarize(session, document, strategy=strategy, model=model, progress=progress, caps=caps)
        return answer_payload(answer, document)

    _run(action, as_json, quiet)


@app.command("plan")
def plan_command(
    source: Annotated[str, typer.Argument(help="A file or a stored document id (with --collection, the question).")],
    question: Annotated[str | None, typer.Argument(help="The question to plan for.")] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Plan the question over this collection (name or id).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="litellm model string; default LONGREAD_LLM.")] = None,
    answer_with: Annotated[
        str | None, typer.Option("--answer-with", help="Model that answers from locally selected evidence.")
    ] = None,
    max_cost: MaxCost = None,
    max_seconds: MaxSeconds = None,
    max_tokens: MaxTokens = None,
    stay_local: StayLocal = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Estimate every strategy for a question (calls, tokens, cost, seconds) and show what `auto` would pick.

    Nothing is read by a model: the estimates come from the document's structure, litellm's prices and
    the speeds measured on earlier runs.
    """
    caps = _caps(max_cost, max_seconds, max_tokens)
    if collection is not None:
        if question is not None:
            fail("with --collection, give only the question")
        question = source
    if question is None or not question.strip():
        fail("the question is empty")
    try:
        with session_scope() as session:
            if collection is not None:
                named = stored_collections.find_collection(session, collection)
                if named is None:
                    fail(f"{collection}: no such collection")
                if not stored_collections.member_ids(session, named.id):
                    fail(f"{collection}: the collection has no documents")
                planned = collection_reading.plan_collection(
                    session,
                    named,
                    registry.AUTO,
                    LLMClient(model).model,
                    question=question,
                    answer_with=answer_with,
                    caps=caps,
                )
                payload = {"filename": f"collection {named.name}", **planned}
                if as_json:
                    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
                    return
                _print_plan(payload)
                return
            document = _load(session, source)
            client = LLMClient(model)
            plan = plan_question(
                session, document, question.strip(), client, answer_with=answer_with, caps=caps, stay_local=stay_local
            )
            payload = {"document_id": document.id, "filename": document.filename, **plan.as_dict()}
    except IngestError as exc:
        fail(f"{exc.filename}: {exc.reason}")
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    _print_plan(payload)


def _print_plan(payload: dict[str, Any]) -> None:
    table = Table(title=f"{payload['filename']}: {payload['document_tokens']} tokens, {payload['model']}")
    for column in ("strategy", "calls", "tokens", "cost", "seconds", "quality", "fits"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for option in payload["options"]:
        tokens = option["prompt_tokens"] + option["completion_tokens"]
        if option["excluded"] and not option["calls"] and not option["seconds"]:
            fits = "—"
        elif option["fits"]:
            fits = "yes"
        else:
            fits = "no (" + ", ".join(option["over"]) + ")"
        cost = f"${option['cost_usd']:.4f}" if payload["priced"] else f"${option['cost_usd']:.4f}?"
        table.add_row(
            option["strategy"],
            str(option["calls"]),
            str(tokens),
            cost,
            f"{option['seconds']:.0f}",
            f"{option['quality']:.2f}",
            fits,
        )
    out.print(table)
    for option in payload["options"]:
        if option["excluded"]:
            out.print(f"[dim]{option['strategy']}: {option['excluded']}[/]", highlight=False)
    out.print(f"[bold]auto would read with {payload['strategy']}:[/] {payload['reason']}", highlight=False)
    if not payload["priced"]:
        out.print("[dim]? the model is not in litellm's price map: its cost is unknown[/]", highlight=False)


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


@app.command("mcp")
def mcp_command() -> None:
    """Serve Longread's tools to agents over the Model Context Protocol on stdin/stdout.

    Tools: list_documents, list_collections, ingest, ask, plan, get_text; answers carry their citations
    as structured content.
    """
    from longread.mcp_tools import serve_stdio

    serve_stdio()


collection_app = typer.Typer(no_args_is_help=True, help="Named sets of documents asked across at once.")
app.add_typer(collection_app, name="collection")

READABLE = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".epub"})


def _ingest_all(session: Any, paths: list[Path]) -> list[Document]:
    """Store each file (a folder's readable files, by name); a stored document id is taken as it is."""
    documents: list[Document] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in READABLE)
            if not files:
                fail(f"{path}: no readable files in this folder")
            documents.extend(engine.ingest_file(session, f)[0] for f in files)
        else:
            documents.append(_load(session, str(path)))
    return documents


@collection_app.command("create")
def collection_create(
    name: Annotated[str, typer.Argument(help="The collection's name.")],
    files: Annotated[list[Path], typer.Argument(help="Files, folders or stored document ids to put in it.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Store the files and make them one collection, or add them to the collection of that name."""
    try:
        with session_scope() as session:
            documents = _ingest_all(session, files)
            ids = [d.id for d in documents]
            found = stored_collections.gather_into(session, name, ids)
            members = stored_collections.members(session, found.id)
            payload = {
                "collection_id": found.id,
                "name": found.name,
                "documents": [
                    {"document_id": m.document_id, "filename": m.filename, "tokens": m.n_tokens} for m in members
                ],
            }
    except IngestError as exc:
        fail(f"{exc.filename}: {exc.reason}")
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    out.print(f"{payload['collection_id']}  {payload['name']}  {len(members)} documents", highlight=False)
    for m in members:
        out.print(f"  {m.document_id[:12]}  {m.filename}  {m.n_tokens} tokens", highlight=False)


@collection_app.command("list")
def collection_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The stored collections and how many documents each holds."""
    with session_scope() as session:
        rows = [
            {"collection_id": c.id, "name": c.name, "documents": n}
            for c, n in stored_collections.list_collections(session)
        ]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    if not rows:
        out.print("no collections yet: longread collection create NAME FILES...")
    for row in rows:
        out.print(f"{row['collection_id']}  {row['name']}  {row['documents']} documents", highlight=False)


def ask_collection_command(
    *,
    folder: Path | None,
    collection: str | None,
    question: str,
    strategy: str,
    model: str | None,
    answer_with: str | None,
    caps: Budget | None,
    as_json: bool,
    quiet: bool,
    order: list[str] | None = None,
    conversation: str | None = None,
) -> None:
    """`ask` over a collection: a named one, or a folder's files gathered into one named after the folder.

    `conversation`: a thread of the collection to continue (its id), or `new` to start one."""
    try:
        collection_reading.check_strategy(strategy)
    except ValueError as exc:
        fail(str(exc))
    if not question.strip():
        fail("the question is empty")

    stream = None if as_json else AnswerStream()

    def action(session: Any, progress: ProgressFn) -> dict[str, Any]:
        if folder is not None:
            ids = [d.id for d in _ingest_all(session, [folder])]
            found = stored_collections.gather_into(session, f"folder:{folder.resolve()}", ids)
        else:
            assert collection is not None
            named = stored_collections.find_collection(session, collection)
            if named is None:
                fail(f"{collection}: no such collection")
            found = named
        thread: str | None = None
        if conversation is not None:
            try:
                continued = None if conversation == "new" else conversation
                thread = join_thread(session, continued, question, tenant_id=found.tenant_id, collection_id=found.id).id
            except (NoSuchThread, OtherSubject) as exc:
                fail(str(exc))
        answer = collection_reading.ask_collection(
            session,
            found,
            question,
            strategy=strategy,
            model=model,
            answer_with=answer_with,
            progress=progress,
            caps=caps,
            conversation_id=thread,
            order=order,
            on_answer_text=stream,
        )
        return collection_reading.collection_answer_payload(answer, found)

    _run(action, as_json, quiet, stream)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
