"""The CUDA plugins' driver check and the choice between the CUDA 12 and CUDA 13 builds, on the
CPU with a stand-in driver library (tools/fixtures/standin_driver.py) that reports a chosen CUDA
version. A driver older than a build's CUDA major version declines that build before its module
is loaded, with one warning naming the driver found, the one needed and the build to install;
with both builds installed the host loads the newest the driver runs and says so in info().
The plugins' Python packages come from this checkout; where a module is loaded it is the fake
backend registered as "CUDA" (its device, FAKE0, computes on the CPU).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cyllama import _core
from fake_plugin import fake_backend_for, plugin_env
from standin_driver import cuda_plugin_site, standin_libcuda

CODE = """
import json, warnings, cyllama
from ggml_family import cuda
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    found = cuda.driver_cuda_version()
    info = cyllama.info()
    llm = cyllama.LLM({model!r}, n_ctx=64, n_threads=1)
print(json.dumps({{"found": found, "plugins": {{p["name"]: p for p in info["plugins"]}},
                   "layers": llm.layer_devices, "warnings": [str(w.message) for w in caught]}}))
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the CUDA plugins are Linux only")


def run(model: Path, site: Path, version: str, gpus: str = "") -> dict[str, object]:
    """The host in a fresh interpreter with the stand-in driver of CUDA ``version`` (12040 for
    12.4) and GPUs of the compute capabilities ``gpus`` ("8.6,9.0"; none: no GPU)."""
    env = plugin_env(site, GGML_PLUGIN_DISABLE="vulkan", LD_LIBRARY_PATH=str(standin_libcuda()),
                     STANDIN_CUDA_DRIVER_VERSION=version, STANDIN_CUDA_GPUS=gpus)
    out = subprocess.run([sys.executable, "-c", CODE.format(model=str(model))],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cuda13_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cuda_plugin_site(tmp_path_factory.mktemp("site13"), _core.fingerprint(), 13)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both builds installed, each with the fake "CUDA" module and stand-in runtime libraries."""
    module = fake_backend_for(_core, registry="CUDA").library
    site = tmp_path_factory.mktemp("both")
    for major in (12, 13):
        cuda_plugin_site(site, _core.fingerprint(), major, module)
    return site


def test_a_too_old_driver_declines_the_plugin_with_one_warning(tiny_model: Path,
                                                                cuda13_only: Path) -> None:
    data = run(tiny_model, cuda13_only, "12040")  # what a 550 driver reports: CUDA 12.4
    assert data["found"] == 12040
    cuda = data["plugins"]["cuda13"]  # type: ignore[index]
    assert cuda["state"] == "declined"
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert warning.startswith("ggml plugin 'cuda13' (ggml-cuda13-plugin) could not be loaded: "
                              "DriverTooOld: the NVIDIA driver is too old: it supports ")
    assert warning.endswith(
        "CUDA 12.4, and this plugin, built with CUDA 13, needs a driver for CUDA 13.0 or newer "
        "(R580 or later); update the NVIDIA driver or install the CUDA 12 build, "
        'ggml-cuda12-plugin: pip install "ggml-cuda12-plugin==0.1.0"; running on the CPU')
    assert data["layers"] == {"CPU": 3}


def test_a_new_enough_driver_passes_the_check(tiny_model: Path, cuda13_only: Path) -> None:
    # CUDA 13.1: the check passes and the plugin goes on to preload the CUDA runtime, which is
    # not installed here (no nvidia-* wheels): a different warning, never the driver's.
    data = run(tiny_model, cuda13_only, "13010")
    assert data["found"] == 13010
    assert data["plugins"]["cuda13"]["state"] == "failed"  # type: ignore[index]
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert "driver is too old" not in warning
    assert "libcudart.so.13 not found in the nvidia-* wheels; reinstall them: pip install " \
           "--force-reinstall 'nvidia-cuda-runtime>=13,<14' 'nvidia-cublas>=13,<14'" in warning
    assert data["layers"] == {"CPU": 3}


@pytest.mark.parametrize(("driver", "serving", "other", "state", "reason"), [
    # an R570 driver (CUDA 12.8): the CUDA 13 build is declined, the CUDA 12 build serves
    ("12080", "cuda12", "cuda13", "declined", "built with CUDA 13, needs a driver for CUDA 13.0"),
    # an R580 driver: the newer build serves, the other waits
    ("13000", "cuda13", "cuda12", "standby", "ggml-cuda13-plugin serves CUDA (loaded)"),
])
def test_with_both_builds_the_driver_picks_one(tiny_model: Path, both: Path, driver: str,
                                              serving: str, other: str, state: str,
                                              reason: str) -> None:
    data = run(tiny_model, both, driver)
    plugins: dict[str, dict[str, str]] = data["plugins"]  # type: ignore[assignment]
    assert plugins[serving]["state"] == "loaded"
    assert plugins[serving]["path"].endswith(f"ggml_{serving}_plugin/libggml-cuda.so")
    assert plugins[other]["state"] == state and reason in plugins[other]["reason"]
    assert data["warnings"] == []  # one build serves: nothing to warn about
    assert data["layers"] == {"FAKE0": 3}


def test_a_driver_too_old_for_both_builds_warns_once(tiny_model: Path, both: Path) -> None:
    data = run(tiny_model, both, "11080")  # an R520 driver: CUDA 11.8
    plugins = data["plugins"]
    assert {plugins[n]["state"] for n in ("cuda12", "cuda13")} == {"declined"}  # type: ignore[index]
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert warning.startswith("ggml plugin 'cuda12' (ggml-cuda12-plugin) could not be loaded: ")
    assert warning.endswith("CUDA 11.8, and this plugin, built with CUDA 12, needs a driver for "
                            "CUDA 12.0 or newer (R525 or later); update the NVIDIA driver; "
                            "running on the CPU")
    assert data["layers"] == {"CPU": 3}


def test_a_gpu_without_code_in_the_build_is_declined(tiny_model: Path, both: Path) -> None:
    # A T4 (Turing, 7.5) on an R570 driver: the CUDA 13 build needs R580, and the CUDA 12
    # build has machine code for sm_80 and sm_90 only. Loaded, its first kernel would abort.
    data = run(tiny_model, both, "12080", "7.5")
    plugins = data["plugins"]
    assert {plugins[n]["state"] for n in ("cuda12", "cuda13")} == {"declined"}  # type: ignore[index]
    (warning,) = data["warnings"]  # type: ignore[misc]
    assert warning.startswith(
        "ggml plugin 'cuda12' (ggml-cuda12-plugin) could not be loaded: NoCodeForGpu: this "
        "plugin, built for CUDA architectures 80-real;90-real, has no code for GPU 0 (compute "
        "capability 7.5), and its first kernel there would abort the process; hide that GPU "
        "with CUDA_VISIBLE_DEVICES or install the CUDA 13 build, which carries PTX for every GPU "
        "from Turing on (it needs an R580+ driver), ggml-cuda13-plugin: pip install "
        '"ggml-cuda13-plugin==0.1.0"')
    assert data["layers"] == {"CPU": 3}


def test_gpus_with_code_in_the_build_run_on_it(tiny_model: Path, both: Path) -> None:
    # An A10 (8.6) and an H100 (9.0) on an R570 driver: the CUDA 12 build's sm_80 and sm_90
    # code; a Blackwell (12.0) on an R580 driver: the CUDA 13 build's Turing PTX.
    data = run(tiny_model, both, "12080", "8.6,9.0")
    assert data["plugins"]["cuda12"]["state"] == "loaded"  # type: ignore[index]
    assert data["warnings"] == []
    data = run(tiny_model, both, "13000", "12.0")
    assert data["plugins"]["cuda13"]["state"] == "loaded"  # type: ignore[index]
    assert data["plugins"]["cuda12"]["state"] == "standby"  # type: ignore[index]
    assert data["warnings"] == []
    assert data["layers"] == {"FAKE0": 3}


def test_the_no_device_hint_says_what_is_missing(cuda13_only: Path) -> None:
    code = "import ggml_cuda13_plugin as p; print(p.no_device_hint())"
    hints = []
    for standin, gpus in ((False, ""), (True, ""), (True, "9.0")):
        env = plugin_env(cuda13_only, STANDIN_CUDA_DRIVER_VERSION="13000", STANDIN_CUDA_GPUS=gpus,
                         CUDA_VISIBLE_DEVICES="0",
                         LD_LIBRARY_PATH=str(standin_libcuda()) if standin else "/nonexistent")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        hints.append(out.stdout.strip())
    if not Path("/proc/driver/nvidia/version").exists():  # no real driver to find instead
        assert hints[0] == ("no NVIDIA driver was found (libcuda.so.1 cannot be loaded): install "
                            "the NVIDIA driver, R580 or later for this build")
    assert hints[1] == ("the NVIDIA driver shows no GPU (check nvidia-smi, and "
                        "CUDA_VISIBLE_DEVICES: 0)")
    assert hints[2] == "the NVIDIA driver shows GPUs, but ggml's CUDA backend registered none"
