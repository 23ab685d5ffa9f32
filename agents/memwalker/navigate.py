"""MemWalker navigation: walk down from the root, reason, open a child, backtrack when a leaf lacks the answer.

At an internal node the model sees the question, its working memory and the numbered summaries of the
children it has not ruled out, and answers with reasoning then `Action: OPEN k` or `Action: REVERT`.
At a leaf it sees the segment's full text and answers `Action: ANSWER ...` or `Action: REVERT`.
Working memory carries what was read on the way (summaries along the path, notes on leaves that lacked
the answer), truncated to its token budget from the oldest end. A step limit ends the walk with the
best partial answer from memory. Every step goes into the trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from longread.agents.base import AnswerDraft, Evidence, ProgressFn, no_progress
from longread.agents.citations import answer_phrase
from longread.agents.memwalker.tree import get_node, tree_level_sizes
from longread.agents.partial import PartialFn, no_partial
from longread.config import get_settings
from longread.llm import LLMClient
from longread.llm.prompts import COMPLETION
from longread.storage.models import Document, Tree, TreeNode

DECISION_TOKENS = 300  # reasoning plus an action (an answer at a leaf)
_OPEN = re.compile(r"action\s*:\s*(?:open|go to|choose|select)?\s*(?:part|child)?\s*\[?(\d+)\]?", re.I)
_REVERT = re.compile(r"action\s*:\s*(?:revert|back|go back|return)", re.I)
_ANSWER = re.compile(r"action\s*:\s*answer\s*:?\s*(.*)", re.I | re.S)
_ANSWER_CUE = re.compile(r"action\s*:\s*answer\b", re.I)
_BARE_ACTION = re.compile(r"\s*(?:open|revert|answer)\b", re.I)
_REASONING_HEADER = re.compile(r"^\s*reasoning\s*:\s*", re.I)


@dataclass
class Decision:
    action: str  # open | revert | answer | invalid
    reasoning: str
    child: int | None = None
    answer: str = ""


def parse_decision(text: str) -> Decision:
    """Read the model's reasoning and action; anything unreadable is 'invalid'.

    A completion prompt ends in the `Action:` cue, so a base model's reply starts with the verb itself.
    """
    if _BARE_ACTION.match(text) and not re.search(r"action\s*:", text, re.I):
        text = f"Action: {text.lstrip()}"
    head = re.split(r"action\s*:", text, maxsplit=1, flags=re.I)[0]
    reasoning = _REASONING_HEADER.sub("", head).strip()
    if match := _ANSWER.search(text):
        return Decision("answer", reasoning, answer=match.group(1).strip())
    if _REVERT.search(text):
        return Decision("revert", reasoning)
    if match := _OPEN.search(text):
        return Decision("open", reasoning, child=int(match.group(1)))
    return Decision("invalid", reasoning or text.strip()[:300])


class LeafAnswerStream:
    """What of a leaf's reply is relayed as the answer being written: the text after `Action: ANSWER`.

    The reasoning before the action, and a reply that goes back, are not the answer, so nothing is
    relayed until the cue has arrived (it may be split across pieces); then every piece goes on as it
    comes. `sent` is the text relayed so far.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink
        self.seen = ""
        self.started = False
        self.sent = ""

    def __call__(self, piece: str) -> None:
        if not self.started:
            self.seen += piece
            cue = _ANSWER_CUE.search(self.seen)
            if cue is None:
                return
            self.started, piece = True, self.seen[cue.end() :]
        if not self.sent:  # the answer starts at its first word (a colon may follow the cue in a later piece)
            piece = piece.lstrip().removeprefix(":").lstrip()
            if not piece:
                return
        self.sent += piece
        self.sink(piece)


def copied_from(answer: str, passage: str) -> bool:
    """Whether an answer (its citations aside) occurs in the passage, ignoring case and spacing."""
    phrase = answer_phrase(answer)
    return bool(phrase) and phrase in re.sub(r"\s+", " ", passage).lower()


@dataclass
class WorkingMemory:
    """What the navigator read so far, kept within a token budget (oldest entries go first)."""

    client: LLMClient
    budget: int
    entries: list[str] = field(default_factory=list)

    def add(self, entry: str) -> None:
        self.entries.append(entry)

    def render(self) -> str:
        kept: list[str] = []
        used = 0
        for entry in reversed(self.entries):
            cost = self.client.counter.count(entry) + 1
            if used + cost > self.budget:
                break
            kept.append(entry)
            used += cost
        return "\n".join(reversed(kept)) if kept else "(nothing yet)"


def _children(session: Session, tree: Tree, node: TreeNode) -> list[TreeNode]:
    assert node.child_start is not None and node.child_end is not None
    children = [get_node(session, tree.id, node.level - 1, p) for p in range(node.child_start, node.child_end)]
    return [child for child in children if child is not None]


def _labels(node: TreeNode) -> str:
    return f"S{node.segment_index}" if node.level == 0 else "a section"


