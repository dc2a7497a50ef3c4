"""The CUDA plugin's driver check, on the CPU with a stand-in driver library
(tools/fixtures/standin_driver.py): a driver older than the build's CUDA major version declines
the plugin before its module is loaded, with one warning naming the driver found and the one
needed; the work stays on the CPU. The plugin's Python package comes from this checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cyllama import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "fixtures"))
from fake_plugin import plugin_env
from standin_driver import cuda_plugin_site, standin_libcuda

CODE = """
import json, warnings, cyllama, ggml_cuda_plugin
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    found = ggml_cuda_plugin.driver_cuda_version()
    info = cyllama.info()
    llm = cyllama.LLM({model!r}, n_ctx=64, n_threads=1)
print(json.dumps({{"found": found, "plugins": info["plugins"], "layers": llm.layer_devices,
                   "warnings": [str(w.message) for w in caught]}}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.platform != "linux":
        pytest.skip("the CUDA plugin is Linux only")
    return cuda_plugin_site(tmp_path_factory.mktemp("site"), _core.fingerprint())


def run(model: Path, site: Path, version: str) -> dict[str, object]:
    env = plugin_env(site, GGML_PLUGIN_DISABLE="vulkan", LD_LIBRARY_PATH=str(standin_libcuda()),
                     STANDIN_CUDA_DRIVER_VERSION=version)
    out = subprocess.run([sys.executable, "-c", CODE.format(model=str(model))],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_too_old_driver_declines_the_plugin_with_one_warning(tiny_model: Path,
                                                                site: Path) -> None:
    data = run(tiny_model, site, "12040")  # what a 550 driver reports: CUDA 12.4
    assert data["found"] == 12040
    (cuda,) = [p for p in data["plugins"] if p["name"] == "cuda"]  # type: ignore[union-attr]
    assert cuda["state"] == "failed"
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert warning.startswith("ggml plugin 'cuda' (ggml-cuda-plugin) could not be loaded: "
                              "OSError: the NVIDIA driver is too old: it supports ")
    assert "CUDA 12.4, and this plugin, built with CUDA 13, needs a driver for CUDA 13.0 or " \
           "newer (R580 or later); update the NVIDIA driver; running on the CPU" in warning
    assert data["layers"] == {"CPU": 3}


def test_a_new_enough_driver_passes_the_check(tiny_model: Path, site: Path) -> None:
    # CUDA 13.1: the check passes and the plugin goes on to preload the CUDA runtime, which is
    # not installed here (no nvidia-* wheels): a different warning, never the driver's.
    data = run(tiny_model, site, "13010")
    assert data["found"] == 13010
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert "driver is too old" not in warning
    assert "could not be loaded" in warning
    assert data["layers"] == {"CPU": 3}
