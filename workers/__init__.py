"""Celery workers: tasks, job-row state, the shared provider cap and the embedded broker."""
