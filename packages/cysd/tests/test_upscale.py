"""ESRGAN upscaling with the tiny one-block 2x model: sizes, factor, input forms."""

from __future__ import annotations

from pathlib import Path

import cysd
import numpy as np
import pytest
from PIL import Image


@pytest.mark.smoke
def test_upscale_doubles_each_side(esrgan: Path) -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    up = cysd.Upscaler(esrgan, n_threads=2)
    assert up.factor == 2
    out = up(Image.fromarray(src))
    assert isinstance(out, Image.Image) and out.size == (64, 48) and out.mode == "RGB"
    arr = cysd.upscale(src, esrgan, as_pil=False)
    assert arr.shape == (48, 64, 3) and arr.dtype == np.uint8
    assert np.array_equal(arr, np.asarray(out))


def test_upscale_rejects_bad_images(esrgan: Path) -> None:
    up = cysd.Upscaler(esrgan, n_threads=2)
    with pytest.raises(cysd.ImageError, match="mode 'RGBA'"):
        up(Image.new("RGBA", (16, 16)))
    with pytest.raises(cysd.ImageError, match="HxWx3"):
        up(np.zeros((16, 16), np.uint8))
    with pytest.raises(cysd.ImageError, match="uint8"):
        up(np.zeros((16, 16, 3), np.float32))
