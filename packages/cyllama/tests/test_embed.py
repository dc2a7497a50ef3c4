"""Embeddings: shapes, normalisation, batching independence, pooling, errors."""

from __future__ import annotations

import numpy as np
import pytest
from cyllama import LLM, ContextOverflowError

TEXTS = ["the capital of France", "a river in the city", "the capital of France"]


def test_shapes_and_normalisation(llm: LLM) -> None:
    e = llm.embed(TEXTS)
    assert e.shape == (3, llm.model.core.n_embd) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.allclose(e[0], e[2], atol=1e-5)
    assert not np.allclose(e[0], e[1], atol=1e-2)
    one = llm.embed(TEXTS[1])
    assert one.shape == (llm.model.core.n_embd,)
    assert np.allclose(one, e[1], atol=1e-4)  # the same alone as in a shared batch
    raw = llm.embed(TEXTS, normalize=False)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), e, atol=1e-5)
    assert llm.embed([]).shape == (0, llm.model.core.n_embd)


def test_pooling_modes_differ(llm: LLM) -> None:
    mean = llm.embed(TEXTS[0], pooling="mean")
    assert np.allclose(mean, llm.embed(TEXTS[0]), atol=1e-5)  # a plain LM: mean by default
    last = llm.embed(TEXTS[0], pooling="last")
    cls = llm.embed(TEXTS[0], pooling="cls")
    assert not np.allclose(mean, last, atol=1e-3) and not np.allclose(last, cls, atol=1e-3)


def test_many_texts_span_several_batches(llm: LLM) -> None:
    texts = [f"the city {w} river" for w in ("of", "and", "to", "in", "is")] * 10
    e = llm.embed(texts)  # 50 texts: more than one batch of sequences
    assert e.shape[0] == 50
    assert np.allclose(e[:5], e[45:], atol=1e-5)


def test_generation_is_unaffected(llm: LLM) -> None:
    before = llm.generate("the capital of", max_tokens=8).text
    llm.embed(TEXTS)
    assert llm.generate("the capital of", max_tokens=8).text == before


def test_errors(llm: LLM) -> None:
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        llm.embed(["a", ""])
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        llm.embed([3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pooling must be one of"):
        llm.embed("a", pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ContextOverflowError, match=r"texts\[0\] is \d+ tokens"):
        llm.embed("the " * (llm.n_ctx + 5))
