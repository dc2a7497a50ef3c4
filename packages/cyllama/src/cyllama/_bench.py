"""In-process benchmark with llama-bench's two tests: prompt processing (pp) and generation (tg).

pp: a prompt of ``n_prompt`` tokens evaluated into an empty cache (``LLM.eval``).
tg: ``LLM.generate`` of ``n_gen`` tokens (greedy sampling, the Python loop and detokenizing
included), reported per decoded token, and the part of it spent outside ``llama_decode``
(Python, the binding, sampling): the cost of using llama.cpp from Python rather than from C++.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

from ._llm import LLM

__all__ = ["BenchResult", "run"]

_TEXT = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun "


@dataclass(frozen=True)
class BenchResult:
    """Medians over the repetitions."""

    n_prompt: int
    n_gen: int
    reps: int
    pp_tokens_per_second: float
    tg_tokens_per_second: float
    tg_decodes: int  #: single-token decodes per tg repetition (stops early at end of text)
    tg_outside_decode_us: float  #: per generated token, time outside llama_decode

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


def run(llm: LLM, *, n_prompt: int = 512, n_gen: int = 128, reps: int = 3) -> BenchResult:
    """Measure ``llm`` (its cache is reset); needs ``n_ctx >= n_prompt`` and ``>= n_gen + 16``."""
    if n_prompt < 1 or n_gen < 1 or reps < 1:
        raise ValueError("n_prompt, n_gen and reps must be >= 1")
    if llm.n_ctx < max(n_prompt, n_gen + 16):
        raise ValueError(f"n_ctx {llm.n_ctx} is too small for pp{n_prompt} / tg{n_gen}")
    words = llm.tokenize(_TEXT * (n_prompt // 8 + 1), add_special=False)
    bos = llm.model.core.bos
    prompt = ([bos] if bos >= 0 and llm.model.core.add_bos else []) + words
    prompt = prompt[:n_prompt]
    start = prompt[:8]
    ctx = llm._ctx
    # Warm-up as llama-bench's: one whole pp run (a GPU backend compiles the pipelines of the
    # prompt's shapes on first use), then a short generation.
    llm.eval(prompt)
    llm.reset()
    llm.generate(start, max_tokens=2)
    pp: list[float] = []
    for _ in range(reps):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        pp.append(len(prompt) / (time.perf_counter() - t))
    tg: list[float] = []
    outside: list[float] = []
    decodes = 0
    for _ in range(reps):
        llm.reset()
        llm.eval(start)
        ctx.perf_reset()
        t = time.perf_counter()
        llm.generate(start, max_tokens=n_gen)  # re-evaluates start[-1], then n_gen - 1 tokens
        elapsed = time.perf_counter() - t
        calls, inside = ctx.decode_stats()
        decodes = int(calls)
        tg.append(decodes / elapsed)
        outside.append((elapsed - inside) * 1e6 / decodes)
    llm.reset()
    return BenchResult(n_prompt=len(prompt), n_gen=n_gen, reps=reps,
                       pp_tokens_per_second=statistics.median(pp),
                       tg_tokens_per_second=statistics.median(tg), tg_decodes=decodes,
                       tg_outside_decode_us=statistics.median(outside))
