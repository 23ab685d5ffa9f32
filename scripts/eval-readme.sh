#!/usr/bin/env bash
# Regenerate the evaluation results in README.md and docs/eval-results.md: the book QA set (whole
# novels) with the strategies that read a book in minutes on this CPU, RULER with every strategy that
# runs on the bundled local model, and doc2dial gold-chunk retrieval recall on the fixed 200-question
# sample. Every run resumes from reports/<run>/results.jsonl, so rerunning continues an
# interrupted run and only rewrites the reports.
#
# On a 2-core CPU the RULER runs take hours (a summary tree alone is dozens of generations); with a GPU
# (LONGREAD_LOCAL_DEVICE=cuda) or a hosted model (MODEL=openai/gpt-4o-mini, without attention) minutes.
# The CPU plan: all 13 RULER tasks at 4K and four tasks of different kinds (single needle, multi-key
# needle, variable tracking, SQuAD QA) at 8K with every strategy; two tasks at 16K and 32K with every
# strategy but the summary tree (a 32K tree is about 40 generations per document on this CPU); one
# sample per task and length. Where compute allows, set RULER_TASKS_8K=all, RULER_TASKS_LONG=all,
# STRATEGIES_LONG to every strategy, and RULER_SAMPLES higher.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# RULER's own generation budgets are 30–128 tokens per task.
export LONGREAD_LLM_MAX_OUTPUT_TOKENS=${LONGREAD_LLM_MAX_OUTPUT_TOKENS:-64}
MODEL=${MODEL:-local/default}
STRATEGIES=${STRATEGIES:-attention,shortlist,full,bm25,dense,chain,tree,auto}
STRATEGIES_LONG=${STRATEGIES_LONG:-attention,shortlist,full,bm25,dense,chain,auto}
# The whole-document attention scan takes minutes per question on a novel, a chain or a summary tree
# hundreds of generations: on the CPU plan the books run the retrieval strategies.
BOOKS_STRATEGIES=${BOOKS_STRATEGIES:-shortlist,auto,bm25,dense}
RULER_SAMPLES=${RULER_SAMPLES:-1}
RULER_TASKS_8K=${RULER_TASKS_8K:-niah_single_1,niah_multikey_1,vt,qa_1}
RULER_TASKS_LONG=${RULER_TASKS_LONG:-niah_single_1,qa_1}
PUBLISH=(--docs docs/eval-results.md --readme README.md --regenerate-with "bash scripts/eval-readme.sh")

ruler() {  # lengths, tasks ("all" for every task), strategies, then extra options
  local lengths=$1 tasks=$2 strategies=$3
  shift 3
  local task_option=()
  [ "$tasks" = all ] || task_option=(--tasks "$tasks")
  longread eval ruler --model "$MODEL" --strategies "$strategies" --lengths "$lengths" "${task_option[@]}" \
    --limit "$RULER_SAMPLES" --out reports/ruler-local "$@"
}
longread eval books --model "$MODEL" --strategies "$BOOKS_STRATEGIES" --out reports/books-local "${PUBLISH[@]}"
# The shortlist reader on single needles from 4K to 128K tokens, and on planted needles at 8K (5 depths).
longread eval ruler --model "$MODEL" --strategies shortlist --tasks niah_single_1 \
  --lengths 4k,8k,16k,32k,64k,128k --limit "${SHORTLIST_SAMPLES:-2}" --out reports/ruler-shortlist "${PUBLISH[@]}"
longread eval niah --model "$MODEL" --strategies shortlist --lengths 8k --limit "${SHORTLIST_SAMPLES:-2}" \
  --out reports/niah-shortlist "${PUBLISH[@]}"
ruler 4k all "$STRATEGIES"
ruler 8k "$RULER_TASKS_8K" "$STRATEGIES"
ruler 16k,32k "$RULER_TASKS_LONG" "$STRATEGIES_LONG" "${PUBLISH[@]}"
longread eval doc2dial --model "$MODEL" --strategies full,bm25,dense --limit 200 --retrieval-only \
  --out reports/doc2dial-local "${PUBLISH[@]}"
