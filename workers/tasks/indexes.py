"""Index jobs: a document's retrieval index, built as it joins a collection (one job per document).

A question over the collection then finds every index stored, and adding a document to a built
collection costs that document's index only.
"""

from __future__ import annotations

from sqlmodel import Session

from longread import collection_reading
from longread.llm import Usage
from longread.storage import jobs
from longread.storage.models import Job
from longread.workers.celery_app import app
from longread.workers.dispatch import job_model
from longread.workers.tasks.base import run_job


def index_body(session: Session, job: Job) -> str | None:
    """Build the job's document's index (no model call); the result is the document id."""
    if job.document_id is None:
        raise LookupError("an index job names its document")
    progress = jobs.progress_callback(session, job, Usage())
    done = collection_reading.index_members(session, [job.document_id], model=job_model(job), progress=progress)
    if not done:
        raise LookupError(f"document {job.document_id} no longer exists")
    return job.document_id


@app.task(bind=True, name="longread.workers.tasks.indexes.build_index_task")
def build_index_task(self, job_id: str) -> str:
    """Build a document's retrieval index (entry task; the sweeper re-sends it to resume)."""
    return run_job(job_id, self.request.id, index_body)
