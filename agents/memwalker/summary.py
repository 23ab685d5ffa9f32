"""A whole-document summary from the summary tree's top level (no query, no walk)."""

from __future__ import annotations

from sqlmodel import Session

from longread.agents.base import AnswerDraft, Evidence, ProgressFn
from longread.agents.memwalker.tree import build_tree, get_node, tree_level_sizes, words_to_tokens
from longread.agents.segments import ensure_segments
from longread.llm import LLMClient
from longread.storage.models import Document, Tree, TreeNode

ROOT_SUMMARY_WORDS = 400


def summarize_from_tree(session: Session, document: Document, client: LLMClient, progress: ProgressFn) -> AnswerDraft:
    """Summarise from the tree's top: the root's children (or the lone leaf) with the passages they span."""
    tree = build_tree(session, document, client, progress=progress)
    sizes = tree_level_sizes(session, tree)
    top_level = max(0, len(sizes) - 2)
    parts = []
    for position in range(sizes[top_level]):
        node = get_node(session, tree.id, top_level, position)
        assert node is not None
        first, last = segment_span(session, tree, node)
        parts.append({"labels": f"S{first}–S{last}" if first != last else f"S{first}", "summary": node.summary})
    progress("writing the summary", 0, 1)
    completion = client.complete(
        "tree_root_summary", parts=parts, max_words=ROOT_SUMMARY_WORDS, max_tokens=words_to_tokens(ROOT_SUMMARY_WORDS)
    )
    segments = ensure_segments(session, document, client.model)
    read = [Evidence(s.index, s.start, s.end) for s in segments]
    trace = [{"levels": len(sizes), "nodes": sum(sizes), "top_level": top_level, "parts": len(parts)}]
    return AnswerDraft(answer=completion.text, strategy="tree", read=read, trace=trace)


def segment_span(session: Session, tree: Tree, node: TreeNode) -> tuple[int, int]:
    """First and last segment index under a node (level-0 positions are segment indexes)."""
    level = node.level
    first, last = node.position, node.position
    while level > 0:
        lo = get_node(session, tree.id, level, first)
        hi = get_node(session, tree.id, level, last)
        assert lo is not None and hi is not None and lo.child_start is not None and hi.child_end is not None
        first, last = lo.child_start, hi.child_end - 1
        level -= 1
    return first, last
