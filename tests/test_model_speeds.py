"""Measured model speeds: one UPDATE adds a node's calls to its call row and its cap's row, rows appear on
first use and again after they were removed, and mixed caps keep their own rows."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import select

from longread.llm.usage import CallSample
from longread.storage import speeds
from longread.storage.models import ModelSpeed

MODEL = "scripted/longread.testing.doubles.reader"


def _rows(session) -> dict[str, ModelSpeed]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return {row.kind: row for row in session.exec(select(ModelSpeed).where(ModelSpeed.model == MODEL))}


def _sample(prompt: int, completion: int, seconds: float, cap: int = 300) -> CallSample:
    return CallSample(MODEL, cap, prompt, completion, seconds)


def test_calls_of_one_cap_add_the_same_sums_to_the_call_row_and_the_cap_row(session) -> None:  # type: ignore[no-untyped-def]
    speeds.record_calls(session, [_sample(1000, 50, 0.2)])
    speeds.record_calls(session, [_sample(800, 40, 0.1), _sample(600, 30, 0.1)], commit=False)
    session.commit()
    rows = _rows(session)
    assert set(rows) == {"call", "fill:300"}
    for row in rows.values():
        assert row.n == 3
        assert row.prompt_tokens == 2400 and row.completion_tokens == 120
        assert abs(row.seconds - 0.4) < 1e-9
        assert row.pp == 1000**2 + 800**2 + 600**2


def test_a_removed_row_is_created_again_while_the_other_keeps_adding(session) -> None:  # type: ignore[no-untyped-def]
    speeds.record_calls(session, [_sample(1000, 50, 0.2)])
    session.execute(delete(ModelSpeed).where(ModelSpeed.kind == "fill:300"))
    session.commit()
    speeds.record_calls(session, [_sample(500, 20, 0.1)])
    rows = _rows(session)
    assert rows["call"].n == 2 and rows["call"].prompt_tokens == 1500
    assert rows["fill:300"].n == 1 and rows["fill:300"].prompt_tokens == 500


def test_calls_of_several_caps_keep_a_row_per_cap(session) -> None:  # type: ignore[no-untyped-def]
    speeds.record_calls(session, [_sample(1000, 50, 0.2, cap=300), _sample(400, 10, 0.05, cap=16)])
    rows = _rows(session)
    assert rows["call"].n == 2 and rows["call"].prompt_tokens == 1400
    assert rows["fill:300"].n == 1 and rows["fill:300"].prompt_tokens == 1000
    assert rows["fill:16"].n == 1 and rows["fill:16"].completion_tokens == 10
