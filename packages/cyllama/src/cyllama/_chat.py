"""Chat templates: llama.cpp's built-in formats first, Jinja (if installed) for the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _core

__all__ = ["Message", "builtin_templates", "default_template", "render"]

Message = Mapping[str, str]

# Model families whose GGUF files often come without a chat template (converted without one,
# or stripped): the built-in llama.cpp format they were trained with.
_BY_ARCHITECTURE = {
    "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma",
    "qwen2": "chatml", "qwen3": "chatml", "qwen2moe": "chatml", "qwen3moe": "chatml",
    "phi3": "phi3", "llama4": "llama4", "exaone": "exaone3", "exaone4": "exaone4",
    "granite": "granite", "command-r": "command-r", "cohere2": "command-r",
}


def default_template(architecture: str) -> str:
    """The built-in format for a model without a template: its family's, else ChatML (as
    llama.cpp's own tools fall back to)."""
    return _BY_ARCHITECTURE.get(architecture, "chatml")


def builtin_templates() -> list[str]:
    """Names of the chat formats llama.cpp renders itself (``template=`` accepts them)."""
    return list(_core.builtin_chat_templates())


def check_messages(messages: object) -> list[tuple[str, str]]:
    """``messages`` as (role, content) pairs; TypeError/ValueError naming a bad one."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
    if not messages:
        raise ValueError("messages is empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(f"messages[{i}] must be a dict, not {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str) or not role:
            raise ValueError(f"messages[{i}] needs a non-empty string 'role'")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}] needs a string 'content'")
        out.append((role, content))
    return out


def _jinja(template: str, messages: list[tuple[str, str]], add_generation_prompt: bool,
           bos: str, eos: str) -> str:
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ValueError(
            "this chat template is not one of llama.cpp's built-in formats and rendering it "
            "needs Jinja: pip install jinja2 (or pass template= one of "
            f"{', '.join(builtin_templates())})") from None

    def raise_exception(message: str) -> None:
        raise ValueError(f"the chat template refused the messages: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return str(env.from_string(template).render(
            messages=[{"role": r, "content": c} for r, c in messages],
            add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos))
    except TemplateError as e:
        raise ValueError(f"the chat template failed to render: {e}") from None


def render(template: str, messages: Sequence[Message], *, add_generation_prompt: bool,
           bos: str = "", eos: str = "", **_: Any) -> str:
    """The prompt text of ``messages`` under ``template`` (a built-in name or Jinja text)."""
    pairs = check_messages(messages)
    text = _core.apply_chat_template(template, pairs, add_generation_prompt)
    if text is not None:
        return str(text)
    if "{" not in template:
        raise ValueError(f"unknown chat template name {template!r}; built-in: "
                         f"{', '.join(builtin_templates())}")
    return _jinja(template, pairs, add_generation_prompt, bos, eos)
