"""The family's binding convention on the real extension: the sampler's parameter bundle is
filled from Sampling by name (nothing forgotten, nothing misspelt), and generation options
are named keywords checked at the call."""

from __future__ import annotations

import dataclasses

import ggml_family
import pytest
from cyllama import LLM, GenerateOptions, Sampling, _core


def test_sampling_fills_the_sampler_bundle() -> None:
    """Every Sampling field has its field in the C++ bundle (a new one without its C++ twin
    would fail here, not silently run on a default); the bundle adds only the grammar."""
    fields = {f.name for f in dataclasses.fields(Sampling)}
    assert set(_core.SamplerParams._fields) - fields == {"grammar", "grammar_root"}
    assert fields <= set(_core.SamplerParams._fields)


def test_the_bundle_refuses_mistakes() -> None:
    p = _core.SamplerParams()
    with pytest.raises(AttributeError, match="'SamplerParams' object has no attribute 'temp'"):
        p.temp = 1.0  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="incompatible function arguments"):
        p.top_k = "40"  # type: ignore[assignment]
    values = {name: getattr(p, name) for name in _core.SamplerParams._fields}
    values["temprature"] = values.pop("temperature")
    with pytest.raises(TypeError) as e:
        ggml_family.params(_core.SamplerParams, **values)
    assert str(e.value) == ("SamplerParams: unknown field(s) temprature; no value for "
                            "temperature")
    values["temperature"] = 0.5
    del values["temprature"]
    filled = ggml_family.params(_core.SamplerParams, **values)
    assert filled.temperature == 0.5
    assert repr(filled).startswith("SamplerParams(temperature=0.5, top_k=0, top_p=1.0, ")


def test_generation_options_are_checked_by_name(llm: LLM) -> None:
    assert set(GenerateOptions.__annotations__) == {
        "max_tokens", "sampling", "stop", "logprobs", "grammar", "json_schema"}
    with pytest.raises(TypeError) as e:
        llm.generate("the", max_token=3)  # type: ignore[call-arg]
    assert str(e.value) == ("unknown option(s) max_token; known: max_tokens, sampling, stop, "
                            "logprobs, grammar, json_schema")
    with pytest.raises(TypeError, match="unknown option"):
        llm.chat_stream([{"role": "user", "content": "hi"}], temperature=0.5)  # type: ignore[call-arg]
    options: GenerateOptions = {"max_tokens": 4, "sampling": Sampling(seed=1)}
    assert llm.generate("the", **options).text == llm.generate("the", max_tokens=4,
                                                               sampling=Sampling(seed=1)).text


def test_upstream_error_lines_belong_to_the_failing_call(llm: LLM) -> None:
    """A failed restore names what llama.cpp logged during it, and the next, unrelated error
    carries none of those lines."""
    good = llm.save_state()
    broken = dataclasses.replace(good, data=b"not a state" * 10)
    with pytest.raises(ValueError, match=r"^the state does not fit this context") as e:
        llm.load_state(broken)
    assert str(e.value).endswith("(state_set_data: error loading state: unexpectedly reached "
                                 "end of buffer)")
    with pytest.raises(ValueError, match="invalid GBNF grammar") as again:
        llm.generate("the", grammar='root ::= "unterminated')
    assert str(again.value) == "invalid GBNF grammar (failed to parse grammar)"
    assert llm.generate("the", max_tokens=3).text  # still usable
