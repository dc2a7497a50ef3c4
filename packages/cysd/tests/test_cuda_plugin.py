"""cysd on the real CUDA plugin (ggml-cuda12-plugin or ggml-cuda13-plugin), when one is
installed and an NVIDIA GPU is present (marker ``gpu``; ``nox -s gpu`` runs these on a lent
GPU): the tiny model's image with every part on the GPU is close to the CPU's.
(Tolerance: tools/fixtures/gpu_compare.py.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_compare import assert_close_image, sd_code

if not any(importlib.util.find_spec(m) for m in ("ggml_cuda12_plugin", "ggml_cuda13_plugin")):
    pytest.skip("no CUDA plugin is installed", allow_module_level=True)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not Path("/proc/driver/nvidia/version").exists(), reason="needs an NVIDIA GPU and driver")]



def test_the_image_on_the_gpu_is_close_to_the_cpus(tiny_files: tuple[Path, Path]) -> None:
    model, taesd = tiny_files
    out = subprocess.run([sys.executable, "-c", sd_code(model, taesd)], capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "GGML_PLUGIN_DISABLE": "vulkan"})
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["warnings"] == []
    assert (data["cpu"]["device"], data["gpu"]["device"]) == ("CPU", "CUDA0")
    assert_close_image(data)
