"""Building the MemWalker summary tree bottom-up.

Level 0 has one node per segment (its summary); each higher node summarises a contiguous run of at most
`fanout` children, balanced so sibling groups differ by at most one. Every node of a level depends only
on the level below, so a level's summaries run in parallel (threads here, a Celery group in the
service). Nodes are upserted by (tree, level, position): repeating a node costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from longread.agents.base import ProgressFn, no_progress
from longread.agents.segments import SegmentTexts, ensure_segments, scheme_for, segment_with_text
from longread.config import get_settings
from longread.llm import LLMClient
from longread.llm.client import provider_of
from longread.storage.db import insert_new
from longread.storage.models import Document, Segment, Tree, TreeNode, TreeStatus, table_of

TREE_PROMPTS = ("tree_leaf_summary", "tree_node_summary")
LEAF_SUMMARY_WORDS = 120
NODE_SUMMARY_WORDS = 160
TOKENS_PER_WORD = 1.6  # output caps leave room for the word limit in any tokenizer


def words_to_tokens(words: int) -> int:
    return int(words * TOKENS_PER_WORD) + 16


def level_sizes(n_leaves: int, fanout: int) -> list[int]:
    """Nodes per level, leaves first, up to a single root."""
    if n_leaves < 1:
        raise ValueError("a tree needs at least one leaf")
    if fanout < 2:
        raise ValueError("fanout must be at least 2")
    sizes = [n_leaves]
    while sizes[-1] > 1:
        sizes.append(math.ceil(sizes[-1] / fanout))
    return sizes


def child_range(n_children: int, n_parents: int, position: int) -> tuple[int, int]:
    """Children [start, end) of a parent when n_children are spread evenly over n_parents."""
    return (position * n_children) // n_parents, ((position + 1) * n_children) // n_parents


def parent_of(n_children: int, n_parents: int, child: int) -> int:
    for position in range(n_parents):
        start, end = child_range(n_children, n_parents, position)
        if start <= child < end:
            return position
    raise ValueError(f"child {child} outside 0..{n_children}")


def tree_prompt_version(model: str) -> str:
    """Names the summary prompts a tree was built with, so an edited prompt builds a new tree."""
    return "tree-" + LLMClient(model).prompt_fingerprint(*TREE_PROMPTS)


def _tree_query(document: Document, model: str) -> Any:
    settings = get_settings()
    return select(Tree).where(
        Tree.document_id == document.id,
        Tree.model == model,
        Tree.scheme == scheme_for(model, settings.SEGMENT_TOKENS),
        Tree.fanout == settings.TREE_FANOUT,
        Tree.prompt_version == tree_prompt_version(model),
    )


def stored_tree(session: Session, document: Document, model: str) -> Tree | None:
    """The tree `prepare_tree` would use, if one exists already (complete or partly built); creates nothing."""
    tree: Tree | None = session.exec(_tree_query(document, model)).first()
    return tree


def prepare_tree(session: Session, document: Document, model: str) -> Tree:
    """Get or create the tree row for (document, model, shape, prompts) and the segments it summarises."""
    settings = get_settings()
    ensure_segments(session, document, model)
    tree = stored_tree(session, document, model)
    if tree is not None:
        return tree
    tree = Tree(
        document_id=document.id,
        model=model,
        scheme=scheme_for(model, settings.SEGMENT_TOKENS),
        fanout=settings.TREE_FANOUT,
        prompt_version=tree_prompt_version(model),
    )
    session.add(tree)
    try:
        session.commit()
    except IntegrityError:  # another worker created it first
        session.rollback()
        tree = session.exec(_tree_query(document, model)).one()
    return tree


def segment_count(session: Session, tree: Tree) -> int:
    query = (
        select(func.count())
        .select_from(Segment)
        .where(Segment.document_id == tree.document_id, Segment.scheme == tree.scheme)
    )
    return int(session.exec(query).one())


_segment_counts: dict[tuple[str, str], int] = {}


def tree_level_sizes(session: Session, tree: Tree) -> list[int]:
    """Nodes per level. A document's segments under a scheme are written once, before its tree, so their
    count is kept per process: every node task of a build needs it, and it never changes."""
    key = (tree.document_id, tree.scheme)
    count = _segment_counts.get(key)
    if count is None:
        count = segment_count(session, tree)
        if count:
            if len(_segment_counts) > 4096:
                _segment_counts.clear()
            _segment_counts[key] = count
    return level_sizes(count, tree.fanout)


def get_node(session: Session, tree_id: str, level: int, position: int) -> TreeNode | None:
    return session.exec(
        select(TreeNode).where(TreeNode.tree_id == tree_id, TreeNode.level == level, TreeNode.position == position)
    ).first()


def node_stored(session: Session, tree_id: str, level: int, position: int) -> bool:
    query = select(TreeNode.id).where(
        TreeNode.tree_id == tree_id, TreeNode.level == level, TreeNode.position == position
    )
    return session.exec(query).first() is not None


def level_nodes(session: Session, tree_id: str, level: int) -> list[TreeNode]:
    return list(
        session.exec(
            select(TreeNode)
            .where(TreeNode.tree_id == tree_id, TreeNode.level == level)
            .order_by(col(TreeNode.position))
        )
    )


def summarize_node(
    session: Session,
    tree: Tree,
    level: int,
    position: int,
    client: LLMClient,
    segments: SegmentTexts | None = None,
    *,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> bool:
    """Summarise one node (a segment at level 0, a run of children above) and store it once.

    `segments` serves a leaf's text when the caller summarises many leaves of the document (one read of
    the whole text); without it the leaf's segment is cut in SQL. With `write` the node's row goes to it
    instead of the database (the caller stores it with the call's usage). A node already stored is not
    summarised again (False), and one stored meanwhile by another task wins.
    """
    if node_stored(session, tree.id, level, position):
        return False
    sizes = tree_level_sizes(session, tree)
    if not 0 <= level < len(sizes) or not 0 <= position < sizes[level]:
        raise ValueError(f"node ({level}, {position}) is outside a tree of levels {sizes}")
    parent = parent_of(sizes[level], sizes[level + 1], position) if level + 1 < len(sizes) else None
    if level == 0:
        start, end, text = (
            segments(position)
            if segments is not None
            else segment_with_text(session, tree.document_id, tree.scheme, position)
        )
        completion = client.complete(
            "tree_leaf_summary",
            text=text,
            max_words=LEAF_SUMMARY_WORDS,
            max_tokens=words_to_tokens(LEAF_SUMMARY_WORDS),
        )
        node = TreeNode(
            tree_id=tree.id,
            level=0,
            position=position,
            parent_position=parent,
            segment_index=position,
            start=start,
            end=end,
            summary=completion.text,
            n_tokens=client.counter.count(completion.text),
        )
    else:
        start, end = child_range(sizes[level - 1], sizes[level], position)
        by_position = {
            child.position: child
            for child in session.exec(  # one read for the run of children, not one per child
                select(TreeNode).where(
                    TreeNode.tree_id == tree.id,
                    TreeNode.level == level - 1,
                    col(TreeNode.position) >= start,
                    col(TreeNode.position) < end,
                )
            )
        }
        missing = [p for p in range(start, end) if p not in by_position]
        if missing:
            raise RuntimeError(f"node ({level}, {position}) needs children {missing} of level {level - 1} first")
        present = [by_position[p] for p in range(start, end)]
        summaries = [child.summary for child in present]
        completion = client.complete(
            "tree_node_summary",
            summaries=summaries,
            max_words=NODE_SUMMARY_WORDS,
            max_tokens=words_to_tokens(NODE_SUMMARY_WORDS),
        )
        node = TreeNode(
            tree_id=tree.id,
            level=level,
            position=position,
            parent_position=parent,
            child_start=start,
            child_end=end,
            start=present[0].start,
            end=present[-1].end,
            summary=completion.text,
            n_tokens=client.counter.count(completion.text),
        )
    # A Core INSERT: the ORM's unit of work cost more CPU than the statement, and a node written
    # concurrently by a duplicate task is left as it is rather than raising.
    row = node.model_dump(exclude={"id"})
    if write is not None:
        write(row)
        return True
    written = insert_new(session, table_of(TreeNode), row)
    session.commit()
    return written


def finish_tree(session: Session, tree: Tree) -> Tree:
    """Mark a tree ready once every node of every level exists."""
    sizes = tree_level_sizes(session, tree)
    for level, size in enumerate(sizes):
        if len(level_nodes(session, tree.id, level)) != size:
            raise RuntimeError(f"tree {tree.id} level {level} is incomplete")
    tree.n_levels = len(sizes)
    tree.n_nodes = sum(sizes)
    tree.status = TreeStatus.READY
    session.add(tree)
    session.commit()
    return tree


def build_tree(session: Session, document: Document, client: LLMClient, *, progress: ProgressFn = no_progress) -> Tree:
    """Build (or finish building) the tree level by level; each level's nodes run concurrently."""
    tree = prepare_tree(session, document, client.model)
    if tree.status == TreeStatus.READY:
        return tree
    sizes = tree_level_sizes(session, tree)
    total = sum(sizes)
    done = sum(len(level_nodes(session, tree.id, level)) for level in range(len(sizes)))
    workers = 1 if provider_of(client.model) == "local" else get_settings().LLM_MAX_CONCURRENCY
    engine = session.get_bind()
    for level, size in enumerate(sizes):
        have = {node.position for node in level_nodes(session, tree.id, level)}
        todo = [p for p in range(size) if p not in have]
        progress(f"summarising level {level + 1} of {len(sizes)}", done, total)

        def run(position: int, level: int = level) -> None:
            with Session(engine, expire_on_commit=False) as own:
                summarize_node(own, tree, level, position, client)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo) or 1))) as pool:
            for _ in pool.map(run, todo):
                done += 1
                progress(f"summarising level {level + 1} of {len(sizes)}", done, total)
    return finish_tree(session, tree)
