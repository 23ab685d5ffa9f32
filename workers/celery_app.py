"""The Celery application: Redis broker and result backend, queues `default` and `local`.

Settings follow what keeps long LLM jobs from being lost or run twice:
- `task_acks_late` + `worker_prefetch_multiplier=1`: a message is acknowledged only after its task
  finished, and a worker holds one message at a time, so a dead worker loses at most its own task;
- `task_reject_on_worker_lost`: a task whose pool process was killed is requeued, not dropped;
- a worker killed outright (SIGKILL of the whole group) acknowledges nothing, and its messages wait
  for the visibility timeout; its jobs stop beating (or, during a tree level, their lost node's lease
  runs out, `workers/leases.py`), and the sweeper (every `SWEEP_INTERVAL_S`) resumes them on a live
  worker once that is `JOB_HEARTBEAT_TIMEOUT_S` old;
- visibility timeout > hard time limit > soft time limit: Redis redelivers an unacknowledged message
  after the visibility timeout, so a task that may still be running must never reach it;
- a result backend: chords (the per-level tree fan-out) count finished header tasks there;
- a worker that serves the `local` queue loads the local model before its pool starts (`LocalModelStep`):
  it reports ready only once it can serve local work, and its pool processes inherit the loaded model;
- a worker that has just become ready sweeps once at once (`tasks.maintenance`), so a job a dead
  worker left behind is resumed as soon as it is stale rather than when a sweep message gets its turn.

Task arguments are ids and small primitives only; job state lives in the database (`storage.jobs`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, bootsteps
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_init,
    worker_process_init,
)
from kombu import Queue

from longread.config import get_settings
from longread.llm.client import use_provider_slot
from longread.workers import job_events
from longread.workers.embedded import redis_url
from longread.workers.limits import provider_slot

log = logging.getLogger(__name__)

SWEEP_TASK = "longread.workers.tasks.maintenance.sweep_stale_jobs"

TASK_MODULES = [
    "longread.workers.tasks.ingest",
    "longread.workers.tasks.tree",
    "longread.workers.tasks.chain",
    "longread.workers.tasks.answers",
    "longread.workers.tasks.indexes",
    "longread.workers.tasks.maintenance",
]


def celery_config() -> dict[str, Any]:
    """Celery settings derived from `Settings`; one function so tests and benches see the same values."""
    settings = get_settings()
    url = redis_url(settings)
    hard = settings.TASK_TIME_LIMIT_S
    visibility = hard + 600
    transport: dict[str, Any] = {"visibility_timeout": visibility}
    if settings.REDIS_KEY_PREFIX:
        transport["global_keyprefix"] = settings.REDIS_KEY_PREFIX
    return {
        "broker_url": url,
        "result_backend": url,
        "broker_transport_options": transport,
        "result_backend_transport_options": dict(transport),
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        # A task whose pool process died (SIGTERM to the worker's process group, the OOM killer) goes
        # back on the queue at once instead of being acknowledged as failed: another worker picks it
        # up without waiting for the visibility timeout. Claims and upserts make the rerun harmless.
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": hard,
        "task_soft_time_limit": int(hard * 0.9),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 24 * 3600,
        "task_default_queue": "default",
        "task_queues": [Queue("default"), Queue("local")],
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "sweep-stale-jobs": {
                "task": SWEEP_TASK,
                "schedule": settings.SWEEP_INTERVAL_S,
            }
        },
        "beat_schedule_filename": str((settings.DATA_DIR / "celerybeat-schedule").resolve()),
    }


app = Celery("longread", include=TASK_MODULES)
# Read when the configuration is first used (sending a task, starting a worker), not at import: importing
# this module (queue_for, the task names) must not look for a broker, let alone start an embedded one.
app.add_defaults(celery_config)
# Every process that runs tasks shares the providers' rate limits with the other workers.
use_provider_slot(provider_slot)
# Job-row changes are announced to the API's event streams over Redis pub/sub.
job_events.install()


@celeryd_init.connect
def _warnings_without_paths(**_kwargs: Any) -> None:
    """From a worker's first line on, a Python warning prints as one log line without its file path.

    Sent before Celery checks the worker's privileges (its superuser warning) and before it sets up
    logging; `longread.logs.warnings_as_log_lines` routes warnings through the sanitising filter.
    """
    from longread.logs import warnings_as_log_lines

    warnings_as_log_lines()


@worker_init.connect
def _preload(**_kwargs: Any) -> None:
    """Import litellm, run its call path once on a mock response, read the cl100k tokenizer and check the
    schema once in the parent, so every forked pool process starts warm (that work takes seconds of CPU,
    which each process paid again on its first task)."""
    import litellm  # noqa: F401

    from longread.tokens import token_counter_for

    token_counter_for(get_settings().LLM).count("warm")

    from longread.logs import plain_library_logs

    plain_library_logs()  # before the scripted provider's registration logs its first warning
    from longread.llm.scripted import register_scripted_provider

    register_scripted_provider()
    from longread.llm.client import warm_up

    warm_up()
    _migrate_before_fork()


def _migrate_before_fork() -> None:
    """Bring the schema up to date once in the parent: a pool process that finds it done (the per-process
    flag is inherited) skips Alembic, which cost each one about 0.4 s of CPU on its first task. The
    parent's connections are closed before the fork; a database that is down now is checked later."""
    from longread.storage.db import get_engine, init_db

    try:
        init_db()
    except Exception as exc:  # the message may carry the URL: the log gets its kind only
        log.warning("the database schema could not be checked at start (%s); each task checks it", type(exc).__name__)
        return
    get_engine().dispose()


