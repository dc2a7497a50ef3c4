"""The committed _core.pyi (used by type checkers) matches the built extension."""

from __future__ import annotations

from pathlib import Path

from stubs import check_stub_is_current  # tools/fixtures (conftest)


def test_stub_is_current(tmp_path: Path) -> None:
    check_stub_is_current("cysd._core", tmp_path)
