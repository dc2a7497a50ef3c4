"""cywhisper on the real CUDA plugin (ggml-cuda12-plugin or ggml-cuda13-plugin), when one is
installed and an NVIDIA GPU is present (marker ``gpu``; ``nox -s gpu`` runs these on a lent
GPU): the tiny model's transcripts on the GPU equal the CPU's, with no warning.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_compare import assert_same_transcripts, whisper_code

if not any(importlib.util.find_spec(m) for m in ("ggml_cuda12_plugin", "ggml_cuda13_plugin")):
    pytest.skip("no CUDA plugin is installed", allow_module_level=True)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not Path("/proc/driver/nvidia/version").exists(), reason="needs an NVIDIA GPU and driver")]



def test_transcripts_on_the_gpu_equal_the_cpus(tiny_model: Path) -> None:
    code = whisper_code(tiny_model, Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "GGML_PLUGIN_DISABLE": "vulkan"})
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["warnings"] == []
    assert data["cpu"]["device"] == "CPU" and data["gpu"]["device"] == "CUDA0"
    assert_same_transcripts(data)
