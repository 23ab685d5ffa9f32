#!/usr/bin/env bash
# Run every test tier (unit, PostgreSQL, Redis/Celery service, real local model, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest -q -ra "$@"
