"""Follow-up questions: retrieval reads the question rewritten with the earlier turns, and the
answering prompt shows those turns; a first question's prompts are those of a question asked alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longread import engine
from longread.conversation import Turn, conversation_context, recent_turns, standalone_question
from longread.llm import LLMClient
from longread.storage.db import session_scope
from longread.storage.models import Conversation
from longread.testing import doubles
from longread.testing.factories import document_with_facts

FACT = "The lighthouse keeper at Skerry Point is named Ingrid Vass."
MODEL = "scripted/tests.test_conversation.careful_reader"
PROMPTS: list[str] = []


def careful_reader(messages: list[dict[str, str]]) -> str:
    """Rewrites follow-ups like the shared double; answers with the passage sentence sharing most question words."""
    prompt = messages[-1]["content"]
    PROMPTS.append(prompt)
    if prompt.startswith("Below is a conversation about a long document"):
        return doubles.standalone(prompt)
    question = doubles.words(prompt.rsplit("Question: ", 1)[-1].split("\n")[0])
    best = (0, "", "")
    for label, passage in re.findall(r"^\[S(\d+)\] (.*)$", prompt, re.M):
        for sentence in re.split(r"(?<=[.!?])\s+", passage):
            overlap = len(question & doubles.words(sentence))
            if overlap > best[0]:
                best = (overlap, sentence, label)
    return f"{best[1]} [S{best[2]}]" if best[0] else "The passages do not say."


def _answering_prompts(since: int) -> list[str]:
    return [p for p in PROMPTS[since:] if "were taken from it" in p]


def test_a_follow_up_reads_the_rewritten_question_and_answers_with_the_turns(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_LLM", MODEL)
    get_settings.cache_clear()
    text = document_with_facts(12, {8: FACT}, seed=5)
    with session_scope() as session:
        document, _ = engine.store_text(session, filename="coast.txt", text=text)
        thread = Conversation(document_id=document.id, title="keeper")
        session.add(thread)
        session.commit()

        before = len(PROMPTS)
        first = engine.ask(
            session,
            document,
            "Who is the lighthouse keeper at Skerry Point?",
            strategy="bm25",
            conversation_id=thread.id,
        )
        assert first.conversation_id == thread.id and "Ingrid Vass" in first.answer
        (prompt,) = _answering_prompts(before)
        assert "Earlier question" not in prompt  # nothing to follow up on yet
        assert not any(p.startswith("Below is a conversation") for p in PROMPTS[before:])

        before = len(PROMPTS)
        second = engine.ask(session, document, "What is it named?", strategy="bm25", conversation_id=thread.id)
        rewrite = [p for p in PROMPTS[before:] if p.startswith("Below is a conversation")]
        assert len(rewrite) == 1 and "Question: Who is the lighthouse keeper at Skerry Point?" in rewrite[0]
        (prompt,) = _answering_prompts(before)
        assert "Earlier question: Who is the lighthouse keeper at Skerry Point?" in prompt
        assert "Earlier answer:" in prompt and "[S" not in prompt.split("Earlier answer:")[1].split("\n")[0]
        # Retrieval read the standalone question: the follow-up alone shares no word with the fact.
        follow_up = second.trace[0]
        assert follow_up["stage"] == "follow-up" and "lighthouse keeper" in follow_up["question"]
        assert "Ingrid Vass" in second.answer and second.question == "What is it named?"
        assert [t.question for t in recent_turns(session, thread.id)] == [first.question, second.question]


def test_standalone_question_without_turns_makes_no_call(env: Path) -> None:
    client = LLMClient()
    assert standalone_question(client, [], "Why?") == "Why?"
    assert client.usage.calls == 0
    assert conversation_context([]) == ""
    context = conversation_context([Turn("Who?", "Ingrid.")])
    assert "Earlier question: Who?" in context and "Earlier answer: Ingrid." in context


SIGNAL = "The signal code of the lighthouse keeper at Skerry Point is 4721."


def test_a_follow_up_over_the_tree_answers_with_the_turns_and_navigates_by_the_rewritten_question(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.config import get_settings

    monkeypatch.setenv("LONGREAD_SEGMENT_TOKENS", "150")
    get_settings.cache_clear()
    model = "scripted/longread.testing.doubles.reader"
    with session_scope() as session:
        document, _ = engine.store_text(session, filename="coast.txt", text=document_with_facts(16, {11: SIGNAL}))
        thread = Conversation(document_id=document.id, title="signal")
        session.add(thread)
        session.commit()
        first = engine.ask(
            session,
            document,
            "What is the signal code of the lighthouse keeper at Skerry Point?",
            strategy="tree",
            model=model,
            conversation_id=thread.id,
        )
        assert "4721" in first.answer
        assert not any("Earlier question" in p for p in doubles.calls)

        doubles.calls.clear()
        second = engine.ask(
            session, document, "And what is it?", strategy="tree", model=model, conversation_id=thread.id
        )
    assert "4721" in second.answer and second.trace[0]["stage"] == "follow-up"
    leaves = [p for p in doubles.calls if "You opened this passage" in p]
    earlier = "Earlier question: What is the signal code of the lighthouse keeper at Skerry Point?"
    assert leaves and all(earlier in p for p in leaves)
    # The answer's labels are not carried into the new walk: they name passages of the earlier reading.
    assert all("[S" not in p.split("Earlier answer:")[1].split("\n")[0] for p in leaves)
    # Choosing among summaries reads the rewritten question alone.
    triage = [p for p in doubles.calls if "walking down its table of summaries" in p]
    assert triage and not any("Earlier question" in p for p in triage)
    assert all("Question: And what is the signal code of the lighthouse keeper at Skerry Point?" in p for p in triage)


def test_the_hosted_answer_to_attention_evidence_sees_the_turns(env: Path) -> None:
    from longread.agents.attention.strategy import _answer_hosted

    context = conversation_context([Turn("Who keeps the light at Skerry Point?", "Ingrid Vass.")])
    passages = [{"number": 1, "text": "Ingrid Vass came to the light in 1871."}]
    doubles.calls.clear()
    answer, numbers = _answer_hosted(
        "scripted/longread.testing.doubles.reader", "When did Ingrid Vass come?", passages, None, None, context
    )
    (prompt,) = doubles.calls
    assert "Earlier question: Who keeps the light at Skerry Point?" in prompt
    assert prompt.index("Earlier answer: Ingrid Vass.") < prompt.index("Question: When did Ingrid Vass come?")
    assert "1871" in answer and numbers == [1]


def test_the_hosted_answer_to_shortlist_evidence_sees_the_turns(env: Path) -> None:
    from longread.agents.baselines import Unit
    from longread.agents.shortlist.strategy import Candidate, answer_hosted

    text = "The miller walked along the harbour wall. Ingrid Vass came to the light in 1871."
    evidence = [Candidate(0, Unit(0, 42, len(text), 12), 1, 1, 1)]
    context = conversation_context([Turn("Who keeps the light at Skerry Point?", "Ingrid Vass.")])
    client = LLMClient("scripted/longread.testing.doubles.reader", use_cache=False)
    doubles.calls.clear()
    answer, numbers = answer_hosted(client, "When did Ingrid Vass come?", text, evidence, context)
    (prompt,) = doubles.calls
    assert prompt.startswith("The numbered passages below")
    assert "Earlier question: Who keeps the light at Skerry Point?" in prompt
    assert prompt.index("Earlier answer: Ingrid Vass.") < prompt.index("Question: When did Ingrid Vass come?")
    assert "1871" in answer and numbers == [1]
    doubles.calls.clear()
    answer_hosted(client, "When did Ingrid Vass come?", text, evidence)  # a first question: no turns shown
    assert "Earlier question" not in doubles.calls[0]


def test_a_follow_up_over_the_shortlist_answers_with_the_turns_and_retrieves_by_the_rewritten_question(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole shortlist reader through the engine; the attention re-ranking (the real local model,
    tested in its own tier) is replaced by word overlap, and the queries retrieval saw are kept."""
    pytest.importorskip("torch")
    from longread.agents.shortlist import index as index_module
    from longread.agents.shortlist import rerank as rerank_module
    from longread.agents.shortlist import strategy

    queries: list[str] = []
    real_shortlist = strategy.shortlist

    def shortlist(index: object, query: str, depth: int, size: int) -> object:
        queries.append(query)
        return real_shortlist(index, query, depth, size)  # type: ignore[arg-type]  # a PassageIndex, passed through

    def overlap(question: str, passages: list[str], **_: object) -> rerank_module.Reranking:
        asked = doubles.words(question)
        return rerank_module.Reranking([float(len(asked & doubles.words(p))) for p in passages], 0, 0.0)

    monkeypatch.setattr(strategy, "shortlist", shortlist)
    monkeypatch.setattr(rerank_module, "rerank", overlap)
    monkeypatch.setattr(rerank_module, "load_reranker", lambda: None)
    model = "scripted/longread.testing.doubles.reader"
    index_module.forget_indexes()
    with session_scope() as session:
        document, _ = engine.store_text(session, filename="coast.txt", text=document_with_facts(16, {11: SIGNAL}))
        thread = Conversation(document_id=document.id, title="signal")
        session.add(thread)
        session.commit()
        first = engine.ask(
            session,
            document,
            "What is the signal code of the lighthouse keeper at Skerry Point?",
            strategy="shortlist",
            model=model,
            conversation_id=thread.id,
        )
        assert "4721" in first.answer and first.citations
        assert not any("Earlier question" in p for p in doubles.calls)

        doubles.calls.clear()
        queries.clear()
        second = engine.ask(
            session, document, "And what is it?", strategy="shortlist", model=model, conversation_id=thread.id
        )
    index_module.forget_indexes()
    assert "4721" in second.answer and second.trace[0]["stage"] == "follow-up"
    assert queries and all("signal code of the lighthouse keeper" in q for q in queries)
    (prompt,) = [p for p in doubles.calls if p.startswith("The numbered passages below")]
    assert "Earlier question: What is the signal code of the lighthouse keeper at Skerry Point?" in prompt
    assert "Question: And what is the signal code of the lighthouse keeper at Skerry Point?" in prompt
