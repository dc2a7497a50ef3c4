"""Bad input gives a typed error naming the problem; the interpreter survives."""

from __future__ import annotations

from pathlib import Path

import cysd
import numpy as np
import pytest
from PIL import Image

SMALL = {"width": 64, "height": 128, "steps": 1}


def test_missing_model() -> None:
    with pytest.raises(FileNotFoundError, match="model file not found"):
        cysd.StableDiffusion("/nonexistent/model.gguf")
    with pytest.raises(ValueError, match="give a model"):
        cysd.StableDiffusion()


def test_corrupt_and_truncated_models(tmp_path: Path, tiny_files: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(cysd.ModelLoadError, match=r"not a model stable-diffusion\.cpp reads"):
        cysd.StableDiffusion(junk)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(cysd.ModelLoadError, match="empty"):
        cysd.StableDiffusion(empty)
    model, taesd = tiny_files
    truncated = tmp_path / "truncated.gguf"
    with model.open("rb") as f:
        truncated.write_bytes(f.read(model.stat().st_size // 2))
    with pytest.raises(cysd.ModelLoadError):
        cysd.StableDiffusion(truncated, taesd=taesd, n_threads=2)
    bad_header = tmp_path / "bad.gguf"
    bad_header.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(cysd.ModelLoadError):
        cysd.StableDiffusion(bad_header, n_threads=2)
    header_only = tmp_path / "header.safetensors"
    header_only.write_bytes((10_000).to_bytes(8, "little") + b'{"a":')
    with pytest.raises(cysd.ModelLoadError, match="truncated"):
        cysd.StableDiffusion(header_only)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"width": 60}, ValueError, r"width must be a multiple of 64 for this model, got 60 \(try 64"),
    ({"height": 0}, ValueError, "height must be in"),
    ({"steps": 0}, ValueError, "steps must be in"),
    ({"cfg_scale": float("nan")}, ValueError, "cfg_scale must be in"),
    ({"sampler": "euler_z"}, ValueError, "unknown sampler 'euler_z'; known: euler, "),
    ({"scheduler": "fast"}, ValueError, "unknown scheduler 'fast'"),
    ({"seed": -5}, ValueError, "seed must be in"),
    ({"batch_count": 0}, ValueError, "batch_count must be in"),
    ({"steps": 1.5}, TypeError, "steps must be an int"),
    ({"progress": 3}, TypeError, "progress must be callable"),
])
def test_bad_parameters(sd: cysd.StableDiffusion, kwargs: dict[str, object],
                        error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        sd.txt2img("x", **{**SMALL, **kwargs})  # type: ignore[arg-type]


def test_bad_images(sd: cysd.StableDiffusion) -> None:
    rgb = Image.new("RGB", (64, 128))
    with pytest.raises(cysd.ImageError, match="mode 'RGBA'"):
        sd.img2img(Image.new("RGBA", (64, 128)), "x", steps=1)
    with pytest.raises(ValueError, match="image width must be a multiple of 64 for this model"):
        sd.img2img(Image.new("RGB", (60, 128)), "x", steps=1)
    with pytest.raises(cysd.ImageError, match="HxWx3"):
        sd.img2img(np.zeros((128, 64, 4), np.uint8), "x", steps=1)
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
        sd.img2img(rgb, "x", strength=1.5, steps=1)
    with pytest.raises(cysd.ImageError, match="mask is 32x128, the image 64x128"):
        sd.inpaint(rgb, Image.new("L", (32, 128)), "x", steps=1)
    with pytest.raises(cysd.ImageError, match="mask must be a PIL image of mode L or 1"):
        sd.inpaint(rgb, rgb, "x", steps=1)
    with pytest.raises(cysd.ImageError, match="not list"):
        sd.img2img([1, 2, 3], "x", steps=1)  # type: ignore[arg-type]


def test_bad_model_options(tiny_files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = tiny_files
    with pytest.raises(ValueError, match="unknown weight_type 'q3'"):
        cysd.StableDiffusion(model, weight_type="q3")
    with pytest.raises(ValueError, match="unknown rng 'mersenne'"):
        cysd.StableDiffusion(model, rng="mersenne")
    with pytest.raises(NotADirectoryError, match="lora_dir"):
        cysd.StableDiffusion(model, lora_dir=tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="taesd file not found"):
        cysd.StableDiffusion(model, taesd=tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="n_threads must be in"):
        cysd.StableDiffusion(model, n_threads=0)
