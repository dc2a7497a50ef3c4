"""Sampling parameters: one validated, immutable dataclass mapped onto llama.cpp's sampler chain."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ggml_family.checks import check_float, check_int

__all__ = ["Sampling"]

_DRY_BREAKERS = ("\n", ":", '"', "*")


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; the defaults are llama.cpp's.

    ``temperature=0`` (see :attr:`GREEDY`) always takes the most likely token; penalties and
    logit biases still apply. Otherwise the chain is: logit bias, repetition penalties, DRY,
    then either mirostat (``mirostat=1`` or ``2``, which replaces top-k/p, min-p and typical-p)
    or top-k, typical-p, top-p, min-p, temperature, and a seeded draw.

    Attributes:
        temperature: > 0 flattens (> 1) or sharpens (< 1) the distribution; 0 is greedy.
        top_k: keep the k most likely tokens; 0 keeps all.
        top_p: keep the smallest set of tokens whose probabilities sum to ``top_p``; 1 is off.
        min_p: drop tokens less likely than ``min_p`` times the most likely one; 0 is off.
        typical_p: locally typical sampling; 1 is off.
        repeat_penalty: divide the logits of tokens seen in the window; 1 is off.
        frequency_penalty: subtract this times each token's count in the window; 0 is off.
        presence_penalty: subtract this from every token present in the window; 0 is off.
        penalty_last_n: the window in tokens (prompt included); 0 disables, -1 is the context.
        mirostat: 0 off, 1 Mirostat, 2 Mirostat 2.0.
        mirostat_tau: Mirostat's target surprise.
        mirostat_eta: Mirostat's learning rate.
        dry_multiplier: DRY ("don't repeat yourself") strength; 0 is off.
        dry_base: DRY's exponential base (> 1).
        dry_allowed_length: repeats up to this many tokens are not penalised.
        dry_penalty_last_n: DRY's window; 0 disables, -1 is the context.
        dry_sequence_breakers: strings that end a repeated sequence for DRY.
        logit_bias: token id -> value added to its logit (``-math.inf`` bans the token).
        seed: seed of the draw; ``None`` takes the next value of the LLM's own generator, so
            that successive calls differ while a whole session stays reproducible.
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalty_last_n: int = 64
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1
    dry_sequence_breakers: Sequence[str] = _DRY_BREAKERS
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    seed: int | None = None

    #: Deterministic decoding: always the most likely token.
    GREEDY: ClassVar[Sampling]

    def __post_init__(self) -> None:
        check_float("temperature", self.temperature, 0)
        check_int("top_k", self.top_k, 0)
        check_float("top_p", self.top_p, 0, 1, low_open=True)
        check_float("typical_p", self.typical_p, 0, 1, low_open=True)
        check_float("min_p", self.min_p, 0, 1)
        check_float("repeat_penalty", self.repeat_penalty, 0, low_open=True)
        check_float("frequency_penalty", self.frequency_penalty)
        check_float("presence_penalty", self.presence_penalty)
        check_int("penalty_last_n", self.penalty_last_n, -1)
        check_int("dry_penalty_last_n", self.dry_penalty_last_n, -1)
        check_int("mirostat", self.mirostat, 0, 2)
        check_float("mirostat_tau", self.mirostat_tau, 0, low_open=True)
        check_float("mirostat_eta", self.mirostat_eta, 0, low_open=True)
        check_float("dry_multiplier", self.dry_multiplier, 0)
        check_float("dry_base", self.dry_base, 1, low_open=True)
        check_int("dry_allowed_length", self.dry_allowed_length, 0)
        if isinstance(self.dry_sequence_breakers, str) or not all(
                isinstance(s, str) and s for s in self.dry_sequence_breakers):
            raise TypeError("dry_sequence_breakers must be a sequence of non-empty strings")
        for token, bias in dict(self.logit_bias).items():
            check_int("logit_bias token id", token, 0)
            if isinstance(bias, bool) or not isinstance(bias, int | float) or math.isnan(bias):
                raise ValueError(f"logit_bias[{token}] must be a number, got {bias!r}")
        if self.seed is not None:
            check_int("seed", self.seed, 0, 2**32 - 1)
        # Own copies: later changes to the caller's list or dict do not leak in.
        object.__setattr__(self, "dry_sequence_breakers", tuple(self.dry_sequence_breakers))
        object.__setattr__(self, "logit_bias", dict(self.logit_bias))

    @property
    def greedy(self) -> bool:
        """Whether the choice is deterministic (temperature 0)."""
        return self.temperature == 0

    def replace(self, **changes: Any) -> Sampling:
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    def check_vocab(self, n_vocab: int) -> None:
        """Raise ValueError if a biased token id is outside the vocabulary."""
        for token in self.logit_bias:
            if not 0 <= token < n_vocab:
                raise ValueError(f"logit_bias token id {token} is out of range [0, {n_vocab})")


Sampling.GREEDY = Sampling(temperature=0.0)