def navigate(
    session: Session,
    tree: Tree,
    document: Document,
    question: str,
    client: LLMClient,
    *,
    progress: ProgressFn = no_progress,
    partial: PartialFn = no_partial,
    conversation: str = "",
) -> AnswerDraft:
    """Walk the tree for a question; returns the answer with the leaves read and the full trace.

    Before each step the working memory is noted as the partial answer: what a stop there would keep.
    `conversation` (a follow-up's recent turns, longread.conversation) goes to the prompts that write the
    answer (a leaf's and the final one), so it can refer back to them; the triage between summaries
    reads the question alone, which the engine has already rewritten to stand on its own.
    """
    settings = get_settings()
    sizes = tree_level_sizes(session, tree)
    root = get_node(session, tree.id, len(sizes) - 1, 0)
    if root is None:
        raise RuntimeError("the tree has no root: build it first")
    memory = WorkingMemory(client, settings.NAV_MEMORY_TOKENS)
    trace: list[dict[str, Any]] = []
    read: list[Evidence] = []
    ruled_out: set[tuple[int, int]] = set()
    path: list[TreeNode] = [root]
    max_steps = settings.NAV_MAX_STEPS
    copied_prompts = client.prompt_style == COMPLETION

    def revert(node: TreeNode, why: str) -> None:
        ruled_out.add((node.level, node.position))
        path.pop()
        trace.append(
            {"step": len(trace) + 1, "node": [node.level, node.position], "action": "revert", "reasoning": why}
        )

    for _ in range(max_steps):
        if not path:
            break
        node = path[-1]
        progress("navigating", len(trace), max_steps)
        partial(AnswerDraft(answer=memory.render(), strategy="tree", read=list(read), trace=list(trace)))
        if node.level == 0:
            text = document.text[node.start : node.end]
            # A leaf's answer is the walk's answer: it streams as it is written (after the action's cue).
            # A base model's answer is checked against the passage first, so it is relayed once accepted.
            sink = client.on_answer_text
            relay = LeafAnswerStream(sink) if sink is not None and not copied_prompts else None
            completion = client.complete(
                "nav_leaf",
                max_tokens=DECISION_TOKENS,
                stream_to=relay,
                text=text,
                question=question,
                memory=memory.render(),
                segment_index=node.segment_index,
                conversation=conversation,
            )
            decision = parse_decision(completion.text)
            read.append(Evidence(node.segment_index or 0, node.start, node.end))
            if decision.action == "answer" and copied_prompts and not copied_from(decision.answer, text):
                # A base model's prompt asks for a phrase copied from the passage; one that is not in the
                # passage is invented (small models answer rather than go back), so the walk goes on.
                decision = Decision("revert", f"the answer '{decision.answer[:80]}' is not in the passage")
            if decision.action == "answer" and decision.answer:
                trace.append(
                    {
                        "step": len(trace) + 1,
                        "node": [0, node.position],
                        "segment": node.segment_index,
                        "action": "answer",
                        "reasoning": decision.reasoning,
                    }
                )
                answer = decision.answer
                if f"S{node.segment_index}" not in answer:
                    answer = f"{answer} [S{node.segment_index}]"
                if sink is not None:  # what was not relayed yet: the whole answer, or the label added to it
                    streamed = relay.sent if relay is not None else ""
                    rest = answer[len(decision.answer) :] if streamed else answer
                    if rest:
                        sink(rest)
                return AnswerDraft(answer=answer, strategy="tree", read=read, trace=trace)
            memory.add(f"[S{node.segment_index}] did not answer the question: {decision.reasoning[:300]}")
            revert(node, decision.reasoning)
            continue

        options = [c for c in _children(session, tree, node) if (c.level, c.position) not in ruled_out]
        if not options:
            revert(node, "every child was ruled out")
            continue
        completion = client.complete(
            "nav_triage",
            max_tokens=DECISION_TOKENS,
            question=question,
            memory=memory.render(),
            children=[{"number": i + 1, "summary": child.summary} for i, child in enumerate(options)],
        )
        decision = parse_decision(completion.text)
        step: dict[str, Any] = {
            "step": len(trace) + 1,
            "node": [node.level, node.position],
            "reasoning": decision.reasoning,
        }
        if decision.action == "revert" and node is not root:
            memory.add(f"A section about: {node.summary[:300]} — did not hold the answer.")
            revert(node, decision.reasoning)
            continue
        if decision.action == "open" and decision.child is not None and 1 <= decision.child <= len(options):
            chosen = options[decision.child - 1]
            step.update(action="open", child=[chosen.level, chosen.position])
        else:
            # An unreadable action, or a revert at the root: open the first child not yet ruled out,
            # so the walk still makes progress; the trace records that the model's action was invalid.
            chosen = options[0]
            step.update(
                action="open", child=[chosen.level, chosen.position], invalid=True, model_action=decision.action
            )
        trace.append(step)
        memory.add(
            f"Opened {_labels(chosen)}: {chosen.summary[:400]}"
            if chosen.level
            else f"Opening [S{chosen.segment_index}]"
        )
        path.append(chosen)

    completion = client.complete("nav_final", question=question, memory=memory.render(), conversation=conversation)
    trace.append({"step": len(trace) + 1, "action": "step_limit" if path else "exhausted", "reasoning": ""})
    return AnswerDraft(answer=completion.text, strategy="tree", read=read, trace=trace)
