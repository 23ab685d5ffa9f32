#!/usr/bin/env bash
# Regenerate the README's screenshots of the web page (docs/img/page-*.png) from the real stack:
# the browser tier's API, worker, Redis and Chromium, with the scripted model double.
set -euo pipefail
cd "$(dirname "$0")/.."
LONGREAD_SCREENSHOTS=docs/img .venv/bin/python -m pytest -p no:cacheprovider -q tests/browser/test_screenshots.py "$@"
