"""Attention scans under way, saved chunk by chunk so a job restarted on another worker resumes its scan.

A scan of the local model's attention reads a document chunk after chunk, each chunk scored with the
units carried from the ones before; on CPU a chunk costs seconds. `ScanCheckpoints` keeps one row per
pass of a reading (`AttentionScan`), rewritten after each chunk with what the next chunk needs, and
removes the reading's rows once it has finished.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from longread.storage.db import rows_changed
from longread.storage.models import AttentionScan, utcnow


class ScanCheckpoints:
    """The saved passes of one reading (`run_key`) of a document, on the reading's own session.

    The session is the engine's: on SQLite a second connection would wait on its open write transaction.
    """

    def __init__(self, session: Session, document_id: str, run_key: str) -> None:
        self.session, self.document_id, self.run_key = session, document_id, run_key

    def _row(self, pass_key: str) -> AttentionScan | None:
        query = select(AttentionScan).where(AttentionScan.run_key == self.run_key, AttentionScan.pass_key == pass_key)
        return self.session.exec(query).first()

    def load(self, pass_key: str) -> tuple[int, dict[str, Any]] | None:
        """(next chunk, state) of a pass saved earlier, or None."""
        row = self._row(pass_key)
        if row is None:
            return None
        return row.next_chunk, dict(row.state)

    def save(self, pass_key: str, next_chunk: int, total: int, state: dict[str, Any]) -> None:
        """Keep the pass's state after `next_chunk` chunks; a save never moves a pass backwards."""
        values: dict[str, Any] = {"next_chunk": next_chunk, "total": total, "state": state, "updated_at": utcnow()}
        result = self.session.execute(
            update(AttentionScan)
            .where(
                col(AttentionScan.run_key) == self.run_key,
                col(AttentionScan.pass_key) == pass_key,
                col(AttentionScan.next_chunk) < next_chunk,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()
        if rows_changed(result) or self._row(pass_key) is not None:
            return
        self.session.add(AttentionScan(document_id=self.document_id, run_key=self.run_key, pass_key=pass_key, **values))
        try:
            self.session.commit()
        except IntegrityError:  # another reading of the same question saved this pass first
            self.session.rollback()

    def clear(self) -> None:
        """Forget the reading's passes (it finished)."""
        self.session.execute(delete(AttentionScan).where(col(AttentionScan.run_key) == self.run_key))
        self.session.commit()
