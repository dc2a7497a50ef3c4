"""The real CUDA plugin (ggml-cuda12-plugin or ggml-cuda13-plugin), when one is installed
(``pip install cyllama[cuda]``).

Without a driver or GPU (CI, our build machines) the plugin must load, register no device,
produce exactly one warning, and leave CPU results unchanged. With a GPU (marker ``gpu``) the
model must run on it.
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

from cyllama import _core

CODE = """
import json, warnings, cyllama
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    info = cyllama.info()
    llm = cyllama.LLM({model!r}, n_ctx=128, n_threads=1)
    text = llm.generate("The capital of France is", max_tokens=8).text
print(json.dumps({{"plugins": info["plugins"], "layers": llm.layer_devices, "text": text,
                  "warnings": [str(w.message) for w in caught]}}))
"""


def run(model: Path, **env: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CODE.format(model=str(model))],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def serving(data: dict[str, object]) -> dict[str, object]:
    """The CUDA plugin the host tried last (with both builds installed, the other waits)."""
    plugins = [p for p in data["plugins"]  # type: ignore[attr-defined]
               if p["backend"] == "CUDA" and p["state"] != "standby"]
    return plugins[-1]  # type: ignore[no-any-return]


def has_gpu() -> bool:
    return Path("/proc/driver/nvidia/version").exists()


@pytest.mark.skipif(has_gpu(), reason="this test is for machines without an NVIDIA driver")
@pytest.mark.smoke
def test_without_driver_one_warning_and_cpu_unchanged(tiny_model: Path) -> None:
    data = run(tiny_model)
    cuda = serving(data)
    assert cuda["state"] == "no-device"
    assert cuda["fingerprint"] == _core.fingerprint()
    warnings = data["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert f"ggml plugin {cuda['name']!r} ({cuda['distribution']}) found no device" in warnings[0]
    assert data["layers"] == {"CPU": 3}
    cpu_only = run(tiny_model, GGML_PLUGIN_DISABLE="cuda12,cuda13")
    assert cpu_only["text"] == data["text"]
    assert cpu_only["warnings"] == []


@pytest.mark.gpu
@pytest.mark.skipif(not has_gpu(), reason="needs an NVIDIA GPU and driver")
def test_layers_run_on_cuda(tiny_model: Path) -> None:
    data = run(tiny_model)
    cuda = serving(data)
    assert cuda["state"] == "loaded", cuda
    layers = data["layers"]
    assert isinstance(layers, dict) and set(layers) == {"CUDA0"}
    assert data["warnings"] == []
