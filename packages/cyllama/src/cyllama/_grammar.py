"""Constrained output: GBNF grammars, and JSON schemas converted to GBNF.

llama.cpp enforces a GBNF grammar while sampling: every token that would leave the language is
masked out, so the output always parses. :meth:`Grammar.from_json_schema` writes the grammar of
the JSON documents a schema accepts (the keywords listed in :data:`SUPPORTED` and annotations;
a constraint keyword a grammar cannot express raises ``ValueError`` instead of being ignored).

Whitespace between JSON tokens is bounded (a space, or a newline and up to 16 spaces or tabs)
and numbers have at most 16 digits, so a model cannot wander forever inside the structure; give
strings a ``maxLength`` and arrays a ``maxItems`` for the same guarantee on content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SUPPORTED", "Grammar"]

#: The JSON schema keywords that shape the grammar.
SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "minLength", "maxLength", "enum", "const", "anyOf", "oneOf",
    "allOf", "$ref", "$defs", "definitions", "format",
})
# Annotations: no effect on what is valid.
_IGNORED = frozenset({
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "discriminator", "nullable",
})

_PRIMITIVES = {
    "ws": r'| " " | "\n" [ \t]{0,16}',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": r'"\"" char* "\""',
    "integer": r'"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": r'"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": r'"true" | "false"',
    "null": r'"null"',
    "value": r"object | array | string | number | boolean | null",
    "object": r'"{" ws (string ws ":" ws value (ws "," ws string ws ":" ws value)*)? ws "}"',
    "array": r'"[" ws (value (ws "," ws value)*)? ws "]"',
}
_PRIMITIVE_DEPS = {
    "string": ["char"], "value": ["object", "array", "string", "number", "boolean", "null"],
    "object": ["ws", "string", "value"], "array": ["ws", "value"],
}
_FORMATS = {
    "date": r'"\"" [0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]) '
            r'"\""',
    "time": r'"\"" ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
            r'("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])? "\""',
    "date-time": r'"\"" [0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" '
                 r'[01]) "T" ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] '
                 r'("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]) "\""',
    "uuid": r'"\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" '
            r'[0-9a-fA-F]{12} "\""',
}


def _literal(text: str) -> str:
    """A GBNF string literal matching exactly ``text``."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _repeat(item: str, lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{item}{{{lo},}}" if lo else f"{item}*"
    return f"{item}{{{lo},{hi}}}"


