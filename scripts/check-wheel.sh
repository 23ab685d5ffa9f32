#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment outside the checkout, and run it from there:
# the README's main job (`longread ask` on the example logbook with the bundled local model), `longread eval
# --help`, and the API serving the web page and /openapi.json. Fails if the wheel lacks a prompt, a page
# asset, a migration or alembic.ini, or if anything is imported from the checkout instead of the wheel.
#
# The fresh venv gets only the wheel (pip --no-deps); the third-party packages come from .venv through a
# .pth file, so the check costs seconds instead of a second multi-GB install; the wheel's own requirements
# (and its `local` extra) are checked against them from inside the fresh venv.
#
# CHECK_WHEEL_MODEL=scripted/longread.testing.doubles.reader runs `ask` with the scripted model instead
# (seconds instead of the local model's minute on a small CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
MODEL=${CHECK_WHEEL_MODEL:-local/default}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/longread-wheel.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "build the wheel from the checkout's files (a clean copy: no stale build/ folder can leak in)"
mkdir -p "$WORK/src" "$WORK/dist"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/longread-*.whl)
echo "$WHEEL"

step "the wheel carries every prompt, page asset and migration, and alembic.ini"
"$PY" - "$WHEEL" <<'EOF'
import subprocess
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
tracked = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard", "prompts", "frontend", "storage"],
    capture_output=True, text=True, check=True,
).stdout.split()
wanted = [f"longread/{path}" for path in tracked if not path.endswith(".md")]
missing = [name for name in wanted if name not in names]
if missing:
    sys.exit("missing from the wheel:\n  " + "\n  ".join(missing))
top = sorted({name.split("/", 1)[0] for name in names if not name.startswith("longread-")})
if top != ["longread"]:
    sys.exit(f"the wheel installs other top-level names: {top}")
print(f"{len(wanted)} data and module files present; one top-level package")
EOF

step "a fresh venv outside the checkout: the wheel alone, third-party packages from .venv"
BASE=$("$PY" -c 'import sys; print(sys._base_executable)')
"$BASE" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --no-index "$WHEEL"
MAIN_SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
NEW_SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# A path line, not an import line: .pth files inside MAIN_SITE (the checkout's editable hook) stay unread.
echo "$MAIN_SITE" > "$NEW_SITE/zz_longread_deps.pth"
# Not `pip check`: .venv also holds evaluation data packages installed without their own requirements.
"$WORK/venv/bin/python" - <<'EOF'
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement

unmet = []
for line in requires("longread") or []:
    req = Requirement(line)
    if req.marker and not any(req.marker.evaluate({"extra": extra}) for extra in ("", "local")):
        continue  # an extra the checks below do not use (dev, eval, bench)
    try:
        if not req.specifier.contains(version(req.name), prereleases=True):
            unmet.append(f"{req} (have {version(req.name)})")
    except PackageNotFoundError:
        unmet.append(f"{req} (missing)")
if unmet:
    raise SystemExit("the wheel's requirements are not met:\n  " + "\n  ".join(unmet))
print("the wheel's requirements (with the local extra) are met")
EOF
export PATH="$WORK/venv/bin:$PATH"
mkdir -p "$WORK/run"
cd "$WORK/run"
export LONGREAD_DATA_DIR="$WORK/run/data" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset LONGREAD_DATABASE_URL LONGREAD_REDIS_URL LONGREAD_LLM
python - "$WORK" <<'EOF'
import importlib
import sys

work = sys.argv[1]
for name in ("longread", "longread.agents.registry", "longread.prompts", "longread.frontend", "longread.storage"):
    module = importlib.import_module(name)
    where = (getattr(module, "__file__", None) or list(module.__path__)[0])
    if not where.startswith(work):
        sys.exit(f"{name} imported from {where}, not from the installed wheel")
print("longread imported from", importlib.import_module("longread").__file__)
EOF
test "$(command -v longread)" = "$WORK/venv/bin/longread"

step "longread ask on the example ($MODEL)"
started=$(date +%s)
LONGREAD_LLM=$MODEL longread ask --quiet --json "$ROOT/examples/curlew-logbook.txt" \
    "What is the code of the violet harbor?" > answer.json
python - <<'EOF'
import json

answer = json.load(open("answer.json"))
assert answer["answer"].strip(), answer
assert answer["citations"], "no evidence cited"
print(f"strategy {answer['strategy']}: {answer['answer'][:120]!r} ({len(answer['citations'])} citations)")
EOF
echo "ask took $(( $(date +%s) - started )) s"

step "longread eval --help"
longread eval --help > eval-help.txt
grep -q "strategies" eval-help.txt

step "the API serves the page and its OpenAPI document"
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No broker is needed for these two routes; a closed port keeps the app from starting an embedded one.
LONGREAD_REDIS_URL=redis://127.0.0.1:9/0 python -m uvicorn longread.api.main:app --host 127.0.0.1 --port "$PORT" \
    > uvicorn.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PORT/openapi.json" -o openapi.json 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat uvicorn.log; exit 1; }
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/" -o index.html
python - <<'EOF'
import json
import re

spec = json.load(open("openapi.json"))
assert spec["openapi"].startswith("3.") and any(path.startswith("/v1/") for path in spec["paths"]), "not the API's schema"
page = open("index.html", encoding="utf-8").read()
assert "<html" in page.lower(), "/ is not the web page"
assets = re.findall(r'(?:src|href)="/?([\w./-]+\.(?:js|css))"', page)
print(f"/openapi.json: {len(spec['paths'])} paths; /: {len(page)} bytes, assets {assets}")
EOF
for asset in $(python -c 'import re; print(" ".join(re.findall(r"(?:src|href)=\"/?([\w./-]+\.(?:js|css))\"", open("index.html").read())))'); do
    curl -fsS "http://127.0.0.1:$PORT/$asset" -o /dev/null
done
echo
echo "wheel check passed: $(basename "$WHEEL")"
