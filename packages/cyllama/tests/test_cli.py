"""``python -m cyllama`` and the ``cyllama`` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cyllama import _core


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cyllama", *args], capture_output=True,
                          text=True, timeout=120)


def test_info_shows_fingerprint_and_cpu_module() -> None:
    out = run("info")
    assert out.returncode == 0, out.stderr
    assert f"ABI fingerprint {_core.fingerprint()}" in out.stdout
    assert "CPU module: libggml-cpu" in out.stdout
    assert "device CPU [cpu]" in out.stdout


def test_info_json() -> None:
    import json

    out = run("info", "--json")
    data = json.loads(out.stdout)
    assert data["fingerprint"] == _core.fingerprint()
    assert [b["name"] for b in data["backends"]].count("CPU") == 1


def test_generate(tiny_model: Path) -> None:
    out = run("generate", str(tiny_model), "The capital of France is", "-n", "5", "-t", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The capital of France is")
    assert len(out.stdout.strip()) > len("The capital of France is")


def test_generate_missing_model(tmp_path: Path) -> None:
    out = run("generate", str(tmp_path / "x.gguf"), "hi")
    assert out.returncode != 0
    assert "FileNotFoundError" in out.stderr and "model file not found" in out.stderr
