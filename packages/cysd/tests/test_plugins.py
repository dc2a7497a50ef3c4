"""cysd on a GPU plugin's device, with the fake backend module (a "GPU" that computes on the
CPU): a registered GPU is used by default, and does the work; use_gpu=False stays on the CPU
with the plugin loaded; use_gpu=True without a GPU is a BackendError. Each test runs a fresh
interpreter (plugin discovery happens once per process) with the plugin on PYTHONPATH.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cysd import _core
from fake_plugin import BuiltBackend, fake_backend_for, plugin_env, write_plugin


@pytest.fixture(scope="module")
def fake() -> BuiltBackend:
    return fake_backend_for(_core)


@pytest.fixture
def site(tmp_path: Path, fake: BuiltBackend) -> Path:
    site = tmp_path / "site"
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    return site


def run(code: str, site: Path, **env: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=plugin_env(site, **env), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


GENERATE = """
import ctypes, hashlib, json, cysd
sd = cysd.StableDiffusion({model!r}, taesd={taesd!r}, n_threads=2{extra})
(image,) = sd.txt2img("a lighthouse", width=64, height=64, steps=2, seed=9, as_pil=False)
stats = (ctypes.c_int64 * 4)()
ctypes.CDLL({library!r}).ggml_fake_backend_stats(stats)
print(json.dumps({{"device": sd.device, "graphs": stats[0], "nodes": stats[1],
                   "pixels": hashlib.sha256(image.tobytes()).hexdigest(),
                   "std": float(image.std())}}))
"""


def test_a_registered_gpu_is_used_and_does_the_work(fake: BuiltBackend, site: Path,
                                                     tiny_files: tuple[Path, Path]) -> None:
    model, taesd = tiny_files
    code = GENERATE.format(model=str(model), taesd=str(taesd), library=str(fake.library),
                           extra="")
    on_fake = run(code, site)
    assert on_fake["device"] == "FAKE0"
    # CLIP, 2 UNet steps (with and without the prompt), the TAESD decoder: all graphs on it.
    assert isinstance(on_fake["graphs"], int) and on_fake["graphs"] >= 4
    assert isinstance(on_fake["nodes"], int) and on_fake["nodes"] > 500

    on_cpu = run(GENERATE.format(model=str(model), taesd=str(taesd), library=str(fake.library),
                                 extra=", use_gpu=False"), site)
    assert on_cpu["device"] == "CPU"
    assert on_cpu["graphs"] == 0  # the plugin is loaded, but nothing ran on it
    assert isinstance(on_cpu["std"], float) and on_cpu["std"] > 1
    assert on_fake["pixels"] == on_cpu["pixels"]  # the same image on either device


def test_upscaler_follows_use_gpu(fake: BuiltBackend, site: Path, esrgan: Path) -> None:
    code = f"""
import ctypes, json, numpy as np, cysd
devices = []
for use_gpu in (None, False):
    up = cysd.Upscaler({str(esrgan)!r}, n_threads=2, use_gpu=use_gpu)
    out = up(np.full((32, 48, 3), 128, np.uint8), as_pil=False)
    stats = (ctypes.c_int64 * 4)()
    ctypes.CDLL({str(fake.library)!r}).ggml_fake_backend_stats(stats)
    devices.append([up.device, list(out.shape), stats[0]])
print(json.dumps({{"devices": devices}}))
"""
    (gpu, cpu) = run(code, site)["devices"]  # type: ignore[misc]
    assert gpu[0] == "FAKE0" and gpu[1] == [64, 96, 3] and gpu[2] >= 1
    assert cpu[0] == "CPU" and cpu[1] == [64, 96, 3] and cpu[2] == gpu[2]  # no new graphs


def test_use_gpu_without_a_gpu_is_an_error(site: Path, tiny_files: tuple[Path, Path]) -> None:
    model, _ = tiny_files
    code = f"""
import json, cysd
try:
    cysd.StableDiffusion({str(model)!r}, use_gpu=True)
except cysd.BackendError as e:
    print(json.dumps({{"error": str(e)}}))
"""
    error = run(code, site, GGML_PLUGIN_DISABLE="fake,cuda")["error"]
    assert isinstance(error, str)
    assert error.startswith("use_gpu=True asks for a GPU")
    assert "use_gpu=False" in error
