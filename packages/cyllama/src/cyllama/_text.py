"""What one generation is asked for, and the text of its tokens as they come.

Shared by :meth:`LLM.generate` (one sequence, in the caller's thread) and the
:class:`~cyllama.Engine` (many sequences in one batch, in its thread).
"""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ._sampling import Sampling
from ._types import Completion, FinishReason, Timings, TokenLogprob, Usage


@dataclasses.dataclass
class Job:
    """A validated generation request: prompt tokens, a sampler chain, and when to stop."""

    tokens: list[int]
    sampler: Any  # _core.Sampler
    sampling: Sampling
    max_tokens: int
    stops: tuple[str, ...]
    n_logprobs: int | None

    def history(self) -> list[int]:
        """The prompt tokens the penalties (and DRY) must see first; empty for greedy."""
        n = max(self.sampling.penalty_last_n, self.sampling.dry_penalty_last_n)
        if self.sampler.is_greedy or n == 0:
            return []
        return self.tokens if n == -1 else self.tokens[-n:]


def check_stop(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    for s in stops:
        if not isinstance(s, str) or not s:
            raise ValueError(f"stop strings must be non-empty str, got {s!r}")
    return stops


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that could begin a stop string."""
    for n in range(min(len(text), max(map(len, stops)) - 1), 0, -1):
        tail = text[-n:]
        if any(s.startswith(tail) for s in stops):
            return n
    return 0


class TextOut:
    """The text of generated tokens: whole UTF-8 characters, cut at the first stop string.

    ``push(token)`` each accepted token, then ``take()`` what may be shown so far (never the
    start of a possible stop string); at the end ``close()`` gives the rest and
    ``completion()`` the result.
    """

    def __init__(self, piece: Callable[[int, bool], bytes], stops: tuple[str, ...]) -> None:
        self._piece = piece
        self.stops = stops
        self._longest = max(map(len, stops), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tokens: list[int] = []
        self._starts: list[int] = []  # where each token's text starts in `text`
        self.text = ""
        self._emitted = 0  # characters of `text` already taken
        self._ready = 0
        self.stop: str | None = None  # the stop string that matched

    def push(self, token: int) -> bool:
        """Add a token's text; True when a stop string matched (the text is cut before it)."""
        self.tokens.append(token)
        self._starts.append(len(self.text))
        self.text += self._decoder.decode(bytes(self._piece(token, False)))
        self._ready = len(self.text)
        if self.stops:
            # Search only where a new match can be: the held-back tail and the new text.
            start = max(self._emitted - self._longest, 0)
            hits = [(i, s) for s in self.stops if (i := self.text.find(s, start)) >= 0]
            if hits:
                cut, self.stop = min(hits)
                self.text = self.text[:cut]
                self._ready = cut
                return True
            self._ready = len(self.text) - _held_back(self.text, self.stops)
        return False

    def take(self) -> str:
        """The text that became ready since the last call ('' if none)."""
        if self._ready <= self._emitted:
            return ""
        out = self.text[self._emitted:self._ready]
        self._emitted = self._ready
        return out

    def close(self) -> str:
        """The rest of the text, at the end of generation (a pending partial character too,
        unless a stop string ended it)."""
        if self.stop is None:
            self.text += self._decoder.decode(b"", final=True)
        self._ready = len(self.text)
        return self.take()

    @property
    def kept(self) -> int:
        """How many tokens the text holds (a stop string's tokens left out)."""
        if self.stop is None:
            return len(self.tokens)
        return sum(1 for s in self._starts if s < len(self.text))

    def completion(self, finish: FinishReason, *, prompt_tokens: int, cached_tokens: int,
                   prompt_ms: float, generation_ms: float, sampled: int,
                   logprobs: list[TokenLogprob] | None) -> Completion:
        kept = self.kept
        return Completion(
            text=self.text, tokens=tuple(self.tokens[:kept]), finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, cached_tokens=cached_tokens,
                        completion_tokens=kept),
            timings=Timings(prompt_ms=prompt_ms, generation_ms=generation_ms, generated=sampled),
            logprobs=tuple(logprobs[:kept]) if logprobs is not None else None, stop=self.stop)


def token_logprob(core: Any, ctx: Any, token: int, top_n: int, row: int,
                  text: Callable[[int], str]) -> TokenLogprob:
    """The log-probability of ``token`` and the ``top_n`` alternatives at a logits row."""
    lp, top = core.logprobs(ctx, token, top_n, row)
    return TokenLogprob(token=token, text=text(token), logprob=float(lp),
                        top=tuple((int(t), text(t), float(v)) for t, v in top))
