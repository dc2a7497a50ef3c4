"""Smoke tests: run against an installed wheel by the release (``nox -s wheels``, cibuildwheel).

Quick, but real: the wheel's own ggml libraries load, the fingerprint in the extension agrees
with the one in the library names, the best CPU module for this machine is picked, and a model
generates tokens.
"""

from __future__ import annotations

from pathlib import Path

import cyllama
import pytest
from smoke import check_console_info, check_wheel_libraries  # tools/fixtures (conftest)

pytestmark = pytest.mark.smoke


def test_wheel_libraries_and_fingerprint() -> None:
    check_wheel_libraries(cyllama)


def test_generates_tokens(tiny_model: Path) -> None:
    llm = cyllama.LLM(tiny_model, n_ctx=64, n_threads=1)
    first = llm.generate("the", max_tokens=6)
    again = cyllama.LLM(tiny_model, n_ctx=64, n_threads=1).generate("the", max_tokens=6)
    assert first.text and first.text == again.text
    assert first.usage.completion_tokens == 6


def test_console_script_info() -> None:
    check_console_info(cyllama)
