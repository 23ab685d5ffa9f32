"""Answers and summaries: text, verified citations, navigation trace, calls, cost and latency."""

from __future__ import annotations

from fastapi import APIRouter, Response

from longread.api.deps import CurrentPrincipal, SessionDep, releases_session
from longread.api.schemas import AnswerOut, json_response
from longread.api.service import owned_answer

router = APIRouter(prefix="/v1/answers", tags=["answers"])


@router.get("/{answer_id}", response_model=AnswerOut)
@releases_session
def get_answer(answer_id: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    """Get an answer (or summary) with its citations (segment, offsets, quote) and trace."""
    return json_response(AnswerOut.of(owned_answer(session, principal, answer_id)))
