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

if not any(importlib.util.find_spec(m) for m in ("ggml_cuda12_plugin", "ggml_cuda13_plugin")):
    pytest.skip("no CUDA plugin is installed", allow_module_level=True)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not Path("/proc/driver/nvidia/version").exists(), reason="needs an NVIDIA GPU and driver")]

CODE = """
import json, sys, warnings
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import tone
import cywhisper
clips = [tone(3.0), tone(2.0, freq=220.0),
         (np.random.default_rng(1).standard_normal(32000) * 0.1).astype(np.float32)]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = {{}}
    for name, gpu in (("cpu", False), ("gpu", True)):
        w = cywhisper.Whisper({model!r}, n_threads=2, use_gpu=gpu)
        out[name] = {{"device": w.device, "runs": [
            [[s.start, s.end, s.text] for s in w.transcribe(c, fallback=False).segments]
            for c in clips]}}
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


def test_transcripts_on_the_gpu_equal_the_cpus(tiny_model: Path) -> None:
    code = CODE.format(model=str(tiny_model), tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "GGML_PLUGIN_DISABLE": "vulkan"})
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["warnings"] == []
    assert data["cpu"]["device"] == "CPU" and data["gpu"]["device"] == "CUDA0"
    cpu, gpu = data["cpu"]["runs"], data["gpu"]["runs"]
    assert all(segments and segments[0][2].strip() for segments in cpu)  # real text
    assert gpu == cpu
