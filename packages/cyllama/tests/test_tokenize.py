"""Tokenization round trips and token id validation."""

from __future__ import annotations

import pytest
from cyllama import LLM

TEXTS = ["The capital of France is Paris.", "héllo wörld 日本!", "a", "  two  spaces", "x\ny\tz"]


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(llm: LLM, text: str) -> None:
    tokens = llm.tokenize(text)
    assert tokens[0] == llm.model.core.bos
    assert all(isinstance(t, int) and 0 <= t < llm.n_vocab for t in tokens)
    assert llm.detokenize(tokens) == text


def test_add_special_false_has_no_bos(llm: LLM) -> None:
    assert llm.tokenize("the", add_special=False)[0] != llm.model.core.bos
    assert llm.tokenize("", add_special=False) == []


def test_known_words_are_single_tokens(llm: LLM) -> None:
    # " the" and " capital" are pieces of the tiny vocabulary; unknown text uses byte fallback.
    assert len(llm.tokenize("the capital", add_special=False)) == 2  # "▁the" "▁capital"
    assert len(llm.tokenize("日", add_special=False)) == 1 + 3  # "▁" + three UTF-8 bytes


def test_special_rendering(llm: LLM) -> None:
    tokens = llm.tokenize("the")
    assert llm.detokenize(tokens, special=True).startswith("<s>")


def test_out_of_range_token_ids(llm: LLM) -> None:
    with pytest.raises(ValueError, match=rf"token id 100000 is out of range \[0, {llm.n_vocab}\)"):
        llm.detokenize([100000])
    with pytest.raises(ValueError, match=r"token id -1 is out of range"):
        llm.detokenize([-1])


def test_tokenize_needs_str(llm: LLM) -> None:
    with pytest.raises(TypeError, match="text must be a str, not bytes"):
        llm.tokenize(b"abc")  # type: ignore[arg-type]