def serves_local_queue(worker: Any) -> bool:
    """Whether the worker consumes the `local` queue (`-Q` names it, or no `-Q` was given)."""
    queues = worker.app.amqp.queues
    return "local" in (queues.consume_from or queues)


class LocalModelStep(bootsteps.Step):
    """Load the local model in the worker's main process, before the pool forks and the worker is ready.

    Loading takes seconds (tens on a busy CPU); a job should not wait for it, least of all one resumed
    after its worker died. The pool processes inherit the loaded weights (copy-on-write). The load runs
    no forward pass in this process, so the pool processes start their own compute threads. A worker that
    cannot load it (no torch, a bad LOCAL_MODEL) still starts: local jobs then fail with the reason.
    """

    name = "longread-local-model"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        if not get_settings().LOCAL_MODEL_PRELOAD or not serves_local_queue(worker):
            return
        from longread.local_model import load_local_model

        started = time.perf_counter()
        try:
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # a progress bar is no log line
            load_local_model(None)
        except Exception as exc:  # the message may name a server path: the log gets its kind only
            log.warning(
                "the local model could not be loaded at start (%s); local jobs will report why", type(exc).__name__
            )
            return
        log.info("local model ready for the local queue after %.1f s", time.perf_counter() - started)


app.steps["worker"].add(LocalModelStep)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _no_internals_in_logs(logger: Any = None, **_kwargs: Any) -> None:
    """Worker log lines carry no tracebacks, SQL, paths or keys (`longread.logs`), unless at DEBUG."""
    import logging

    from longread.logs import quiet_internals

    quiet_internals(*([logger] if isinstance(logger, logging.Logger) else []))


@worker_process_init.connect
def _fresh_db_connections(**_kwargs: Any) -> None:
    """Forked pool children must not share the parent's pooled database connections."""
    from longread.storage.db import engine_for

    if engine_for.cache_info().currsize:
        from longread.storage.db import get_engine

        get_engine().dispose(close=False)
        engine_for.cache_clear()


def queue_for(model: str | None, strategy: str | None = None) -> str:
    """The queue the registry names for this strategy and model (in-process model work goes to `local`)."""
    from longread.agents import registry

    model = model or get_settings().LLM
    if strategy and strategy != registry.AUTO:
        return registry.get(strategy).queue(model)
    return "local" if model.startswith("local/") else "default"
