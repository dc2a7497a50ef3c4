"""Resources: a hundred load/transcribe cycles do not grow the process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cycles import rss_growth, sanitized  # tools/fixtures (conftest)

pytestmark = pytest.mark.skipif(sanitized(), reason="RSS under ASan measures its quarantine")


def test_a_hundred_whispers(tiny_model: Path) -> None:
    before, after = rss_growth("import numpy as np\nimport cywhisper", f"""
        w = cywhisper.Whisper({str(tiny_model)!r}, n_threads=1)
        w.transcribe(np.zeros(8000, dtype=np.float32), language="en", fallback=False)
        del w
        """, settle=50, cycles=100)
    print(f"RSS {before:.1f} MB -> {after:.1f} MB after 100 cycles")
    assert after - before < 10, f"RSS grew {after - before:.1f} MB over 100 cycles"
