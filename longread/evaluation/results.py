"""The results file of an evaluation run: one JSON line per finished (suite, item, strategy, model).

Appending a line per item makes a run resumable at any point: a new run reads the file and skips
every key that already has a result without an error (failed items are tried again).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

Key = tuple[str, str, str, str]


def record_key(record: dict[str, Any]) -> Key:
    return (str(record["suite"]), str(record["item_id"]), str(record["strategy"]), str(record["model"]))


class ResultStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[Key, dict[str, Any]] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8") as handle:
                for line in handle:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut off by a crash: that item runs again
                        continue
                    self._records[record_key(record)] = record

    def done(self, key: Key) -> bool:
        record = self._records.get(key)
        return record is not None and not record.get("error")

    def add(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
            self._records[record_key(record)] = record

    def records(self) -> list[dict[str, Any]]:
        """The latest record per key."""
        with self._lock:
            return list(self._records.values())
