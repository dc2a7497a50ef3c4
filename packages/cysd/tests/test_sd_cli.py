"""cysd's pixels are upstream's: sd-cli (the pinned stable-diffusion.cpp's own program, on the
family ggml) and cysd render the same image for the same model, prompt, seed and settings.

sd-cli is built by the benchmark session (`nox -s bench -- sd`, build/bench/bin/sd-cli) or given
with CYSD_SD_CLI; without one these tests skip. Float results depend on the ggml CPU module, so
both must run the same one: cysd built with every CPU variant (the release and `nox -s tests`
configuration) picks the one sd-cli picks from the same set.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import cysd
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
SD_CLI = Path(os.environ.get("CYSD_SD_CLI")
              or REPO / "build" / "bench" / "bin" / "sd-cli").resolve()
pytestmark = pytest.mark.skipif(not SD_CLI.is_file(),
                                reason=f"no sd-cli at {SD_CLI} (nox -s bench -- sd builds it)")


def sd_cli(tmp: Path, *args: str) -> tuple[np.ndarray, str]:
    out = tmp / "sd-cli.png"
    proc = subprocess.run([str(SD_CLI), *args, "-o", str(out)], capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    with Image.open(out) as im:
        return np.asarray(im.convert("RGB")), log


@pytest.fixture(scope="module")
def same_cpu_module() -> str:
    module = str(cysd.info()["cpu_module"])
    if not re.fullmatch(r"libggml-cpu-\w+\.so", module):
        pytest.skip(f"cysd runs {module} (a GGML_FAMILY_CPU=host build): sd-cli picks among "
                    "every CPU variant, so their floats may differ")
    return module


@pytest.mark.parametrize(("sampler", "seed", "size"), [("euler_a", 42, (128, 64)),
                                                       ("dpm++2m", 7, (64, 64))])
def test_txt2img_pixels_equal_sd_cli(sd: cysd.StableDiffusion, tiny_files: tuple[Path, Path],
                                     same_cpu_module: str, tmp_path: Path, sampler: str,
                                     seed: int, size: tuple[int, int]) -> None:
    model, taesd = tiny_files
    prompt = "a lighthouse on a cliff at dawn, (oil painting:1.2)"
    width, height = size
    expected, log = sd_cli(tmp_path, "-m", str(model), "--taesd", str(taesd), "-p", prompt,
                           "-n", "blurry", "-W", str(width), "-H", str(height), "--steps", "2",
                           "-s", str(seed), "--cfg-scale", "5.5", "-t", "2",
                           "--sampling-method", sampler)
    assert f"loaded CPU backend from {SD_CLI.parent / same_cpu_module}" in log
    (ours,) = sd.txt2img(prompt, "blurry", width=width, height=height, steps=2, seed=seed,
                         cfg_scale=5.5, sampler=sampler, as_pil=False)
    assert ours.shape == expected.shape == (height, width, 3)
    assert ours.std() > 1  # an image, not a flat fill
    np.testing.assert_array_equal(ours, expected)


def test_img2img_pixels_equal_sd_cli(sd: cysd.StableDiffusion, tiny_files: tuple[Path, Path],
                                     same_cpu_module: str, tmp_path: Path) -> None:
    model, taesd = tiny_files
    rng = np.random.default_rng(3)
    init = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    init_png = tmp_path / "init.png"
    Image.fromarray(init).save(init_png)
    expected, _ = sd_cli(tmp_path, "-m", str(model), "--taesd", str(taesd), "-p", "a red door",
                         "-i", str(init_png), "--strength", "0.6", "--steps", "3", "-s", "11",
                         "-t", "2", "--sampling-method", "euler")
    (ours,) = sd.img2img(init, "a red door", strength=0.6, steps=3, seed=11, sampler="euler",
                         as_pil=False)
    assert ours.shape == expected.shape == (64, 128, 3)
    np.testing.assert_array_equal(ours, expected)


def test_lora_pixels_equal_sd_cli(tiny_files: tuple[Path, Path], lora_dir: Path,
                                  same_cpu_module: str, tmp_path: Path) -> None:
    """The same LoRA tag, the same folder: cysd resolves and weighs it as sd-cli does."""
    model, taesd = tiny_files
    prompt = "a cat <lora:tiny:0.8>"
    expected, log = sd_cli(tmp_path, "-m", str(model), "--taesd", str(taesd), "-p", prompt,
                           "--lora-model-dir", str(lora_dir), "-W", "64", "-H", "64",
                           "--steps", "2", "-s", "5", "-t", "2")
    assert "(3 / 3) LoRA tensors have been applied" in log
    sd = cysd.StableDiffusion(model, taesd=taesd, lora_dir=lora_dir, n_threads=2)
    (ours,) = sd.txt2img(prompt, width=64, height=64, steps=2, seed=5, as_pil=False)
    np.testing.assert_array_equal(ours, expected)
