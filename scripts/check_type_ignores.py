"""Fail when a `# type: ignore` in the longread package names no error code or gives no reason.

Every suppression must say which error it silences and why the code is right anyway, on the same line:
    value = thing()  # type: ignore[attr-defined]  # the library sets it at run time
Generated migrations are skipped. Run by `make check`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[^\]]+\])?(?P<rest>.*)$")


def offending(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):  # rglob does not follow links: scan each real folder once
        if "migrations/versions" in path.as_posix() or ".venv" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = IGNORE.search(line)
            if match is None:
                continue
            reason = match.group("rest").strip().lstrip("#").strip()
            if not match.group("code") or not reason:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def main() -> int:
    folders = [ROOT / name for name in ("longread", "agents", "api", "workers", "storage")]
    problems = [problem for folder in folders for problem in offending(folder)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} `# type: ignore` without an error code and a reason after it", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
