"""tools/fuzz: the driver records every kind of failure, and a slice of every format's cases
(100 each, about a minute; `nox -s fuzz` runs 500) ends in typed errors or runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz.py"


def test_the_driver_sees_deaths_hangs_and_untyped_errors() -> None:
    out = subprocess.run([sys.executable, str(FUZZ), "--formats", "selftest", "--cases", "7",
                          "--timeout", "3"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("selftest")
    assert "7 cases:     1 typed errors,     3 ran, 3 failures" in lines[0]
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    assert failed[0].startswith("FAILED selftest:2 (untyped): untyped: KeyError")
    assert failed[1].startswith("FAILED selftest:3 (abort): died: signal SIGABRT")
    assert failed[2].startswith("FAILED selftest:5 (hang): hang: no answer within 3 s")


def test_a_slice_of_every_format() -> None:
    out = subprocess.run([sys.executable, str(FUZZ), "--cases", "100"], capture_output=True,
                         text=True, timeout=900)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    import formats  # tools/fuzz: pytest's pythonpath
    assert len([ln for ln in out.stdout.splitlines() if " 100 cases: " in ln]) \
        == len(formats.FORMATS) == 10


def test_the_whole_sweep() -> None:
    """Every header field of every swept format (whisper.cpp's, WAV's, GGUF's for llama, LoRA
    and stable-diffusion.cpp files) at each of its boundary values: typed errors or runs only."""
    import sweep
    out = subprocess.run([sys.executable, str(FUZZ), "--sweep"], capture_output=True,
                         text=True, timeout=900)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    for fmt in sweep.FORMATS:
        (line,) = [ln for ln in lines if ln.startswith(f"{fmt} (sweep)")]
        assert f" {sweep.count(fmt):d} cases: " in line and " 0 failures " in line, line
    assert sweep.count("whisper-model", once=True) >= 11 + 2 + 1  # header, mel, vocabulary