class _Converter:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.refs: dict[str, str] = {}  # $ref -> rule name

    def primitive(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = _PRIMITIVES[name]
            for dep in _PRIMITIVE_DEPS.get(name, []):
                self.primitive(dep)
        return name

    def add(self, hint: str, body: str) -> str:
        name = re.sub(r"[^A-Za-z0-9-]+", "-", hint).strip("-") or "rule"
        if name in _PRIMITIVES:
            name += "-"
        candidate, i = name, 1
        while candidate in self.rules and self.rules[candidate] != body:
            i += 1
            candidate = f"{name}{i}"
        self.rules[candidate] = body
        return candidate

    def resolve(self, ref: str) -> tuple[str, Mapping[str, Any]]:
        if not ref.startswith("#/"):
            raise ValueError(f"$ref {ref!r}: only references inside the schema (#/...) are "
                             "supported")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"$ref {ref!r} points to nothing in the schema")
            node = node[part]
        if not isinstance(node, Mapping):
            raise ValueError(f"$ref {ref!r} does not point to a schema")
        return ref.rsplit("/", 1)[-1], node

    def visit(self, schema: Any, hint: str) -> str:
        """A GBNF expression (usually a rule name) for the values ``schema`` accepts."""
        if schema is True or schema == {}:
            return self.primitive("value")
        if schema is False:
            raise ValueError(f"{hint}: the schema `false` accepts nothing")
        if not isinstance(schema, Mapping):
            raise TypeError(f"{hint}: a schema must be a dict or a bool, not "
                            f"{type(schema).__name__}")
        unknown = sorted(set(schema) - SUPPORTED - _IGNORED)
        if unknown:
            raise ValueError(f"{hint}: JSON schema keyword(s) {', '.join(unknown)} cannot be "
                             "enforced by a grammar (supported: "
                             f"{', '.join(sorted(SUPPORTED))})")
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref not in self.refs:
                name, target = self.resolve(ref)
                rule = self.add(name, "")  # reserve the name: the target may refer to itself
                self.refs[ref] = rule
                self.rules[rule] = self.visit(target, name)
            return self.refs[ref]
        if "const" in schema:
            return self.add(hint, _literal(json.dumps(schema["const"], ensure_ascii=False)))
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise ValueError(f"{hint}: enum must be a non-empty list")
            return self.add(hint, " | ".join(_literal(json.dumps(v, ensure_ascii=False))
                                             for v in values))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = schema[key]
                if not isinstance(options, list) or not options:
                    raise ValueError(f"{hint}: {key} must be a non-empty list")
                alts = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(options)]
                return self.add(hint, " | ".join(alts))
        if "allOf" in schema:
            return self.visit(self.merge(schema, hint), hint)
        types = schema.get("type")
        if isinstance(types, list):
            if not types:
                raise ValueError(f"{hint}: type must not be an empty list")
            alts = [self.visit({**schema, "type": t}, f"{hint}-{t}") for t in types]
            return self.add(hint, " | ".join(alts))
        if types is None:
            if "properties" in schema or "additionalProperties" in schema:
                types = "object"
            elif "items" in schema or "prefixItems" in schema:
                types = "array"
            else:
                return self.primitive("value")
        if types == "object":
            return self.object(schema, hint)
        if types == "array":
            return self.array(schema, hint)
        if types == "string":
            return self.string(schema, hint)
        if types in ("integer", "number", "boolean", "null"):
            return self.primitive(types)
        raise ValueError(f"{hint}: unknown JSON type {types!r}")

    def merge(self, schema: Mapping[str, Any], hint: str) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, Mapping) and "$ref" in part:
                part = self.resolve(part["$ref"])[1]
            if not isinstance(part, Mapping) or part.get("type", "object") != "object":
                raise ValueError(f"{hint}: allOf is supported for object schemas only")
            merged["type"] = "object"
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            merged["required"] = [*merged.get("required", []), *part.get("required", [])]
        return merged

    def string(self, schema: Mapping[str, Any], hint: str) -> str:
        fmt = schema.get("format")
        if fmt in _FORMATS:
            return self.add(f"{fmt}-string", _FORMATS[fmt])
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        if lo < 0 or (hi is not None and int(hi) < lo):
            raise ValueError(f"{hint}: minLength/maxLength ({lo}, {hi}) is empty")
        if lo == 0 and hi is None:
            return self.primitive("string")
        self.primitive("char")
        return self.add(hint, f'"\\"" {_repeat("char", lo, None if hi is None else int(hi))} "\\""')

    def array(self, schema: Mapping[str, Any], hint: str) -> str:
        ws = self.primitive("ws")
        prefix = schema.get("prefixItems")
        if prefix is not None:
            items = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(prefix)]
            inner = f' {ws} "," {ws} '.join(items)
            return self.add(hint, f'"[" {ws} {inner} {ws} "]"' if items else '"[" ws "]"')
        item = self.visit(schema.get("items", True), f"{hint}-item")
        lo, hi = int(schema.get("minItems", 0)), schema.get("maxItems")
        if lo < 0 or (hi is not None and int(hi) < lo):
            raise ValueError(f"{hint}: minItems/maxItems ({lo}, {hi}) is empty")
        if hi is not None and int(hi) == 0:
            return self.add(hint, f'"[" {ws} "]"')
        rest_hi = None if hi is None else int(hi) - 1
        more = _repeat(f'({ws} "," {ws} {item})', max(lo - 1, 0), rest_hi)
        body = f"{item} {more}"
        if lo == 0:
            body = f"({body})?"
        return self.add(hint, f'"[" {ws} {body} {ws} "]"')

    def object(self, schema: Mapping[str, Any], hint: str) -> str:
        ws = self.primitive("ws")
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(dict.fromkeys(schema.get("required", [])))
        missing = [r for r in required if r not in props]
        extra = schema.get("additionalProperties", not props)
        if missing and extra is False:
            raise ValueError(f"{hint}: required properties {missing} are not in properties")
        if not props:
            if extra is False:
                return self.add(hint, f'"{{" {ws} "}}"')
            value = self.visit(True if extra is True else extra, f"{hint}-value")
            self.primitive("string")
            kv = f'string {ws} ":" {ws} {value}'
            return self.add(hint, f'"{{" {ws} ({kv} ({ws} "," {ws} {kv})*)? {ws} "}}"')
        pairs: dict[str, str] = {}
        for name, sub in props.items():
            value = self.visit(sub, f"{hint}-{name}")
            key = _literal(json.dumps(name, ensure_ascii=False))
            pairs[name] = self.add(f"{hint}-{name}-kv", f'{key} {ws} ":" {ws} {value}')
        req = [pairs[n] for n in props if n in required]
        opt = [pairs[n] for n in props if n not in required]
        sep = f'{ws} "," {ws}'
        if req:
            body = f" {sep} ".join(req) + "".join(f" ({sep} {o})?" for o in opt)
        else:
            alts = []
            for i, first in enumerate(opt):
                alts.append(first + "".join(f" ({sep} {o})?" for o in opt[i + 1:]))
            body = "(" + " | ".join(alts) + ")?"
        return self.add(hint, f'"{{" {ws} {body} {ws} "}}"')


#: The most rules, the deepest nesting of parentheses and the longest chain of rules referring
#: to rules a grammar may have.
MAX_RULES = 20000
MAX_NESTING = 1000
MAX_CHAIN = 1000

_RULE = re.compile(r"(?m)^\s*([A-Za-z0-9-]+)\s*::=")
_NAME = re.compile(r"[A-Za-z0-9-]+")


