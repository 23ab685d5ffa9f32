import pytest

from longread.llm.prompts import PromptError, render_prompt


def test_prompt_renders_named_placeholders() -> None:
    text = render_prompt("chain_manager", unit="notes here", question="Who?")
    assert "notes here" in text and "Question: Who?" in text


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(PromptError, match="question"):
        render_prompt("chain_manager", unit="notes")


def test_missing_prompt_file_is_an_error() -> None:
    with pytest.raises(PromptError, match="no prompt file"):
        render_prompt("no_such_prompt")
