"""Results of generation: completions, token log-probabilities, usage, timings, streams, states."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from ._grammar import Grammar
    from ._sampling import Sampling

__all__ = ["Completion", "GenerateOptions", "LoraAdapter", "State", "Stream", "Timings",
           "TokenLogprob", "Usage"]

FinishReason = Literal["length", "stop", "eos", "cancelled"]


class GenerateOptions(TypedDict, total=False):
    """The keyword options of :meth:`LLM.generate`, :meth:`LLM.stream`, :meth:`LLM.chat` and
    :meth:`LLM.chat_stream` (all optional; type checkers know them).

    Keys:
        max_tokens: the most tokens to generate (default 128; 512 for chat).
        sampling: how tokens are chosen (:class:`Sampling`); default :attr:`Sampling.GREEDY`
            (deterministic).
        stop: strings that end generation; the matched string is not part of the text.
        logprobs: also return each token's log-probability and this many alternatives (0-100).
        grammar: a GBNF grammar (text or :class:`Grammar`) the output must follow.
        json_schema: a JSON schema (dict, JSON text or pydantic model class) the output must
            validate against; the output is always parseable JSON. Not with ``grammar``.
    """

    max_tokens: int
    sampling: Sampling | None
    stop: str | Sequence[str] | None
    logprobs: int | None
    grammar: Grammar | str | None
    json_schema: Any


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its log-probability and the most likely alternatives.

    Log-probabilities are those of the model (log-softmax of its logits), before sampling
    parameters reshape the distribution. ``text`` is the token's own bytes decoded with
    replacement, so a token holding half of a multi-byte character shows ``\\ufffd``.
    """

    token: int
    text: str
    logprob: float
    top: tuple[tuple[int, str, float], ...]  # (token, text, logprob), most likely first


@dataclass(frozen=True)
class Usage:
    """Token counts of one call."""

    prompt_tokens: int  #: tokens of the prompt
    cached_tokens: int  #: prompt tokens found in the KV cache (not evaluated again)
    completion_tokens: int  #: tokens generated (a stop string's tokens excluded)

    @property
    def evaluated_prompt_tokens(self) -> int:
        """Prompt tokens that were evaluated by this call."""
        return self.prompt_tokens - self.cached_tokens


@dataclass(frozen=True)
class Timings:
    """Wall-clock times of one call, in milliseconds."""

    prompt_ms: float  #: evaluating the (uncached part of the) prompt
    generation_ms: float  #: sampling and evaluating the generated tokens
    generated: int  #: tokens sampled (including an end-of-generation token)

    @property
    def tokens_per_second(self) -> float:
        """Generation speed."""
        return self.generated / (self.generation_ms / 1000) if self.generation_ms > 0 else 0.0


@dataclass(frozen=True)
class Completion:
    """The result of :meth:`LLM.generate` or :meth:`LLM.chat`.

    ``finish_reason`` is ``"length"`` (``max_tokens`` or the context window reached), ``"stop"``
    (a stop string matched; it is not part of ``text``), ``"eos"`` (the model ended) or
    ``"cancelled"`` (an :class:`~cyllama.EngineRequest` cancelled before its end).
    """

    text: str
    tokens: tuple[int, ...]
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    logprobs: tuple[TokenLogprob, ...] | None = None
    stop: str | None = None  #: the stop string that ended generation

    def __str__(self) -> str:
        return self.text


class Stream(Iterator[str]):
    """Text pieces as they are generated; each is valid UTF-8 and stop strings never show.

    Iterate it (``for piece in stream``). Breaking out early cancels generation and leaves the
    LLM usable; after the last piece :attr:`completion` holds the whole result.
    """

    def __init__(self, gen: Generator[str, None, Completion]) -> None:
        self._gen = gen
        self._completion: Completion | None = None

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._gen)
        except StopIteration as stop:
            if self._completion is None:
                self._completion = stop.value
            raise

    @property
    def completion(self) -> Completion:
        """The full result, once the stream is exhausted."""
        if self._completion is None:
            raise RuntimeError("the stream has not finished: iterate it to the end first")
        return self._completion

    def close(self) -> None:
        """Stop generating (as breaking out of the loop does)."""
        self._gen.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, repr=False)
class State:
    """A snapshot of an LLM's context (KV cache and the tokens in it), from ``save_state()``."""

    tokens: tuple[int, ...]
    data: bytes
    n_ctx: int
    model: str

    def __repr__(self) -> str:
        return f"State({len(self.tokens)} tokens, {len(self.data) / 2**20:.1f} MiB)"


class LoraAdapter:
    """A LoRA adapter applied to an :class:`LLM` (from ``LLM.load_lora``)."""

    def __init__(self, core: object, path: str, scale: float) -> None:
        self._core = core
        self.path = path
        self.scale = scale

    @property
    def metadata(self) -> dict[str, str]:
        """The adapter's GGUF metadata."""
        return dict(self._core.metadata())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"LoraAdapter({self.path!r}, scale={self.scale})"
