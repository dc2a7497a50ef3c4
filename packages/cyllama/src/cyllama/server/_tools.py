"""Tool calls for any model: the tools go into the prompt, and a grammar built from their
JSON schemas constrains the reply to a call of one of them (or, with ``tool_choice="auto"``, to
either a call or a plain answer), so a call always names a tool and has valid arguments."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._errors import invalid
from ._responses import ToolCall
from ._schemas import ChatCompletionRequest, ToolChoice

_INSTRUCTIONS = """You can call tools. Reply with one JSON object only.
To call a tool: {{"name": "<tool name>", "arguments": {{<the arguments>}}}}
{answer}
The tools:
{tools}"""
_ANSWER = 'To answer without a tool: {"content": "<your answer>"}'


@dataclass
class ToolPlan:
    """How one chat request uses its tools: the messages to render, the schema of the reply."""

    messages: list[dict[str, str]]
    schema: dict[str, Any] | None = None
    names: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.schema is not None

    @classmethod
    def make(cls, body: ChatCompletionRequest, messages: list[dict[str, str]]) -> ToolPlan:
        rendered = cls._history(body, messages)
        tools = body.tools or []
        choice = body.tool_choice or ("auto" if tools else "none")
        if not tools or choice == "none":
            if isinstance(choice, ToolChoice) or choice == "required":
                raise invalid("tool_choice needs tools", "tool_choice")
            return cls(rendered)
        if body.response_format is not None and body.response_format.type != "text":
            raise invalid("use either tools or a JSON response_format, not both",
                          "response_format")
        by_name = {t.function.name: t.function for t in tools}
        if len(by_name) != len(tools):
            raise invalid("tool names must be unique", "tools")
        if isinstance(choice, ToolChoice):
            if choice.function.name not in by_name:
                raise invalid(f"tool_choice names {choice.function.name!r}, which is not "
                              "among the tools", "tool_choice")
            offered = [by_name[choice.function.name]]
        else:
            offered = list(by_name.values())
        calls = [{"type": "object", "properties": {"name": {"const": f.name},
                                                   "arguments": f.parameters},
                  "required": ["name", "arguments"], "additionalProperties": False}
                 for f in offered]
        options = list(calls)
        if choice == "auto":
            options.append({"type": "object", "properties": {"content": {"type": "string"}},
                            "required": ["content"], "additionalProperties": False})
        listing = "\n".join(
            f"- {f.name}: {f.description or '(no description)'}\n"
            f"  arguments (JSON schema): {json.dumps(f.parameters, ensure_ascii=False)}"
            for f in offered)
        note = _INSTRUCTIONS.format(answer=_ANSWER if choice == "auto" else
                                    "You must call a tool.", tools=listing)
        if rendered and rendered[0]["role"] == "system":
            rendered[0] = {"role": "system", "content": rendered[0]["content"] + "\n\n" + note}
        else:
            rendered.insert(0, {"role": "system", "content": note})
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return cls(rendered, schema, {f.name for f in offered})

    @staticmethod
    def _history(body: ChatCompletionRequest, messages: list[dict[str, str]]
                 ) -> list[dict[str, str]]:
        """Earlier tool calls and tool results as text every chat template can render."""
        out = []
        for m, text in zip(body.messages, messages, strict=True):
            if m.role == "tool":
                out.append({"role": "user", "content": f"Tool result"
                            f"{' (' + m.tool_call_id + ')' if m.tool_call_id else ''}: "
                            f"{text['content']}"})
            elif m.role == "assistant" and m.tool_calls:
                calls = [{"name": c.function.name, "arguments": _loads(c.function.arguments)}
                         for c in m.tool_calls]
                out.append({"role": "assistant", "content": json.dumps(
                    calls[0] if len(calls) == 1 else calls, ensure_ascii=False)})
            elif m.role == "developer":
                out.append({"role": "system", "content": text["content"]})
            else:
                out.append(dict(text))
        return out

    def reply(self, text: str) -> tuple[str | None, list[ToolCall] | None]:
        """(content, tool_calls) of a constrained reply; a reply cut short (max_tokens) is
        returned as content."""
        try:
            value = json.loads(text)
        except ValueError:
            return text, None
        if isinstance(value, dict) and value.get("name") in self.names:
            return None, [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                           "function": {"name": value["name"], "arguments": json.dumps(
                               value.get("arguments", {}), ensure_ascii=False)}}]
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return value["content"], None
        return text, None


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
