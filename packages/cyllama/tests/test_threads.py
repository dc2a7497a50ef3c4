"""The GIL is released while llama.cpp computes: other Python threads keep running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cyllama import LLM


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
