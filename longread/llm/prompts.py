"""Prompt files in `prompts/`, rendered strictly: a missing variable is an error, not an empty string."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class PromptError(KeyError):
    """A prompt file is missing or was rendered without one of its variables."""


@lru_cache(maxsize=64)
def _template(name: str) -> jinja2.Template:
    try:
        source = resources.files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt file prompts/{name}.txt") from exc
    return _ENV.from_string(source)


def render_prompt(name: str, **variables: object) -> str:
    """Render prompts/<name>.txt with its named placeholders."""
    try:
        return _template(name).render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt '{name}': {exc.message}") from exc
