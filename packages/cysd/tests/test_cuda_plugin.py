"""cysd on the real CUDA plugin (ggml-cuda12-plugin or ggml-cuda13-plugin), when one is
installed and an NVIDIA GPU is present (marker ``gpu``; ``nox -s gpu`` runs these on a lent
GPU): the tiny model's image with every part on the GPU is close to the CPU's.

Tolerance as in test_vulkan_plugin.py (64x64 RGB in 0..255, f16 arithmetic on the GPU where the
CPU uses f32): mean absolute difference below 2, largest below 48, PSNR above 35 dB, while the
image of another seed differs by a mean of about 36.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if not any(importlib.util.find_spec(m) for m in ("ggml_cuda12_plugin", "ggml_cuda13_plugin")):
    pytest.skip("no CUDA plugin is installed", allow_module_level=True)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not Path("/proc/driver/nvidia/version").exists(), reason="needs an NVIDIA GPU and driver")]

CODE = """
import json, warnings, cysd
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = {{}}
    for name, gpu, seed in (("cpu", False, 9), ("gpu", True, 9), ("other", False, 10)):
        sd = cysd.StableDiffusion({model!r}, taesd={taesd!r}, n_threads=2, use_gpu=gpu)
        (image,) = sd.txt2img("a lighthouse", width=64, height=64, steps=2, seed=seed,
                              as_pil=False)
        out[name] = {{"device": sd.device, "pixels": image.tolist()}}
        del sd
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


def test_the_image_on_the_gpu_is_close_to_the_cpus(tiny_files: tuple[Path, Path]) -> None:
    model, taesd = tiny_files
    out = subprocess.run([sys.executable, "-c", CODE.format(model=str(model), taesd=str(taesd))],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "GGML_PLUGIN_DISABLE": "vulkan"})
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.splitlines()[-1])
    assert data["warnings"] == []
    assert (data["cpu"]["device"], data["gpu"]["device"]) == ("CPU", "CUDA0")
    cpu, gpu, other = (np.asarray(data[k]["pixels"], dtype=np.float64)
                       for k in ("cpu", "gpu", "other"))
    assert cpu.shape == gpu.shape == (64, 64, 3)
    assert cpu.std() > 5  # a picture, not a flat field
    diff = np.abs(cpu - gpu)
    psnr = 10 * np.log10(255**2 / max(float((diff**2).mean()), 1e-12))
    assert diff.mean() < 2 and diff.max() < 48 and psnr > 35, (diff.mean(), diff.max(), psnr)
    assert np.abs(cpu - other).mean() > 10 * max(float(diff.mean()), 0.5)
