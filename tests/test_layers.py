"""The import graph points only down, and no two modules import each other (directly or round a loop).

Layers, bottom to top: core (config, tokens, ingest, llm, ...) -> storage -> strategies (agents) ->
engine -> entry points (cli, evaluation, workers, api, the MCP server). A module may import its own layer
and the layers below. Among the entry points, the CLI may use the evaluation's command and the MCP server,
the API reaches the workers only through `workers.dispatch` and shares the MCP server's tool definitions, and
nothing else crosses. Every import counts, those inside functions too: a lazy import hides an edge from the
interpreter at start-up, not from the design.

Modules are read with `ast`, not imported, so this runs in a fraction of a second and sees modules whose
optional dependencies are not installed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "longread"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "longread",
            "longread.config",
            "longread.tokens",
            "longread.ingest",
            "longread.llm",
            "longread.local_model",
            "longread.progress",
            "longread.failures",
            "longread.logs",
            "longread.ticker",
            "longread.redaction",
            "longread.prompts",
        ),
    ),
    ("storage", ("longread.storage",)),
    ("strategies", ("longread.agents",)),
    ("engine", ("longread.engine", "longread.conversation", "longread.collection_reading")),
    ("entry points", ("longread.cli", "longread.evaluation", "longread.workers", "longread.api", "longread.mcp_tools")),
    ("test helpers", ("longread.testing",)),
]
"""Each layer names module prefixes; a module belongs to the layer of its longest matching prefix.

`longread` itself names only the package's `__init__`: a new module under longread/ gets no layer until
it is given one here, so nobody adds a layer by accident."""

ENTRY_POINT_PEERS = {
    "longread.cli": ("longread.evaluation.cli", "longread.mcp_tools"),
    "longread.api": ("longread.workers.dispatch", "longread.mcp_tools"),
    "longread.evaluation": (),
    "longread.workers": (),
    "longread.mcp_tools": (),
}
"""What an entry point may import from the other entry points (module prefixes)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_files(folder: Path) -> Iterator[Path]:
    """Every .py file under `folder`, following the symlinked top-level folders as the installed package does."""
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__pycache__")):
            continue
        if path.is_dir():
            if (path / "__init__.py").exists() or path.name in {"versions"}:
                yield from _python_files(path)
        elif path.suffix == ".py":
            yield path


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in _python_files(PACKAGE)}


def _resolve(name: str) -> str | None:
    """The longread module an imported name lands in (a package when the name is an attribute of it)."""
    known = modules()
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from pkg import mod` imports pkg.mod; `from pkg import name` imports pkg itself.
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in modules() else base), node.lineno


@cache
def edges() -> dict[str, dict[str, int]]:
    """module -> {imported longread module: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules().items():
        targets: dict[str, int] = {}
        for name, line in _imported_names(module, path):
            target = _resolve(name) if name.startswith("longread") else None
            if target and target != module:
                targets.setdefault(target, line)
        graph[module] = targets
    return graph


def _prefix_of(module: str, prefixes: tuple[str, ...]) -> str | None:
    matches = [p for p in prefixes if module == p or (p != "longread" and module.startswith(p + "."))]
    return max(matches, key=len) if matches else None


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        prefix = _prefix_of(module, prefixes)
        if prefix is not None and (best is None or len(prefix) > best[0]):
            best = (len(prefix), index)
    return None if best is None else best[1]


def _entry_point(module: str) -> str | None:
    return _prefix_of(module, tuple(ENTRY_POINT_PEERS))


def test_the_scan_sees_every_layer() -> None:
    """Guards the test itself: the symlinked folders are followed and their imports are read."""
    found = modules()
    for name in ("longread.agents.registry", "longread.storage.db", "longread.workers.dispatch", "longread.api.main"):
        assert name in found
    assert "longread.storage.db" in edges()["longread.storage.jobs"]
    assert "longread.agents.base" in edges()["longread.engine"]


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, f"assign these modules a layer in tests/test_layers.py LAYERS: {missing}"


def test_imports_point_only_down() -> None:
    upward = []
    for module, targets in edges().items():
        own = layer_of(module)
        for target, line in targets.items():
            theirs = layer_of(target)
            if own is None or theirs is None:
                continue
            if theirs > own:
                upward.append(
                    f"{modules()[module].relative_to(ROOT)}:{line} {module} ({LAYERS[own][0]}) imports "
                    f"{target} ({LAYERS[theirs][0]})"
                )
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_entry_points_cross_only_where_allowed() -> None:
    crossing = []
    for module, targets in edges().items():
        mine = _entry_point(module)
        if mine is None:
            continue
        for target, line in targets.items():
            theirs = _entry_point(target)
            if theirs is None or theirs == mine:
                continue
            if _prefix_of(target, ENTRY_POINT_PEERS[mine]) is None:
                crossing.append(f"{modules()[module].relative_to(ROOT)}:{line} {module} imports {target}")
    assert not crossing, "entry points reaching into each other:\n" + "\n".join(crossing)


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = edges()
    cycles = _cycles(graph)
    details = []
    for component in cycles:
        members = set(component)
        links = [f"  {a} -> {b} (line {graph[a][b]})" for a in component for b in graph[a] if b in members]
        details.append(" / ".join(component) + "\n" + "\n".join(links))
    assert not cycles, "import cycles:\n" + "\n".join(details)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


@pytest.mark.parametrize(("importer", "imported"), [("tests", "bench"), ("bench", "tests")])
def test_tests_and_benchmarks_do_not_import_each_other(importer: str, imported: str) -> None:
    """Shared helpers live in longread.testing; the two trees stay independent."""
    offending = []
    for path in sorted((ROOT / importer).rglob("*.py")):
        for name, line in _imported_names(importer, path):
            if name == imported or name.startswith(imported + "."):
                offending.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not offending, "\n".join(offending)
