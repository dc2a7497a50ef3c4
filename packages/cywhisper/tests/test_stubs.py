"""The committed _core.pyi (used by type checkers) matches the built extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cywhisper import _core


def test_stub_is_current(tmp_path: Path) -> None:
    pytest.importorskip("nanobind", reason="nanobind's stubgen is needed to regenerate stubs")
    out = tmp_path / "_core.pyi"
    subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "cywhisper._core",
                    "-o", str(out)], check=True)
    shipped = Path(_core.__file__).with_name("_core.pyi")
    assert shipped.read_text() == out.read_text(), "run `nox -s stubs` and commit the result"
