"""The ingest job: the API stored the parsed text; the worker segments it for the default model."""

from __future__ import annotations

from sqlmodel import Session

from longread.agents.segments import ensure_segments
from longread.config import get_settings
from longread.storage import jobs
from longread.storage.models import Document, Job
from longread.workers.celery_app import app
from longread.workers.tasks.base import run_job


def ingest_body(session: Session, job: Job) -> str | None:
    document = session.get(Document, job.document_id)
    if document is None:
        raise LookupError(f"document {job.document_id} no longer exists")
    progress = jobs.progress_callback(session, job)
    progress("segmenting", 0, 1)
    # Segments are what every strategy reads and cites; computing them here keeps the first
    # question from paying for a million-token segmentation.
    segments = ensure_segments(session, document, str(job.params.get("model") or get_settings().LLM))
    progress(f"segmented into {len(segments)} passages", 1, 1)
    return document.id


@app.task(bind=True, name="longread.workers.tasks.ingest.ingest_task")
def ingest_task(self, job_id: str) -> str:
    """Segment an uploaded document (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, ingest_body)
