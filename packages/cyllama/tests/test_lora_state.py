"""LoRA adapters (load, scale, remove) and saving / restoring the context state."""

from __future__ import annotations

from pathlib import Path

import pytest
from cyllama import LLM, ModelLoadError, State
from tiny_llama import tiny_lora

PROMPT = "the capital of"


def test_lora_load_scale_remove(tiny_model: Path) -> None:
    llm = LLM(tiny_model, n_ctx=128, n_threads=1)
    base = llm.generate(PROMPT, max_tokens=12).text
    adapter = llm.load_lora(tiny_lora(), scale=1.0)
    assert llm.loras == [adapter] and adapter.metadata["adapter.type"] == "lora"
    tuned = llm.generate(PROMPT, max_tokens=12).text
    assert tuned != base
    llm.set_lora_scale(adapter, 0.0)
    assert llm.generate(PROMPT, max_tokens=12).text == base
    llm.set_lora_scale(adapter, 1.0)
    assert llm.generate(PROMPT, max_tokens=12).text == tuned
    half = llm.generate(PROMPT, max_tokens=12, logprobs=1).logprobs
    llm.remove_lora(adapter)
    assert llm.loras == []
    assert llm.generate(PROMPT, max_tokens=12).text == base
    with pytest.raises(ValueError, match="is not applied"):
        llm.remove_lora(adapter)
    assert half is not None


def test_lora_errors(tiny_model: Path, tmp_path: Path) -> None:
    llm = LLM(tiny_model, n_ctx=64, n_threads=1)
    with pytest.raises(FileNotFoundError, match="LoRA adapter file not found"):
        llm.load_lora(tmp_path / "none.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelLoadError, match=r"LoRA adapter file .* is not a GGUF file"):
        llm.load_lora(junk)
    with pytest.raises(ModelLoadError, match="incorrect shape"):
        llm.load_lora(tiny_lora(fits=False))
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(tiny_lora().read_bytes()[:3000])
    with pytest.raises(ModelLoadError, match="failed to load LoRA adapter"):
        llm.load_lora(truncated)
    with pytest.raises(ValueError, match=r"^scale must be finite, got nan$"):
        llm.load_lora(tiny_lora(), scale=float("nan"))
    assert llm.generate(PROMPT, max_tokens=3).text


def test_state_round_trip(tiny_model: Path, tmp_path: Path) -> None:
    llm = LLM(tiny_model, n_ctx=128, n_threads=1)
    llm.generate(PROMPT, max_tokens=10)
    state = llm.save_state()
    assert isinstance(state, State) and len(state.tokens) == llm._ctx.n_past > 0
    expected = llm.generate(list(state.tokens), max_tokens=10).text
    llm.reset()
    llm.generate("other words entirely", max_tokens=5)
    llm.load_state(state)
    assert llm._ctx.n_past == len(state.tokens)
    restored = llm.generate(list(state.tokens), max_tokens=10)
    assert restored.text == expected
    assert restored.usage.cached_tokens == len(state.tokens) - 1  # only the last re-evaluated

    path = tmp_path / "session.bin"
    llm.load_state(state)
    llm.save_state_file(path)
    other = LLM(tiny_model, n_ctx=128, n_threads=1)
    other.load_state_file(path)
    assert other._cached == list(state.tokens)
    assert other.generate(list(state.tokens), max_tokens=10).text == expected


def test_state_errors(tiny_model: Path, tmp_path: Path) -> None:
    llm = LLM(tiny_model, n_ctx=512, n_threads=1)
    llm.generate(PROMPT, max_tokens=3)
    small = LLM(tiny_model, n_ctx=64, n_threads=1)
    with pytest.raises(ValueError, match=rf"context of 512 tokens, this LLM's is {small.n_ctx}"):
        small.load_state(llm.save_state())
    with pytest.raises(TypeError, match=r"state must be a cyllama\.State"):
        small.load_state(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="state file not found"):
        small.load_state_file(tmp_path / "none.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="cannot load state from"):
        small.load_state_file(bad)
    assert small.generate(PROMPT, max_tokens=3).text
