"""Resources: a thousand create/generate/close cycles do not grow the process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cycles import rss_growth, sanitized  # tools/fixtures (conftest)

pytestmark = pytest.mark.skipif(sanitized(), reason="RSS under ASan measures its quarantine")


def test_a_thousand_llms(tiny_model: Path) -> None:
    # Settling takes ~500 cycles: besides pools and caches, each Engine starts a thread and
    # glibc makes per-thread malloc arenas up to its cap. A leak of the model or its context
    # would be megabytes per cycle.
    before, after = rss_growth("import cyllama", f"""
        with cyllama.LLM({str(tiny_model)!r}, n_ctx=64, n_threads=1) as llm:
            llm.generate("the", max_tokens=4)
            if i % 10 == 0:
                llm.embed("hello")
                with cyllama.Engine(llm, n_parallel=2, n_ctx=32) as engine:
                    engine.generate_batch(["a", "b"], max_tokens=2)
        """, settle=500, cycles=1000)
    print(f"RSS {before:.1f} MB -> {after:.1f} MB after 1000 cycles")
    assert after - before < 10, f"RSS grew {after - before:.1f} MB over 1000 cycles"
