"""Resources: load/generate/free cycles of the tiny checkpoint (515 MB of weights each time)
and of the upscaler do not grow the process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cycles import rss_growth, sanitized  # tools/fixtures (conftest)

pytestmark = pytest.mark.skipif(sanitized(), reason="RSS under ASan measures its quarantine")


def test_sixteen_models(tiny_files: tuple[Path, Path], esrgan: Path) -> None:
    # A model is 515 MB: one leaked would be 50 times the allowance (10 MB); the images, the compute
    # buffers and the upscaler's tiles are what smaller leaks would come from.
    model, taesd = tiny_files
    before, after = rss_growth("import cysd", f"""
        sd = cysd.StableDiffusion({str(model)!r}, taesd={str(taesd)!r}, n_threads=2)
        image = sd.txt2img("a red fox", width=64, height=64, steps=1, seed=i, as_pil=False)[0]
        del sd
        cysd.Upscaler({str(esrgan)!r}, n_threads=2)(image, as_pil=False)
        """, settle=6, cycles=16)
    print(f"RSS {before:.1f} MB -> {after:.1f} MB after 16 cycles")
    assert after - before < 10, f"RSS grew {after - before:.1f} MB over 16 cycles"
