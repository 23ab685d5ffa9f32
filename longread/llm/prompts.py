"""Prompt files in `prompts/`, rendered strictly: a missing variable is an error, not an empty string.

`prompts/<name>.txt` is the instruction prompt every chat model gets. A base (not instruction-tuned)
model continues text rather than following instructions, so a prompt may also have a completion variant,
`prompts/completion/<name>.txt`: worked examples ending in a cue ("Answer:") that the model continues.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import jinja2

# `prompts/` sits beside the `longread` package, in a checkout and in an installed wheel alike; a path
# (not importlib.resources) keeps a same-named namespace package elsewhere on sys.path from shadowing it.
PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class PromptError(KeyError):
    """A prompt file is missing or was rendered without one of its variables."""


@lru_cache(maxsize=64)
def _source(name: str) -> str:
    try:
        return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt file prompts/{name}.txt") from exc


@lru_cache(maxsize=64)
def _template(name: str) -> jinja2.Template:
    return _ENV.from_string(_source(name))


COMPLETION = "completion"


def has_completion_variant(name: str) -> bool:
    """Whether prompts/completion/<name>.txt exists (base models then get it instead of the chat prompt)."""
    return (PROMPTS_DIR / COMPLETION / f"{name}.txt").is_file()


def render_prompt(name: str, **variables: object) -> str:
    """Render prompts/<name>.txt with its named placeholders."""
    try:
        return _template(name).render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt '{name}': {exc.message}") from exc


def prompt_fingerprint(names: tuple[str, ...], *, completion: bool) -> str:
    """A short hash of the prompt files a model gets for these names (their completion variants where
    `completion` and they exist): stored work built with other prompts is then never mistaken for current."""
    digest = hashlib.sha256()
    for name in names:
        variant = f"{COMPLETION}/{name}" if completion and has_completion_variant(name) else name
        digest.update(variant.encode() + b"\0" + _source(variant).encode() + b"\0")
    return digest.hexdigest()[:12]
