"""Smoke tests: run against an installed wheel by the release (``nox -s wheels``, cibuildwheel).

Quick, but real: the wheel's own ggml libraries load, the fingerprint in the extension agrees
with the one in the library names, the best CPU module is picked, and a model transcribes.
"""

from __future__ import annotations

from pathlib import Path

import cywhisper
import numpy as np
import pytest
from smoke import check_console_info, check_wheel_libraries  # tools/fixtures (conftest)

pytestmark = pytest.mark.smoke


def test_wheel_libraries_and_fingerprint() -> None:
    check_wheel_libraries(cywhisper)


def test_transcribes(tiny_model: Path) -> None:
    audio = (np.sin(np.arange(2 * 16000) / 9) * 0.3).astype(np.float32)
    w = cywhisper.Whisper(tiny_model, n_threads=1)
    first = w.transcribe(audio, fallback=False)
    assert first.segments and first.text == w.transcribe(audio, fallback=False).text
    assert all(0.0 <= s.start <= s.end <= 2.0 + 1e-6 for s in first.segments)


def test_console_script_info() -> None:
    check_console_info(cywhisper)
