"""Shortlist, then attention: lexical and dense retrieval shortlist passages over a whole document, the
local model's calibrated attention re-ranks them (ICR), and the best within the evidence budget answer.

Modules, one job each: `index` (passages, BM25 and stored embeddings per document), `fusion` (rank
fusion of the two rankings), `rerank` (ICR re-ranking with the local model), `strategy` (the reader).
"""
