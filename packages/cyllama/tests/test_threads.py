"""Threads: the GIL is released while llama.cpp computes; one LLM used from several threads
serialises; separate LLMs run in parallel; an interrupted call leaves the LLM usable."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cyllama import LLM
from interrupt import interrupt_after  # tools/fixtures (conftest)


def test_other_thread_progresses_during_generate(tiny_model: Path) -> None:
    llm = LLM(tiny_model, n_ctx=512, n_threads=1, n_batch=512)
    prompt = "the capital of France is " * 20
    llm.generate(prompt, max_tokens=1)  # warm up

    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0)

    # Measure how far the thread gets when it has the interpreter to itself for the same time.
    thread = threading.Thread(target=spin)
    start = time.perf_counter()
    thread.start()
    llm._ctx.truncate(0)
    llm._cached.clear()
    llm.generate(prompt, max_tokens=200)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    during = ticks

    ticks = 0
    stop.clear()
    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(elapsed)
    stop.set()
    thread.join()
    alone = ticks
    # With the GIL held for the whole decode the spinner would get only scraps of time.
    assert during > 0.2 * alone, (during, alone)


PROMPTS = ["the capital of France is", "once upon a time", "one two three", "a b c d"]


def test_one_llm_from_several_threads_serialises(tiny_model: Path) -> None:
    """Calls on one LLM from several threads wait for each other: each result is what it
    would be alone (without the lock, two decodes ran on one KV cache at once)."""
    llm = LLM(tiny_model, n_ctx=256, n_threads=1)
    want = {p: llm.generate(p, max_tokens=150).text for p in PROMPTS}
    got: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(p: str) -> None:
        try:
            for _ in range(5):
                got[p] = llm.generate(p, max_tokens=150).text
                assert got[p] == want[p]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(p,)) for p in PROMPTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert got == want


def test_a_stream_interrupted_from_another_thread_raises(tiny_model: Path) -> None:
    llm = LLM(tiny_model, n_ctx=256, n_threads=1)
    want = llm.generate(PROMPTS[1], max_tokens=8).text
    stream = llm.stream(PROMPTS[0], max_tokens=100)
    next(stream)
    other: list[str] = []
    t = threading.Thread(target=lambda: other.append(llm.generate(PROMPTS[1],
                                                                  max_tokens=8).text))
    t.start()
    t.join()
    assert other == [want]
    with pytest.raises(RuntimeError, match="interrupted by another call"):
        list(stream)
    assert llm.generate(PROMPTS[1], max_tokens=8).text == want


def test_separate_llms_run_in_parallel_threads(tiny_model: Path) -> None:
    llms = [LLM(tiny_model, n_ctx=256, n_threads=1) for _ in PROMPTS]
    want = [llm.generate(p, max_tokens=60).text for llm, p in zip(llms, PROMPTS, strict=True)]
    for llm in llms:
        llm.reset()
    got: list[str | None] = [None] * len(PROMPTS)

    def worker(i: int) -> None:
        got[i] = llms[i].generate(PROMPTS[i], max_tokens=60).text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def test_keyboard_interrupt_leaves_the_llm_usable(tiny_model: Path) -> None:
    llm = LLM(tiny_model, n_ctx=4096, n_threads=1)
    want = LLM(tiny_model, n_ctx=4096, n_threads=1).generate(PROMPTS[2], max_tokens=12).text
    with pytest.raises(KeyboardInterrupt), interrupt_after(0.2):
        llm.generate(PROMPTS[0], max_tokens=4000)  # ~2 s on the tiny model
    assert llm.generate(PROMPTS[2], max_tokens=12).text == want
