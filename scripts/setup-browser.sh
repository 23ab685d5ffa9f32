#!/usr/bin/env bash
# What the browser tests need on a fresh Debian machine: the distribution's Chromium and the
# Python `playwright` package in the active venv. Never `playwright install`: that downloads
# browser builds from the internet, and the tests drive /usr/bin/chromium instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "setup-browser: need root (or sudo) to apt-get install chromium" >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
    . .venv/bin/activate
fi
PIP=${PIP:-python -m pip}
python -c "import playwright, axe_playwright_python" 2>/dev/null || $PIP install -q "playwright>=1.45" "axe-playwright-python>=0.1.8"
echo "browser tier ready: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing')"
