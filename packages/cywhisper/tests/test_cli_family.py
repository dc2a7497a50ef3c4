"""The cywhisper command, and cywhisper sharing one ggml with cyllama in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli import check_info, run_cli
from conftest import tone, write_wav
from cywhisper import _core


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("cywhisper", *args)


@pytest.mark.smoke
def test_info() -> None:
    assert check_info("cywhisper", _core).startswith(
        f"cywhisper 0.1.0 (whisper.cpp {_core.whisper_version()})\n")


def test_transcribe_formats(tiny_model: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", tone(3.0))
    srt = run("transcribe", str(wav), "-m", str(tiny_model), "-f", "srt", "-l", "en", "-t", "2")
    assert srt.returncode == 0, srt.stderr
    assert srt.stdout.startswith("1\n00:00:")
    out = tmp_path / "a.json"
    js = run("transcribe", str(wav), "-m", str(tiny_model), "-f", "json", "-o", str(out),
             "-l", "en")
    assert js.returncode == 0, js.stderr
    assert json.loads(out.read_text())["language"] == "en"
    lang = run("languages", str(wav), "-m", str(tiny_model), "--top", "3")
    assert lang.returncode == 0 and len(lang.stdout.splitlines()) == 3


def test_cli_errors_are_one_line(tiny_model: Path, tmp_path: Path) -> None:
    out = run("transcribe", str(tmp_path / "none.wav"), "-m", str(tiny_model))
    assert out.returncode == 1
    assert out.stderr.startswith("cywhisper transcribe: FileNotFoundError:")
    assert "audio file not found" in out.stderr


def test_with_cyllama_in_one_process(tiny_model: Path) -> None:
    pytest.importorskip("cyllama")
    code = f"""
import json, numpy as np, cyllama, cywhisper
a, b = cyllama.info(), cywhisper.info()
w = cywhisper.Whisper({str(tiny_model)!r}, n_threads=1)
t = w.transcribe(np.sin(np.arange(16000) / 10).astype(np.float32) * 0.3, fallback=False)
print(json.dumps({{"a": a, "b": b, "segments": len(t.segments)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.splitlines()[-1])
    a, b = data["a"], data["b"]
    assert a["fingerprint"] == b["fingerprint"]
    assert [r["name"] for r in b["backends"]].count("CPU") == 1
    assert a["cpu_module_loaded_by"] == b["cpu_module_loaded_by"] == "cyllama"  # used first
    assert data["segments"] >= 1
