"""Greedy generation: deterministic, equal to a step-by-step loop through _core, KV reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cyllama import LLM, _core

PROMPT = "The capital of France is"


def reference_greedy(path: Path, prompt: str, n: int) -> bytes:
    """The same greedy loop, written against _core with NumPy's argmax over the logits."""
    model = _core.Model(str(path), 0, True, False)
    ctx = _core.Context(model, 256, 512, 0, 2, 2)
    ctx.decode(model.tokenize(prompt, True, False))
    out = []
    for _ in range(n):
        logits = ctx.logits()
        assert logits.shape == (model.n_vocab,) and logits.dtype == np.float32
        token = int(np.argmax(logits))
        if model.is_eog(token):
            break
        out.append(token)
        ctx.decode([token])
    return b"".join(model.token_to_piece(t, False) for t in out)


@pytest.mark.smoke
def test_generate_equals_step_by_step_loop(llm: LLM, tiny_model: Path) -> None:
    text = llm.generate(PROMPT, max_tokens=24).text
    assert text == reference_greedy(tiny_model, PROMPT, 24).decode("utf-8", errors="replace")
    assert len(text) > 0


@pytest.mark.smoke
def test_generate_is_deterministic_across_instances(llm: LLM, tiny_model: Path) -> None:
    other = LLM(tiny_model, n_ctx=128, n_threads=1)
    assert other.generate(PROMPT, max_tokens=16).text == llm.generate(PROMPT, max_tokens=16).text


def test_max_tokens_is_exact(llm: LLM) -> None:
    # The tiny model never prefers a control token, so generation runs to max_tokens.
    llm.generate(PROMPT, max_tokens=10)
    assert llm._ctx.n_past == len(llm.tokenize(PROMPT)) + 9  # the last token is not evaluated
    assert llm.generate(PROMPT, max_tokens=0).text == ""


def test_cached_prefix_is_reused(llm: LLM) -> None:
    llm.generate(PROMPT, max_tokens=4)
    llm._ctx.perf_reset()
    llm.generate(PROMPT + " Paris and", max_tokens=4)
    prompt_tokens = len(llm.tokenize(PROMPT + " Paris and"))
    evaluated = llm._ctx.perf()["n_p_eval"]
    assert 0 < evaluated < prompt_tokens


def test_generation_stops_at_full_context(tiny_model: Path) -> None:
    small = LLM(tiny_model, n_ctx=32, n_threads=1)
    n_ctx = small.n_ctx
    text = small.generate(PROMPT, max_tokens=n_ctx + 100).text
    assert small._ctx.n_past == n_ctx
    assert len(small._cached) == n_ctx
    assert len(small.tokenize(text, add_special=False)) >= n_ctx - len(small.tokenize(PROMPT)) - 1


def test_logits_before_decode_raise(tiny_model: Path) -> None:
    model = _core.Model(str(tiny_model), 0, True, False)
    ctx = _core.Context(model, 64, 64, 0, 1, 1)
    with pytest.raises(ValueError, match="no logits: decode\\(\\) tokens first"):
        ctx.greedy()
    n = ctx.n_ctx
    with pytest.raises(ValueError,
                       match=f"context overflow: 0 \\+ {n + 1} tokens exceed n_ctx {n}"):
        ctx.decode([5] * (n + 1))
