"""Real parts for the web page: uvicorn serving the API and `frontend/`, a Celery worker over Redis
(its own DB number), SQLite in a temporary data folder, and the distribution's Chromium driven
through Playwright. The LLM is the service tier's scripted double, served through litellm.

The fixtures are package-scoped so that everything (processes, environment, the in-process Celery
client's broker) is torn down before other tiers' fixtures start.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import MODEL, REPO, SLOW_MODEL, Workers, _free_port, wait_for

REDIS_URL = "redis://127.0.0.1:6379/14"
BROKEN_MODEL = "scripted/longread.testing.service_doubles.broken"
CITE_ALL_MODEL = "scripted/longread.testing.service_doubles.cite_all"
STREAM_MODEL = "scripted/longread.testing.service_doubles.slow_stream"
UPLOAD_LIMIT = 200_000
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: run scripts/setup-browser.sh")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: run scripts/setup-browser.sh")


@contextmanager
def _celery_client_for_this_tier() -> Iterator[None]:
    """Point this process's Celery app (used to ping workers) at this tier's broker, then back.

    `workers.celery_app` reads its settings once, at import; another tier may have imported it
    with a different broker, or may import it after this tier and expect its own.
    """
    loaded = "longread.workers.celery_app" in sys.modules
    module = importlib.import_module("longread.workers.celery_app")
    app = module.app
    config = module.celery_config()
    saved = {key: app.conf[key] for key in config} if loaded else None

    def point(values: dict[str, Any]) -> None:
        # Drop the pools of connections to the previous broker (what Celery itself does after a fork);
        # they are rebuilt from the new settings on first use.
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
        app.conf.update(values)

    if loaded:
        point(config)
    try:
        yield
    finally:
        if saved is not None:
            point(saved)
        else:
            point({})
            sys.modules.pop("longread.workers.celery_app", None)  # the next importer configures it afresh


@pytest.fixture(scope="package")
def browser_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment shared by this process, the API and the worker: SQLite, Redis DB 14 under a key prefix."""
    _require_browser()
    import redis

    from longread.config import get_settings

    # A key prefix of its own: another run of this tier may share the Redis server at the same time.
    prefix = f"browser-{uuid.uuid4().hex[:8]}:"
    data = tmp_path_factory.mktemp("browser-data")
    values = {
        "LONGREAD_DATA_DIR": str(data),
        "LONGREAD_REDIS_URL": REDIS_URL,
        "LONGREAD_REDIS_KEY_PREFIX": prefix,
        "LONGREAD_LLM": MODEL,
        "LONGREAD_ALLOWED_MODELS": json.dumps([SLOW_MODEL, BROKEN_MODEL, CITE_ALL_MODEL, STREAM_MODEL]),
        "LONGREAD_SEGMENT_TOKENS": "60",
        "LONGREAD_TREE_FANOUT": "4",
        "LONGREAD_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT),
        "LONGREAD_RATE_LIMIT_PER_MINUTE": "100000",
        "LONGREAD_ANONYMOUS_LOCAL": "false",
        "LONGREAD_LOCAL_MODEL_PRELOAD": "false",  # scripted models only: the worker need not load the local model
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": str(REPO),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LONGREAD_DATABASE_URL", raising=False)  # SQLite in the data folder
        for key, value in values.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        from longread.storage.db import init_db

        init_db()  # migrate once, before two processes race to
        with _celery_client_for_this_tier():
            yield dict(os.environ)
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture(scope="package")
def worker(browser_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(browser_env, tmp_path_factory.mktemp("browser-workers"))
    pool.start(concurrency=2)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="package")
def site(browser_env: dict[str, str], worker: Workers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API on a free port, serving the page at `/` (the same origin the page calls)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("browser-api") / "api.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "longread.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=browser_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "the API")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture
def new_key(browser_env: dict[str, str]) -> Callable[[str], str]:
    """A fresh API key (and tenant), so each test sees only its own documents."""
    from longread.api.security import create_key
    from longread.storage.db import session_scope

    def make(name: str) -> str:
        with session_scope() as session:
            plain, _row = create_key(session, name)
        return plain

    return make


@pytest.fixture(scope="package")
def browser(browser_env: dict[str, str]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def open_tab(browser: Any, site: str, **options: Any) -> tuple[Any, Any, list[str]]:
    """A fresh browser context (empty localStorage) and its tab, collecting uncaught page errors."""
    context = browser.new_context(base_url=site, **({"viewport": DESKTOP} | options))
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, tab, errors


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:
    """A fresh tab at 1366x900 per test; uncaught page errors fail the test."""
    context, tab, errors = open_tab(browser, site)
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def phone(browser: Any, site: str) -> Iterator[Any]:
    """A fresh tab at 390x844, touch and a phone's pixel ratio; uncaught page errors fail the test."""
    context, tab, errors = open_tab(
        browser, site, viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=3
    )
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def api_client(site: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=site, headers={"Authorization": f"Bearer {key}"}, timeout=30)
