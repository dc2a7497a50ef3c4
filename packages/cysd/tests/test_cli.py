"""The cysd console script: info, txt2img, img2img, upscale; errors as one line, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli import check_info, run_cli
from cysd import _core
from PIL import Image


def cysd(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("cysd", *args)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.smoke
def test_info() -> None:
    assert check_info("cysd", _core).startswith(
        "cysd 0.1.0 (stable-diffusion.cpp stable-diffusion-cpp-python-0.4.7)\n")


def test_txt2img_img2img_upscale(tiny_files: tuple[Path, Path], esrgan: Path,
                                 tmp_path: Path) -> None:
    model, taesd = tiny_files
    first = tmp_path / "a.png"
    common = ["-m", str(model), "--taesd", str(taesd), "--steps", "1", "-t", "2", "-q"]
    out = cysd("txt2img", "a lighthouse", *common, "-W", "64", "-H", "128", "-o", str(first))
    assert out.returncode == 0, out.stderr
    assert pixels(first).shape == (128, 64, 3)
    second = tmp_path / "b.png"
    out = cysd("img2img", str(first), "at dusk", *common, "--strength", "0.5", "-o", str(second))
    assert out.returncode == 0, out.stderr
    assert pixels(second).shape == (128, 64, 3)
    assert not np.array_equal(pixels(first), pixels(second))
    big = tmp_path / "big.png"
    out = cysd("upscale", str(first), "-m", str(esrgan), "-t", "2", "-o", str(big))
    assert out.returncode == 0, out.stderr
    assert pixels(big).shape == (256, 128, 3)


def test_errors_are_one_line(tiny_files: tuple[Path, Path], tmp_path: Path) -> None:
    model, taesd = tiny_files
    out = cysd("txt2img", "x", "-m", str(model), "--taesd", str(taesd), "-W", "60",
               "-o", str(tmp_path / "x.png"))
    assert out.returncode == 1
    assert out.stderr.strip() == ("cysd txt2img: ValueError: width must be a multiple of 64 "
                                  "for this model, got 60 (try 64)")
    out = cysd("txt2img", "x", "-m", str(tmp_path / "none.gguf"))
    assert out.returncode == 1 and "FileNotFoundError" in out.stderr


def test_without_pillow_one_line_before_any_work(tiny_files: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    model, _ = tiny_files
    blocked = ("import sys; sys.modules['PIL'] = None; from cysd.__main__ import main; "
               "sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", blocked, "txt2img", "x", "-m", str(model), "-o",
                          str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == ("cysd txt2img: reading and writing image files needs Pillow: "
                                  "pip install 'cysd[pil]'")
    assert not (tmp_path / "o.png").exists()
    info = subprocess.run([sys.executable, "-c", blocked, "info"], capture_output=True,
                          text=True, timeout=120)
    assert info.returncode == 0 and info.stdout.startswith("cysd "), info.stderr
