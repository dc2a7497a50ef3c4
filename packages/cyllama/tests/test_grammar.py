"""Constrained output: GBNF grammars and JSON schemas, on the tiny random model."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from cyllama import LLM, Grammar, Sampling

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer"},
        "score": {"type": "number"},
        "city": {"enum": ["Paris", "Lima", "Oslo"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
        "ok": {"type": "boolean"},
        "note": {"type": ["string", "null"], "maxLength": 5},
    },
    "required": ["name", "age", "city", "tags"],
    "additionalProperties": False,
}


def test_gbnf_grammar_is_followed(llm: LLM) -> None:
    g = 'root ::= ("yes" | "no") " " [0-9]{2,3} "!"'
    for seed in range(8):
        out = llm.generate("the", max_tokens=40, sampling=Sampling(temperature=1.5, seed=seed),
                           grammar=g)
        assert re.fullmatch(r"(yes|no) [0-9]{2,3}!", out.text), out.text
        assert out.finish_reason == "eos"  # the grammar is complete: only the end can follow


def test_greedy_with_grammar(llm: LLM) -> None:
    out = llm.generate("the", max_tokens=20, grammar=Grammar('root ::= [a-c]+ "."'))
    assert re.fullmatch(r"[a-c]+\.", out.text) or (out.finish_reason == "length"
                                                    and re.fullmatch(r"[a-c]+", out.text))


@pytest.mark.parametrize("seed", range(10))
def test_json_schema_output_parses_and_validates(llm: LLM, seed: int) -> None:
    out = llm.generate("the", max_tokens=200, json_schema=PERSON,
                       sampling=Sampling(temperature=1.0, seed=seed))
    assert out.finish_reason == "eos", out.text
    jsonschema.validate(json.loads(out.text), PERSON)


def test_json_schema_from_a_string_and_refs(llm: LLM) -> None:
    schema = {
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"},
                                                               "y": {"type": "integer"}},
                            "required": ["x", "y"]}},
        "type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 1, "maxItems": 2,
    }
    out = llm.generate("the", max_tokens=120, json_schema=json.dumps(schema),
                       sampling=Sampling(seed=1, temperature=1.0))
    value = json.loads(out.text)
    jsonschema.validate(value, schema)
    assert 1 <= len(value) <= 2


def test_json_mode_any_object(llm: LLM) -> None:
    g = Grammar.json()
    out = llm.generate("the", max_tokens=60, grammar=g, sampling=Sampling(seed=2))
    if out.finish_reason == "eos":
        assert isinstance(json.loads(out.text), dict)
    else:
        assert out.text.startswith("{")


def test_recursive_schema() -> None:
    tree = {"$ref": "#/$defs/node", "$defs": {"node": {
        "type": "object", "properties": {"kids": {"type": "array", "maxItems": 2,
                                                  "items": {"$ref": "#/$defs/node"}}},
        "required": ["kids"]}}}
    text = Grammar.from_json_schema(tree).text
    assert re.search(r"^node ::= ", text, re.M) and "root ::= node" in text


def test_optional_properties_only() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "null"}}}
    text = Grammar.from_json_schema(schema).text
    root = next(line for line in text.splitlines() if line.startswith("root ::="))
    assert '"{"' in root and ")?" in root


def test_pydantic_models_are_accepted() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        name: str
        count: int

    assert "count" in Grammar.from_json_schema(Item).text


@pytest.mark.parametrize(
    ("schema", "error", "message"),
    [
        ({"type": "string", "pattern": "^a+$"}, ValueError, "pattern cannot be enforced"),
        ({"type": "integer", "minimum": 3}, ValueError, "minimum cannot be enforced"),
        ({"type": "strange"}, ValueError, "unknown JSON type 'strange'"),
        ({"$ref": "#/$defs/missing"}, ValueError, "points to nothing"),
        ({"$ref": "http://example.com/s.json"}, ValueError, "only references inside"),
        ({"enum": []}, ValueError, "enum must be a non-empty list"),
        ({"type": "array", "minItems": 3, "maxItems": 1}, ValueError, "minItems/maxItems"),
        ("{not json", ValueError, "json_schema is not valid JSON"),
        (42, TypeError, "must be a dict"),
        (False, ValueError, "accepts nothing"),
    ],
)
def test_bad_schemas_are_refused(schema: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Grammar.from_json_schema(schema)  # type: ignore[arg-type]


def test_bad_grammars_are_refused(llm: LLM) -> None:
    with pytest.raises(ValueError, match="invalid GBNF grammar"):
        llm.generate("the", grammar='root ::= "unterminated')
    with pytest.raises(ValueError, match="no rule named 'start'"):
        Grammar('root ::= "a"', root="start")
    with pytest.raises(ValueError, match="at least one rule"):
        Grammar("  ")
    with pytest.raises(ValueError, match="either grammar or json_schema"):
        llm.generate("the", grammar='root ::= "a"', json_schema={"type": "integer"})
    with pytest.raises(TypeError, match="grammar must be"):
        llm.generate("the", grammar=42)  # type: ignore[arg-type]
    assert llm.generate("the", max_tokens=3).text  # still usable


def test_grammars_too_big_to_walk_safely_are_refused() -> None:
    # llama.cpp parses and walks grammars recursively; these ran it out of stack (tools/fuzz).
    deep = "root ::= " + "(" * 50000 + '"a"' + ")" * 50000
    with pytest.raises(ValueError, match="nests parentheses 50000 deep; at most 1000"):
        Grammar(deep)
    chain = "root ::= r0\n" + "".join(f'r{i} ::= r{i + 1} | "a"\n' for i in range(200000))
    with pytest.raises(ValueError, match="has 200002 rules; at most 20000"):
        Grammar(chain + 'r200000 ::= "b"')
    # 10000 chained rules were fine on the main thread's 8 MB stack, but not under ASan's
    # larger frames (nox -s sanitize): a thread with a smaller stack would crash the same way.
    chain = "root ::= r0\n" + "".join(f'r{i} ::= r{i + 1} | "a"\n' for i in range(10000))
    with pytest.raises(ValueError, match="rules refer to each other 10002 deep; at most 1000"):
        Grammar(chain + 'r10000 ::= "b"')
    # Parentheses inside strings, classes and comments do not count, nor do names there.
    Grammar('root ::= "((((" [(((] x # ((((\nx ::= ("a" ("b"))')
    Grammar('root ::= "r1 r2 r3" x # r4\nx ::= "a" | root')  # a cycle is no chain


def test_json_schema_nested_too_deep() -> None:
    text = '{"type": "array", "items": ' * 3000 + '{"type": "string"}' + "}" * 3000
    with pytest.raises(ValueError, match="nests too deeply"):
        Grammar.from_json_schema(text)
    nested: dict[str, object] = {"type": "string"}
    for _ in range(3000):
        nested = {"type": "array", "items": nested}
    with pytest.raises(ValueError, match="nests too deeply"):
        Grammar.from_json_schema(nested)
