"""Celery tasks. Bodies stay thin: they claim the job row, call the engine, and record the outcome."""