def _shape(text: str) -> tuple[int, int, dict[str, set[str]]]:
    """(rules, deepest parenthesis nesting, the names each rule refers to) of GBNF text,
    strings, classes and comments skipped."""
    starts = [(m.start(), m.end(), m.group(1)) for m in _RULE.finditer(text)]
    refs: dict[str, set[str]] = {}
    depth = deepest = 0
    for k, (_, body_start, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        seen = refs.setdefault(name, set())
        i = body_start
        while i < end:
            c = text[i]
            if c in "\"[":
                close = "\"" if c == "\"" else "]"
                i += 1
                while i < end and text[i] != close:
                    i += 2 if text[i] == "\\" else 1
            elif c == "#":
                while i < end and text[i] != "\n":
                    i += 1
            elif c == "(":
                depth += 1
                deepest = max(deepest, depth)
            elif c == ")":
                depth -= 1
            elif m := _NAME.match(text, i):
                seen.add(m.group())
                i = m.end()
                continue
            i += 1
    return len(starts), deepest, refs


def _chain(refs: dict[str, set[str]]) -> int:
    """The longest path of references in depth-first order (a rule already on the path or
    already measured is not entered again): how deep a recursive walk of the grammar goes."""
    height: dict[str, int] = {}
    longest = 0
    for start in refs:
        if start in height:
            continue
        on_path = {start}
        stack: list[tuple[str, list[str]]] = [(start, sorted(refs[start]))]
        while stack:
            name, todo = stack[-1]
            while todo and (todo[-1] in on_path or todo[-1] in height or todo[-1] not in refs):
                todo.pop()
            if todo:
                child = todo.pop()
                on_path.add(child)
                stack.append((child, sorted(refs[child])))
                longest = max(longest, len(stack))
                continue
            stack.pop()
            on_path.discard(name)
            height[name] = 1 + max((height.get(r, 0) for r in refs[name] if r in height),
                                   default=0)
            longest = max(longest, height[name])
    return longest


class Grammar:
    """A GBNF grammar that constrains generation (see llama.cpp's grammars/README.md).

    >>> Grammar('root ::= "yes" | "no"')
    >>> Grammar.from_json_schema({"type": "object", "properties": {"n": {"type": "integer"}}})

    The text is parsed by llama.cpp when a generation uses it; a syntax error raises
    ``ValueError`` then.
    """

    def __init__(self, text: str, root: str = "root") -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a grammar needs at least one rule")
        if not re.fullmatch(r"[A-Za-z0-9-]+", root):
            raise ValueError(f"root must be a GBNF rule name, got {root!r}")
        if not re.search(rf"(^|\n)\s*{re.escape(root)}\s*::=", text):
            raise ValueError(f"the grammar has no rule named {root!r}")
        rules, depth, refs = _shape(text)
        # llama.cpp parses and walks grammars recursively: past these, a crafted grammar ran
        # it out of stack (SIGSEGV) in the fuzzing (tools/fuzz); real grammars stay far below.
        if rules > MAX_RULES:
            raise ValueError(f"the grammar has {rules} rules; at most {MAX_RULES} are accepted")
        if depth > MAX_NESTING:
            raise ValueError(f"the grammar nests parentheses {depth} deep; at most "
                             f"{MAX_NESTING} are accepted")
        chain = _chain(refs)
        if chain > MAX_CHAIN:
            raise ValueError(f"the grammar's rules refer to each other {chain} deep; at most "
                             f"{MAX_CHAIN} are accepted")
        self.text = text
        self.root = root

    @classmethod
    def from_json_schema(cls, schema: Mapping[str, Any] | str | type) -> Grammar:
        """The grammar of the JSON documents valid under ``schema``.

        ``schema`` is a JSON schema as a dict or a JSON string, or a class with pydantic's
        ``model_json_schema()``.
        """
        if isinstance(schema, type):
            getter = getattr(schema, "model_json_schema", None)
            if getter is None:
                raise TypeError(f"{schema.__name__} has no model_json_schema() (not a pydantic "
                                "model)")
            schema = getter()
        deep = "the JSON schema nests too deeply to be converted"
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as e:
                raise ValueError(f"json_schema is not valid JSON: {e}") from None
            except RecursionError:
                raise ValueError(deep) from None
        if not isinstance(schema, Mapping | bool):
            raise TypeError(f"a JSON schema must be a dict, not {type(schema).__name__}")
        conv = _Converter(schema if isinstance(schema, Mapping) else {})
        try:
            top = conv.visit(schema, "root")
        except RecursionError:
            raise ValueError(deep) from None
        if top != "root":
            conv.rules = {"root": top, **conv.rules}
        text = "\n".join(f"{name} ::= {body}" for name, body in conv.rules.items())
        return cls(text + "\n")

    @classmethod
    def json(cls) -> Grammar:
        """Any JSON object (what "JSON mode" means elsewhere)."""
        return cls.from_json_schema({"type": "object"})

    def __repr__(self) -> str:
        lines = self.text.count("\n") + 1
        return f"Grammar(<{lines} lines>, root={self.root!r})"

    def __str__(self) -> str:
        return self.text
