#!/usr/bin/env bash
# Regenerate the evaluation results in README.md and docs/eval-results.md: RULER with every strategy
# that runs on the bundled local model, and doc2dial gold-chunk retrieval recall on the fixed
# 200-question sample. Every run resumes from reports/<run>/results.jsonl, so rerunning continues an
# interrupted run and only rewrites the reports.
#
# On a 2-core CPU the RULER runs take hours (a summary tree alone is dozens of generations); with a GPU
# (LONGREAD_LOCAL_DEVICE=cuda) or a hosted model (MODEL=openai/gpt-4o-mini, without attention) minutes.
# RULER runs all 13 tasks at 4K and 8K and four tasks of different kinds at 16K and 32K
# (RULER_LONG_TASKS), one sample per task and length (RULER_SAMPLES).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# RULER's own generation budgets are 30–128 tokens per task.
export LONGREAD_LLM_MAX_OUTPUT_TOKENS=${LONGREAD_LLM_MAX_OUTPUT_TOKENS:-64}
MODEL=${MODEL:-local/default}
STRATEGIES=${STRATEGIES:-attention,full,bm25,dense,chain,tree,auto}
RULER_SAMPLES=${RULER_SAMPLES:-1}
RULER_LONG_TASKS=${RULER_LONG_TASKS:-niah_single_1,niah_multikey_1,vt,qa_1}
PUBLISH=(--docs docs/eval-results.md --readme README.md --regenerate-with "bash scripts/eval-readme.sh")

longread eval ruler --model "$MODEL" --strategies "$STRATEGIES" --lengths 4k,8k --limit "$RULER_SAMPLES" \
  --out reports/ruler-local
longread eval ruler --model "$MODEL" --strategies "$STRATEGIES" --lengths 16k,32k --tasks "$RULER_LONG_TASKS" \
  --limit "$RULER_SAMPLES" --out reports/ruler-local "${PUBLISH[@]}"
longread eval doc2dial --model "$MODEL" --strategies full,bm25,dense --limit 200 --retrieval-only \
  --out reports/doc2dial-local "${PUBLISH[@]}"
