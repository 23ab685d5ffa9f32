"""The reading strategies this server offers, from the one registry (the web page builds its menu here)."""

from __future__ import annotations

from fastapi import APIRouter

from longread.agents import registry
from longread.api.schemas import StrategyOut

router = APIRouter(prefix="/v1", tags=["strategies"])


@router.get("/strategies", response_model=list[StrategyOut])
def list_strategies() -> list[StrategyOut]:
    """Every strategy a question or summary may name (besides `auto`, the planner's choice)."""
    return [
        StrategyOut(
            name=s.name,
            title=s.title,
            answers_questions=True,
            summarises=s.summarise is not None,
            needs_local_model=s.needs_local_model,
        )
        for s in registry.STRATEGIES
    ]
