"""Real generations on the tiny random-weight SDXS model (64x128, 1-2 steps): sizes, modes,
determinism per seed, progress per step, cancellation, img2img, inpainting, batches."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cysd
import ggml_family
import numpy as np
import pytest
from interrupt import interrupt_after  # tools/fixtures (conftest)
from PIL import Image

SMALL = {"width": 64, "height": 128, "steps": 2, "cfg_scale": 5.0}


@pytest.mark.smoke
def test_txt2img_size_mode_and_seed_determinism(sd: cysd.StableDiffusion) -> None:
    (a,) = sd.txt2img("a lighthouse", seed=1, **SMALL)
    (b,) = sd.txt2img("a lighthouse", seed=1, **SMALL)
    (c,) = sd.txt2img("a lighthouse", seed=2, **SMALL)
    assert isinstance(a, Image.Image) and a.mode == "RGB" and a.size == (64, 128)
    pa, pb, pc = (np.asarray(x) for x in (a, b, c))
    assert np.array_equal(pa, pb)  # same seed, same pixels
    assert not np.array_equal(pa, pc)  # another seed, other pixels
    assert pa.std() > 1  # an image, not a constant


def test_numpy_output_and_prompt_matters(sd: cysd.StableDiffusion) -> None:
    (a,) = sd.txt2img("a lighthouse", seed=3, as_pil=False, **SMALL)
    (b,) = sd.txt2img("a red bicycle", seed=3, as_pil=False, **SMALL)
    assert isinstance(a, np.ndarray) and a.shape == (128, 64, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, b)


def test_batch_gives_distinct_images(sd: cysd.StableDiffusion) -> None:
    images = sd.txt2img("a lighthouse", seed=5, batch_count=2, **SMALL)
    assert len(images) == 2
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


def test_a_sampling_object_is_the_keywords(sd: cysd.StableDiffusion) -> None:
    """One Sampling serves txt2img, img2img and inpaint; keywords override its fields."""
    fast = cysd.Sampling(steps=1, cfg_scale=5.0, seed=9, sampler="euler")
    (a,) = sd.txt2img("a lighthouse", width=64, height=128, sampling=fast, as_pil=False)
    (b,) = sd.txt2img("a lighthouse", width=64, height=128, steps=1, cfg_scale=5.0, seed=9,
                      sampler="euler", as_pil=False)
    (c,) = sd.txt2img("a lighthouse", width=64, height=128, sampling=fast, seed=10,
                      as_pil=False)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    (d,) = sd.img2img(a, "a lighthouse", sampling=fast, as_pil=False)
    assert d.shape == a.shape
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'"):
        sd.txt2img("x", sampling=fast, step=2)
    with pytest.raises(TypeError, match=r"sampling must be a cysd\.Sampling, not dict"):
        sd.txt2img("x", sampling={"steps": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"steps": 0}, ValueError, r"^steps must be in \[1, 1000\], got 0$"),
    ({"cfg_scale": float("inf")}, ValueError, r"^cfg_scale must be in \[0, 100\], got inf$"),
    ({"sampler": "eulr"}, ValueError, r"^unknown sampler 'eulr'; known: euler, "),
    ({"seed": 2**63}, ValueError, r"^seed must be in \[0, "),
    ({"eta": "0.5"}, TypeError, r"^eta must be a number, not str$"),
    ({"clip_skip": 13}, ValueError, r"^clip_skip must be in \[-1, 12\], got 13$"),
])
def test_sampling_is_checked_when_made(kwargs: dict[str, object], error: type[Exception],
                                       match: str) -> None:
    with pytest.raises(error, match=match):
        cysd.Sampling(**kwargs)  # type: ignore[arg-type]


def test_samplers_and_schedulers(sd: cysd.StableDiffusion) -> None:
    assert "euler_a" in cysd.SAMPLERS and "karras" in cysd.SCHEDULERS
    assert sd.default_sampler in cysd.SAMPLERS
    (a,) = sd.txt2img("x", seed=4, sampler="euler", scheduler="karras", **SMALL)
    (b,) = sd.txt2img("x", seed=4, sampler="euler_a", scheduler="karras", **SMALL)
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_progress_once_per_step(sd: cysd.StableDiffusion) -> None:
    calls: list[tuple[int, int, float]] = []
    sd.txt2img("x", seed=1, progress=lambda *a: calls.append(a), **{**SMALL, "steps": 3})
    assert [(s, n) for s, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(t > 0 for *_, t in calls)


def test_cancel_from_progress_stops_early(sd: cysd.StableDiffusion) -> None:
    calls: list[int] = []

    def stop_after_first(step: int, steps: int, seconds: float) -> bool:
        calls.append(step)
        return False

    with pytest.raises(cysd.Cancelled, match="after 1 step"):
        sd.txt2img("x", seed=1, progress=stop_after_first, **{**SMALL, "steps": 6})
    assert calls == [1]
    (ok,) = sd.txt2img("x", seed=1, **SMALL)  # the model is still usable
    assert ok.size == (64, 128)


def test_cancel_from_another_thread(sd: cysd.StableDiffusion) -> None:
    steps: list[int] = []
    started = threading.Event()

    def progress(step: int, total: int, seconds: float) -> None:
        steps.append(step)
        started.set()
        if step == 1:
            sd.cancel()

    with pytest.raises(cysd.Cancelled):
        sd.txt2img("x", seed=1, progress=progress, **{**SMALL, "steps": 8})
    assert started.is_set() and steps == [1]


def test_progress_callback_error_propagates(sd: cysd.StableDiffusion) -> None:
    def boom(step: int, steps: int, seconds: float) -> None:
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        sd.txt2img("x", seed=1, progress=boom, **SMALL)


def test_img2img_and_inpaint_shapes(sd: cysd.StableDiffusion) -> None:
    (src,) = sd.txt2img("a lighthouse", seed=7, **SMALL)
    (out,) = sd.img2img(src, "a lighthouse at dusk", strength=0.5, seed=7, steps=2)
    assert out.size == src.size and out.mode == "RGB"
    (again,) = sd.img2img(np.asarray(src), "a lighthouse at dusk", strength=0.5, seed=7, steps=2)
    assert np.array_equal(np.asarray(out), np.asarray(again))  # PIL or NumPy input: same
    mask = np.zeros((128, 64), np.uint8)
    mask[:, 32:] = 255
    (painted,) = sd.inpaint(src, Image.fromarray(mask, "L"), "a red door", seed=7, steps=2)
    assert painted.size == src.size
    assert not np.array_equal(np.asarray(painted), np.asarray(out))


def test_lora_changes_the_image(tiny_files: tuple[Path, Path], lora_dir: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    """A kohya LoRA from the prompt is applied to CLIP and the UNet (sd.cpp's own count), its
    weight matters, the tag is not part of the text, and it is gone from the next prompt."""
    model, taesd = tiny_files
    sd = cysd.StableDiffusion(model, taesd=taesd, lora_dir=lora_dir, n_threads=2)
    kw = {"width": 64, "height": 64, "steps": 1, "seed": 3, "as_pil": False}
    (plain,) = sd.txt2img("a cat", **kw)
    with caplog.at_level(logging.INFO, logger="cysd"):
        ggml_family.sync_log_levels()  # let INFO lines through ggml's C-side filter
        (one,) = sd.txt2img("a cat <lora:tiny:1>", **kw)
    ggml_family.sync_log_levels()  # and back
    applied = [r.getMessage() for r in caplog.records if "LoRA tensors have been applied" in
               r.getMessage()]
    assert len(applied) == 2 and all("(3 / 3)" in m for m in applied), applied  # CLIP, UNet
    (two,) = sd.txt2img("a cat <lora:tiny:2>", **kw)
    (tag_last,) = sd.txt2img("a cat<lora:tiny:1>", **kw)
    (again,) = sd.txt2img("a cat", **kw)
    assert np.abs(one.astype(int) - plain).mean() > 1
    assert not np.array_equal(one, two)
    np.testing.assert_array_equal(tag_last, one)  # the tag is taken out of the text
    np.testing.assert_array_equal(again, plain)


def test_lora_tags_resolve_in_lora_dir(tiny_files: tuple[Path, Path], tmp_path: Path) -> None:
    model, taesd = tiny_files
    sd = cysd.StableDiffusion(model, taesd=taesd, lora_dir=tmp_path, n_threads=2)
    with pytest.raises(FileNotFoundError, match="LoRA 'film' not found"):
        sd.txt2img("x <lora:film:0.8>", **SMALL)
    (tmp_path / "film.safetensors").write_bytes(b"")
    with pytest.raises(cysd.ModelLoadError, match="empty"):
        sd.txt2img("x <lora:film:0.8>", **SMALL)
    with pytest.raises(ValueError, match="weight 'strong', not a number"):
        sd.txt2img("x <lora:film:strong>", **SMALL)
    plain = cysd.StableDiffusion(model, taesd=taesd, n_threads=2)
    with pytest.raises(ValueError, match="no lora_dir"):
        plain.txt2img("x <lora:film:1>", **SMALL)


def test_ctrl_c_stops_a_generation(sd: cysd.StableDiffusion) -> None:
    # No progress callback: the abort callback polls for the signal before every step.
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupt_after(0.5):
        sd.txt2img("x", seed=1, **{**SMALL, "steps": 200})
    assert time.monotonic() - start < 10
    (ok,) = sd.txt2img("x", seed=1, **SMALL)  # the model is still usable
    assert ok.size == (64, 128)
