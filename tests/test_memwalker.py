"""Summary tree shape, reuse and cache; navigation descends to the planted fact and backtracks."""

from __future__ import annotations

import re

import pytest
from sqlmodel import func, select

from longread import engine
from longread.agents.memwalker.navigate import parse_decision
from longread.agents.memwalker.tree import child_range, level_sizes
from longread.config import get_settings
from longread.llm import Usage
from longread.storage.models import Segment, TreeNode
from longread.testing import doubles
from longread.testing.factories import document_with_facts

MODEL = "scripted/longread.testing.doubles.reader"


@pytest.mark.parametrize(
    ("leaves", "fanout", "expected"),
    [(1, 8, [1]), (8, 8, [8, 1]), (9, 8, [9, 2, 1]), (100, 8, [100, 13, 2, 1]), (64, 4, [64, 16, 4, 1])],
)
def test_level_sizes(leaves: int, fanout: int, expected: list[int]) -> None:
    assert level_sizes(leaves, fanout) == expected


def test_children_are_balanced_and_contiguous() -> None:
    spans = [child_range(13, 2, p) for p in range(2)]
    assert spans == [(0, 6), (6, 13)]
    spans = [child_range(100, 13, p) for p in range(13)]
    assert spans[0][0] == 0 and spans[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert {end - start for start, end in spans} <= {7, 8}


def _store(session, monkeypatch, text: str, segment_tokens: int, fanout: int):
    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", str(segment_tokens))
    monkeypatch.setenv("LONGREAD_TREE_FANOUT", str(fanout))
    get_settings.cache_clear()
    document, _ = engine.store_text(session, filename="doc.txt", text=text)
    return document


def test_tree_shape_calls_and_reuse(session, monkeypatch) -> None:
    text = document_with_facts(40, {25: "The code of the violet harbor is 4721."})
    document = _store(session, monkeypatch, text, 120, 3)
    usage = Usage()
    tree = engine.build_tree(session, document, model=MODEL, usage=usage)
    n_segments = session.exec(select(func.count()).select_from(Segment)).one()
    sizes = level_sizes(n_segments, 3)
    assert n_segments >= 20
    assert tree.n_levels == len(sizes) and tree.n_nodes == sum(sizes)
    assert usage.calls == sum(sizes)  # one summary per node: the structural minimum
    for level, size in enumerate(sizes):
        nodes = session.exec(select(TreeNode).where(TreeNode.tree_id == tree.id, TreeNode.level == level)).all()
        assert sorted(n.position for n in nodes) == list(range(size))
        if level:
            assert all(n.child_end - n.child_start <= 3 for n in nodes)
    again = Usage()
    same = engine.build_tree(session, document, model=MODEL, usage=again)
    assert same.id == tree.id and again.calls == 0 and again.cached_calls == 0


def test_navigation_descends_to_the_planted_fact(session, monkeypatch) -> None:
    fact = "The code of the violet harbor is 4721."
    text = document_with_facts(40, {31: fact})
    document = _store(session, monkeypatch, text, 120, 3)
    answer = engine.ask(session, document, "What is the code of the violet harbor?", strategy="tree", model=MODEL)
    assert "4721" in answer.answer
    assert answer.strategy == "tree"
    quotes = [c["quote"] for c in answer.citations]
    assert fact in quotes
    cited = answer.citations[0]
    assert document.text[cited["start"] : cited["end"]] == fact
    actions = [step["action"] for step in answer.trace]
    assert actions[-1] == "answer" and "revert" not in actions
    opened = [step for step in answer.trace if step["action"] == "open"]
    assert len(opened) == len(level_sizes(session.exec(select(func.count()).select_from(Segment)).one(), 3)) - 1


def test_navigation_backtracks_when_a_leaf_lacks_the_answer(session, monkeypatch) -> None:
    decoy = "Every sailor asks the Violet Harbor keeper for the code today."
    fact = "The Violet Harbor code today is 4721."
    text = document_with_facts(40, {4: decoy, 33: fact})
    document = _store(session, monkeypatch, text, 120, 3)
    answer = engine.ask(session, document, "What is the violet harbor code today?", strategy="tree", model=MODEL)
    actions = [step["action"] for step in answer.trace]
    assert "revert" in actions
    assert actions[-1] == "answer"
    assert "4721" in answer.answer
    assert any(c["quote"] == fact for c in answer.citations)
    reverted = [s for s in answer.trace if s["action"] == "revert"]
    leaf_prompts = [p for p in doubles.calls if "You opened this passage" in p]
    assert any(decoy in p for p in leaf_prompts) and reverted


def test_step_limit_gives_best_partial_answer(session, monkeypatch) -> None:
    text = document_with_facts(30, {})
    document = _store(session, monkeypatch, text, 120, 3)
    monkeypatch.setenv("LONGREAD_NAV_MAX_STEPS", "3")
    get_settings.cache_clear()
    answer = engine.ask(session, document, "What colour was the choir's festival banner?", strategy="tree", model=MODEL)
    assert answer.trace[-1]["action"] in {"step_limit", "exhausted"}
    assert answer.answer == "The answer could not be found."


def test_second_run_is_served_from_the_cache(session, monkeypatch) -> None:
    text = document_with_facts(20, {12: "The code of the violet harbor is 4721."})
    document = _store(session, monkeypatch, text, 120, 4)
    first = engine.ask(session, document, "What is the code of the violet harbor?", strategy="tree", model=MODEL)
    assert first.llm_calls > 0
    doubles.calls.clear()
    second = engine.ask(session, document, "What is the code of the violet harbor?", strategy="tree", model=MODEL)
    assert second.llm_calls == 0 and second.cached_calls > 0
    assert doubles.calls == []
    assert second.answer == first.answer


@pytest.mark.parametrize(
    ("text", "action", "child"),
    [
        ("Reasoning: part 2 fits.\nAction: OPEN 2", "open", 2),
        ("It is in part three.\naction: open [3]", "open", 3),
        ("Reasoning: no.\nAction: REVERT", "revert", None),
        ("Reasoning: yes.\nAction: ANSWER It is 42 [S3]", "answer", None),
        ("I am not sure what to do", "invalid", None),
    ],
)
def test_parse_decision(text: str, action: str, child: int | None) -> None:
    decision = parse_decision(text)
    assert decision.action == action
    assert decision.child == child


def eager_base_model(messages: list[dict[str, str]]) -> str:
    """A small base model on the completion prompts: it always opens the first part and answers at every
    leaf with the same invented-or-not number, as tiny models do instead of going back."""
    prompt = messages[-1]["content"]
    if "Key facts in the" in prompt:
        body = prompt.rsplit("Key facts in the", 1)[0]
        return body.strip().splitlines()[-1][:200]
    if "or REVERT when the passage" in prompt:
        leaf = prompt.rsplit("Passage [S", 1)[1].split("]", 1)[0]
        return f" ANSWER 4721 [S{leaf}]"
    if "routed to the numbered part" in prompt:
        return " OPEN 1"
    return "not stated"


def test_a_base_model_answer_not_copied_from_the_leaf_is_reverted(session, monkeypatch) -> None:
    fact = "The code of the violet harbor is 4721."
    text = document_with_facts(24, {14: fact})
    document = _store(session, monkeypatch, text, 120, 3)
    monkeypatch.setenv("LONGREAD_LLM_PROMPT_STYLE", "completion")
    monkeypatch.setenv("LONGREAD_NAV_MAX_STEPS", "80")  # a depth-first walk over every leaf before the fact
    get_settings.cache_clear()
    model = f"scripted/{__name__}.eager_base_model"
    answer = engine.ask(session, document, "What is the code of the violet harbor?", strategy="tree", model=model)
    leaf_reverts = [s for s in answer.trace if s["action"] == "revert" and s["node"][0] == 0]
    assert leaf_reverts and all("is not in the passage" in s["reasoning"] for s in leaf_reverts)
    assert answer.trace[-1]["action"] == "answer"
    assert "4721" in answer.answer and [c["quote"] for c in answer.citations] == [fact]


def test_a_leaf_reply_is_relayed_from_its_answer_cue_on() -> None:
    from longread.agents.memwalker.navigate import LeafAnswerStream

    pieces: list[str] = []
    relay = LeafAnswerStream(pieces.append)
    for piece in ["Reasoning: the passage", " states it.\nAct", "ion: ANSW", "ER", ":", " The", " code", " is 4721."]:
        relay(piece)
    assert pieces == ["The", " code", " is 4721."] and relay.sent == "The code is 4721."
    going_back: list[str] = []
    relay = LeafAnswerStream(going_back.append)
    for piece in ["Reasoning: no answer here.", "\nAction:", " REVERT"]:
        relay(piece)
    assert going_back == [] and relay.sent == ""


def unlabelled(messages: list[dict[str, str]]) -> str:
    """The shared reader, whose leaf answers leave out the passage's label (the walk adds it)."""
    reply = doubles.reader(messages)
    return re.sub(r"\s*\[S\d+\]", "", reply) if "Action: ANSWER" in reply else reply


@pytest.mark.parametrize("model", [MODEL, "scripted/tests.test_memwalker.unlabelled"])
def test_the_walk_streams_its_answer_but_not_the_reasoning_or_the_leaves_it_left(session, monkeypatch, model) -> None:
    decoy = "Every sailor asks the Violet Harbor keeper for the code today."
    fact = "The Violet Harbor code today is 4721."
    document = _store(session, monkeypatch, document_with_facts(40, {4: decoy, 33: fact}), 120, 3)
    pieces: list[str] = []
    answer = engine.ask(
        session,
        document,
        "What is the violet harbor code today?",
        strategy="tree",
        model=model,
        on_answer_text=pieces.append,
    )
    assert "revert" in [step["action"] for step in answer.trace] and "4721" in answer.answer
    # Word by word as the scripted model writes it, the label last: the same text as the stored answer.
    assert len(pieces) > 3 and "".join(pieces) == answer.answer and re.search(r"\[S\d+\]$", answer.answer)
    assert not any("Reasoning" in p or "Action" in p or "passage" in p for p in pieces)


def test_a_node_is_summarised_once_and_handed_to_its_writer(session, monkeypatch) -> None:
    from longread.agents.memwalker.tree import prepare_tree, summarize_node
    from longread.agents.segments import SegmentTexts
    from longread.llm.client import LLMClient
    from longread.storage.db import insert_new
    from longread.storage.models import table_of

    document = _store(session, monkeypatch, document_with_facts(30, {12: "The code is 4721."}), 120, 3)
    tree = prepare_tree(session, document, MODEL)
    usage = Usage()
    client = LLMClient(MODEL, usage)
    segments = SegmentTexts(session, document.id, tree.scheme)
    rows: list[dict] = []
    assert summarize_node(session, tree, 0, 2, client, segments, write=rows.append)
    assert session.exec(select(func.count()).select_from(TreeNode)).one() == 0  # handed over, not stored
    assert len(rows) == 1 and rows[0]["position"] == 2 and rows[0]["summary"]
    assert insert_new(session, table_of(TreeNode), rows[0])
    assert not insert_new(session, table_of(TreeNode), rows[0] | {"summary": "a duplicate"})  # the first stays
    session.commit()
    assert not summarize_node(session, tree, 0, 2, client, segments)  # stored: no call, no second row
    assert usage.calls == 1
    nodes = session.exec(select(TreeNode)).all()
    assert [(n.level, n.position, n.segment_index) for n in nodes] == [(0, 2, 2)]
    assert nodes[0].summary == rows[0]["summary"]
