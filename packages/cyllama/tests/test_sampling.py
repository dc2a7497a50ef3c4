"""Sampling: validation naming the parameter, seeded reproducibility, each sampler's effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cyllama import LLM, Sampling, _core

PROMPT = "the capital of"


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"temperature": -0.1}, ValueError, "temperature"),
        ({"temperature": math.nan}, ValueError, "temperature"),
        ({"temperature": "hot"}, TypeError, "temperature"),
        ({"top_k": -1}, ValueError, "top_k"),
        ({"top_k": 2.5}, TypeError, "top_k"),
        ({"top_p": 0.0}, ValueError, "top_p"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"min_p": -0.5}, ValueError, "min_p"),
        ({"typical_p": 0}, ValueError, "typical_p"),
        ({"repeat_penalty": 0}, ValueError, "repeat_penalty"),
        ({"frequency_penalty": math.inf}, ValueError, "frequency_penalty"),
        ({"penalty_last_n": -2}, ValueError, "penalty_last_n"),
        ({"mirostat": 3}, ValueError, "mirostat"),
        ({"mirostat_tau": 0}, ValueError, "mirostat_tau"),
        ({"mirostat_eta": -1}, ValueError, "mirostat_eta"),
        ({"dry_multiplier": -1}, ValueError, "dry_multiplier"),
        ({"dry_base": 1.0}, ValueError, "dry_base"),
        ({"dry_allowed_length": -1}, ValueError, "dry_allowed_length"),
        ({"dry_penalty_last_n": -5}, ValueError, "dry_penalty_last_n"),
        ({"dry_sequence_breakers": "\n"}, TypeError, "dry_sequence_breakers"),
        ({"logit_bias": {3: "x"}}, ValueError, "logit_bias"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**32}, ValueError, "seed"),
    ],
)
def test_invalid_values_name_the_parameter(kwargs: dict[str, object], error: type[Exception],
                                           name: str) -> None:
    with pytest.raises(error, match=name):
        Sampling(**kwargs)  # type: ignore[arg-type]


def test_defaults_and_greedy() -> None:
    s = Sampling()
    assert (s.temperature, s.top_k, s.top_p, s.min_p) == (0.8, 40, 0.95, 0.05)
    assert not s.greedy and Sampling.GREEDY.greedy
    assert s.replace(temperature=0) == Sampling(temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        s.replace(top_p=2)


def test_sampling_is_a_frozen_copy() -> None:
    bias = {5: 1.0}
    s = Sampling(logit_bias=bias)
    bias[6] = 2.0
    assert s.logit_bias == {5: 1.0}
    with pytest.raises(AttributeError):
        s.temperature = 1.0  # type: ignore[misc]


def test_same_seed_same_text_other_seed_other_text(llm: LLM) -> None:
    runs = [llm.generate(PROMPT, max_tokens=24, sampling=Sampling(temperature=1.5, seed=s)).text
            for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    greedy = llm.generate(PROMPT, max_tokens=24).text
    assert runs[0] != greedy


def test_unseeded_calls_differ_but_the_session_is_reproducible(tiny_model: object) -> None:
    def session() -> list[str]:
        llm = LLM(tiny_model, n_ctx=128, n_threads=1, seed=42)  # type: ignore[arg-type]
        s = Sampling(temperature=1.5)
        return [llm.generate(PROMPT, max_tokens=12, sampling=s).text for _ in range(2)]

    first = session()
    assert first[0] != first[1]
    assert session() == first


def test_top_k_1_and_tiny_temperature_are_greedy(llm: LLM) -> None:
    greedy = llm.generate(PROMPT, max_tokens=16).text
    assert llm.generate(PROMPT, max_tokens=16, sampling=Sampling(top_k=1, seed=3)).text == greedy
    cold = Sampling(temperature=1e-4, top_k=0, top_p=1.0, min_p=0.0, seed=3)
    assert llm.generate(PROMPT, max_tokens=16, sampling=cold).text == greedy


def test_logit_bias_bans_and_forces_tokens(llm: LLM) -> None:
    greedy = llm.generate(PROMPT, max_tokens=12)
    banned = set(greedy.tokens)
    ban = Sampling(temperature=0, logit_bias=dict.fromkeys(banned, -math.inf))
    out = llm.generate(PROMPT, max_tokens=12, sampling=ban)
    assert banned.isdisjoint(out.tokens)
    forced = llm.tokenize(" Paris", add_special=False)[-1]
    out = llm.generate(PROMPT, max_tokens=5, sampling=Sampling(temperature=0,
                                                                logit_bias={forced: 100.0}))
    assert out.tokens == (forced,) * 5
    with pytest.raises(ValueError, match="logit_bias token id 999999 is out of range"):
        llm.generate(PROMPT, sampling=Sampling(logit_bias={999999: 1.0}))


def test_penalties_stop_repetition(llm: LLM) -> None:
    # Force one token strongly; a presence penalty larger than the bias breaks the loop.
    forced = llm.tokenize(" Paris", add_special=False)[-1]
    loop = Sampling(temperature=0, logit_bias={forced: 1000.0})
    assert set(llm.generate(PROMPT, max_tokens=8, sampling=loop).tokens) == {forced}
    penalised = loop.replace(presence_penalty=2000.0, penalty_last_n=8)
    tokens = llm.generate(PROMPT, max_tokens=8, sampling=penalised).tokens
    assert tokens[0] == forced and tokens.count(forced) == 1
    rep = loop.replace(repeat_penalty=1e6, penalty_last_n=-1)
    assert llm.generate(PROMPT, max_tokens=8, sampling=rep).tokens.count(forced) == 1


def test_mirostat_typical_and_dry_run(llm: LLM) -> None:
    for s in (Sampling(mirostat=1, seed=1), Sampling(mirostat=2, seed=1),
              Sampling(typical_p=0.5, seed=1), Sampling(dry_multiplier=0.8, seed=1),
              Sampling(temperature=0, dry_multiplier=2.0, dry_allowed_length=1)):
        out = llm.generate(PROMPT, max_tokens=10, sampling=s)
        assert len(out.tokens) == 10 and out.finish_reason == "length", s
    # Mirostat is seeded like the rest.
    a = llm.generate(PROMPT, max_tokens=10, sampling=Sampling(mirostat=2, seed=9)).text
    assert a == llm.generate(PROMPT, max_tokens=10, sampling=Sampling(mirostat=2, seed=9)).text


def test_sampled_frequencies_follow_the_temperature(llm: LLM) -> None:
    """Over many seeds, the first token's frequencies track softmax(logits / T)."""
    tokens = llm.tokenize(PROMPT)
    llm.eval(tokens)
    logits = llm._ctx.logits().astype(np.float64)
    temperature = 2.0
    p = np.exp((logits - logits.max()) / temperature)
    p /= p.sum()
    top = int(np.argmax(p))
    s = Sampling(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0)
    n = 300
    hits = sum(llm.generate(tokens, max_tokens=1, sampling=s.replace(seed=i)).tokens[0] == top
               for i in range(n))
    expected = n * p[top]
    assert abs(hits - expected) < 4 * math.sqrt(expected * (1 - p[top])) + 2, (hits, expected)


def test_logprobs_are_the_model_log_softmax(llm: LLM, tiny_model: object) -> None:
    out = llm.generate(PROMPT, max_tokens=4, logprobs=3)
    assert out.logprobs is not None and len(out.logprobs) == 4
    model = _core.Model(str(tiny_model), 0, True, False, [])  # no device: this CPU only
    ctx = _core.Context(model, 128, 128, 0, 1, 1)
    ctx.decode(llm.tokenize(PROMPT))
    for lp, token in zip(out.logprobs, out.tokens, strict=True):
        logits = ctx.logits().astype(np.float64)
        ref = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        assert lp.token == token
        assert lp.logprob == pytest.approx(ref[token], abs=1e-4)
        order = np.argsort(-ref, kind="stable")[:3]
        assert [t for t, _, _ in lp.top] == list(order)
        assert [v for _, _, v in lp.top] == pytest.approx(list(ref[order]), abs=1e-4)
        assert lp.top[0][0] == token  # greedy: the chosen token is the most likely
        assert lp.text == llm.model.piece_text(token)
        ctx.decode([token])
    assert llm.generate(PROMPT, max_tokens=2).logprobs is None
    with pytest.raises(ValueError, match="logprobs must be in"):
        llm.generate(PROMPT, logprobs=101)
