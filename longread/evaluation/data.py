"""Locating benchmark files inside installed data packages, without importing those packages.

`importlib.util.find_spec` finds a package's folder without running its `__init__`; that matters for
`nvidia-lm-eval`, whose `lm_eval/__init__.py` imports a whole evaluation framework we do not install.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any


class EvalDataMissing(RuntimeError):
    """A benchmark's data package is not installed."""


INSTALL_HINT = "install the evaluation data with `bash .ci/install-eval-data.sh`"


def package_file(package: str, relative: str) -> Path:
    """Path of a file shipped inside an installed package (the package is not imported)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EvalDataMissing(f"package '{package}' is not installed; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise EvalDataMissing(f"{package}/{relative} is missing; {INSTALL_HINT}")
    return path


def read_json(package: str, relative: str) -> Any:
    with package_file(package, relative).open(encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(package: str, relative: str) -> list[dict[str, Any]]:
    with package_file(package, relative).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
