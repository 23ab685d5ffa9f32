"""Measured model speeds on this deployment, kept as running sums per (model, kind).

Every finished job adds its uncached calls (tokens, completion cap, seconds) here, so the planner's
time estimates follow the machine and provider actually in use instead of fixed guesses. The sums
are additive, so concurrent jobs add with one UPDATE each and no job reads before it writes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from longread.llm.usage import CallSample
from longread.storage.models import ModelSpeed, table_of, utcnow

log = logging.getLogger(__name__)

CALL = "call"
SCAN = "scan"
FILL = "fill:"
"""Prefix of the rows that keep calls by their completion cap: calls of one kind share a cap (a leaf
summary, a navigation decision, an answer), so each cap's fill is that kind of call's."""

_SUMS = ("n", "seconds", "prompt_tokens", "completion_tokens", "pp", "cc", "pc", "ps", "cs", "requested")


def _sums(samples: Iterable[CallSample]) -> dict[str, float]:
    out = dict.fromkeys(_SUMS, 0.0)
    for s in samples:
        p, c, t = float(s.prompt_tokens), float(s.completion_tokens), float(s.seconds)
        out["n"] += 1
        out["seconds"] += t
        out["prompt_tokens"] += p
        out["completion_tokens"] += c
        out["pp"] += p * p
        out["cc"] += c * c
        out["pc"] += p * c
        out["ps"] += p * t
        out["cs"] += c * t
        out["requested"] += float(s.max_tokens)
    return out


@lru_cache(maxsize=1)
def _increment_statement() -> Update:
    """The sums' UPDATE of one model's rows of some kinds, built once: every tree node adds to two rows,
    and building the expression each time cost more CPU than the database spent executing it."""
    table = table_of(ModelSpeed)
    values: dict[str, Any] = {name: table.c[name] + bindparam(f"add_{name}") for name in _SUMS}
    values["updated_at"] = bindparam("now")
    where = (table.c.model == bindparam("row_model"), table.c.kind.in_(bindparam("row_kinds", expanding=True)))
    return update(table).where(*where).values(values).returning(table.c.kind)


def add_sums(
    session: Session, model: str, kinds: str | Sequence[str], sums: dict[str, float], *, commit: bool = True
) -> None:
    """Add the same sums to the rows of (model, kind) for each kind: one UPDATE for all of them, and a row
    created on first use (a concurrent creator is retried once).

    With `commit=False` existing rows' increments are left for the caller's next commit; creating a
    row still commits (a concurrent creator's conflict must roll back only that insert).
    """
    if not sums.get("n"):
        return
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    params: dict[str, object] = {f"add_{name}": sums[name] for name in _SUMS}
    params |= {"add_n": int(sums["n"]), "row_model": model, "now": utcnow()}
    for _ in range(2):
        updated = set(session.execute(_increment_statement(), params | {"row_kinds": kinds}).scalars())
        kinds = [kind for kind in kinds if kind not in updated]
        if not kinds:
            if commit:
                session.commit()
            return
        session.commit()  # what is pending so far stays, whatever the inserts below meet
        created = []
        for kind in kinds:
            row = ModelSpeed(model=model, kind=kind, n=int(sums["n"]))
            for name in _SUMS[1:]:
                setattr(row, name, sums[name])
            session.add(row)
            try:
                session.commit()
                created.append(kind)
            except IntegrityError:  # created concurrently: add to that row instead
                session.rollback()
        kinds = [kind for kind in kinds if kind not in created]
        if not kinds:
            return


def record_calls(session: Session, samples: Iterable[CallSample], *, commit: bool = True) -> None:
    """Add a job's call timings, per model. Never fails the job: a speed is a hint, not a result.

    `commit=False` leaves the increments to the caller's next commit (a tree node's usage update), so
    a node's bookkeeping is one transaction instead of three.
    """
    by_model: dict[str, list[CallSample]] = defaultdict(list)
    for sample in samples:
        if sample.model:
            by_model[sample.model].append(sample)
    try:
        for model, rows in by_model.items():
            by_cap: dict[int, list[CallSample]] = defaultdict(list)
            for row in rows:
                if row.max_tokens:
                    by_cap[row.max_tokens].append(row)
            by_kind = {CALL: _sums(rows)} | {f"{FILL}{cap}": _sums(capped) for cap, capped in by_cap.items()}
            # Kinds adding the same sums share one UPDATE: a tree node's calls all have one cap, so its
            # call row and its cap's row take one statement.
            kinds_by_sums: dict[tuple[float, ...], list[str]] = defaultdict(list)
            for kind, sums in by_kind.items():
                kinds_by_sums[tuple(sums.values())].append(kind)
            for kinds in kinds_by_sums.values():
                add_sums(session, model, kinds, by_kind[kinds[0]], commit=commit)
    except SQLAlchemyError:
        session.rollback()
        log.warning("could not record model speeds", exc_info=True)


def record_scan(session: Session, model: str, tokens: int, seconds: float) -> None:
    """Add one forward-pass reading (attention scan) of `tokens` in `seconds` by the in-process model."""
    if tokens <= 0 or seconds <= 0:
        return
    try:
        add_sums(
            session, model, SCAN, {**dict.fromkeys(_SUMS, 0.0), "n": 1, "seconds": seconds, "prompt_tokens": tokens}
        )
    except SQLAlchemyError:
        session.rollback()
        log.warning("could not record the scan speed", exc_info=True)


def load(session: Session, model: str, kind: str = CALL) -> ModelSpeed | None:
    return session.exec(select(ModelSpeed).where(ModelSpeed.model == model, ModelSpeed.kind == kind)).first()


def fills(session: Session, model: str, min_calls: int) -> dict[int, float]:
    """Completion cap -> share of it this model wrote, over caps with at least `min_calls` measured calls."""
    rows = session.exec(
        select(ModelSpeed).where(ModelSpeed.model == model, col(ModelSpeed.kind).startswith(FILL))
    ).all()
    out: dict[int, float] = {}
    for row in rows:
        if row.n >= min_calls and row.requested > 0:
            out[int(row.kind[len(FILL) :])] = row.completion_tokens / row.requested
    return out
