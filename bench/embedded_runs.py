"""Set-up shared by the benches that run Longread in their own process on the embedded database.

Each such bench stores its documents in a fresh SQLite database (or one given with `--data-dir`, to keep
or reuse it), never in whatever `LONGREAD_DATABASE_URL` points at; the books benches also read the same
books folder options as `longread eval books`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def add_books_arguments(parser: argparse.ArgumentParser) -> None:
    """`--books`, `--limit` and `--data-dir`, as the books benches take them."""
    parser.add_argument("--books", type=Path, default=None, help="books folder (texts/ and questions.json)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions only")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the SQLite database goes")


def use_embedded_database(data_dir: Path | None, prefix: str) -> Path:
    """Point this process at a SQLite database in `data_dir` (a new temporary folder when None).

    Call before anything reads the settings: they are read once per process.
    """
    folder = data_dir or Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["LONGREAD_DATA_DIR"] = str(folder)
    os.environ.pop("LONGREAD_DATABASE_URL", None)
    return folder
