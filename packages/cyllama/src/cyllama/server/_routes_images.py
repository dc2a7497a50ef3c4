"""``/v1/images/generations`` and ``/v1/images/edits`` (img2img, or inpainting with a mask):
requests through the image model, its images answered as base64 PNGs.
"""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from ._errors import APIError, check_model, invalid
from ._responses import ImagesResponse
from ._schemas import ImageRequest
from ._services import ImageDep

#: The largest side accepted, and the largest image upload.
MAX_SIDE = 2048
MAX_UPLOAD = 16 * 1024 * 1024

router = APIRouter()


@router.post("/v1/images/generations")
async def generations(body: ImageRequest, service: ImageDep) -> ImagesResponse:
    check_model(body.model, service.name, "image")
    _check_format(body.response_format)
    w, h = _size(body.size, service.model.size_multiple)
    s = service.sampling(body.n, body.seed, body.steps, body.cfg_scale, body.sampler,
                         body.scheduler)
    return _response(await run_in_threadpool(
        service.txt2img, body.prompt, body.negative_prompt, width=w, height=h, sampling=s))


@router.post("/v1/images/edits")
async def edits(
    image: UploadFile, prompt: Annotated[str, Form(min_length=1)],
    model: Annotated[str, Form()], service: ImageDep, mask: UploadFile | None = None,
    n: Annotated[int, Form(ge=1, le=10)] = 1,
    response_format: Annotated[str, Form()] = "b64_json",
    negative_prompt: Annotated[str, Form()] = "",
    strength: Annotated[float | None, Form(gt=0, le=1)] = None,
    seed: Annotated[int | None, Form(ge=0)] = None,
    steps: Annotated[int | None, Form(ge=1, le=150)] = None,
    cfg_scale: Annotated[float | None, Form(ge=0, le=100)] = None,
) -> ImagesResponse:
    check_model(model, service.name, "image")
    _check_format(response_format)
    rgb = await _read_image(image, "image")
    s = service.sampling(n, seed, steps, cfg_scale, None, None)
    if mask is None:
        return _response(await run_in_threadpool(
            service.img2img, rgb, prompt, negative_prompt,
            strength=0.75 if strength is None else strength, sampling=s))
    m = await _read_image(mask, "mask")
    if m.shape[:2] != rgb.shape[:2]:
        raise invalid(f"the mask is {m.shape[1]}x{m.shape[0]}, the image "
                      f"{rgb.shape[1]}x{rgb.shape[0]}: they must be the same size", "mask")
    return _response(await run_in_threadpool(
        service.inpaint, rgb, m, prompt, negative_prompt,
        strength=1.0 if strength is None else strength, sampling=s))


def _check_format(response_format: str) -> None:
    if response_format != "b64_json":
        raise invalid("only response_format b64_json is served (no image hosting)",
                      "response_format")


def _size(size: str, multiple: int) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise invalid(f"size must be WIDTHxHEIGHT, got {size!r}", "size") from None
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise invalid(f"size {size} is out of range: each side from {multiple} to {MAX_SIDE}",
                      "size")
    if w % multiple or h % multiple:
        raise invalid(f"size {size}: both sides must be multiples of {multiple} for this model",
                      "size")
    return w, h


async def _read_image(upload: UploadFile, what: str) -> np.ndarray:
    """An uploaded image as RGB, or (``what="mask"``) as one channel, white where to repaint."""
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise APIError(413, f"the {what} is larger than {MAX_UPLOAD >> 20} MB", param=what)
    try:
        from PIL import Image
    except ImportError:
        raise invalid("image uploads need Pillow on the server (pip install Pillow)",
                      what) from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width > MAX_SIDE or im.height > MAX_SIDE:
                raise invalid(f"the {what} is {im.width}x{im.height}; at most "
                              f"{MAX_SIDE}x{MAX_SIDE}", what)
            if what != "mask":
                return np.asarray(im.convert("RGB"))
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                # The OpenAI convention: transparent pixels are the ones to repaint.
                alpha = np.asarray(im.convert("RGBA"))[..., 3]
                return (255 - alpha).astype(np.uint8)
            return np.asarray(im.convert("L"))  # white: repaint (stable-diffusion.cpp)
    except APIError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, ...
        raise invalid(f"the {what} cannot be decoded as an image: {e}", what) from e


def _response(images: Sequence[np.ndarray]) -> ImagesResponse:
    return {"created": int(time.time()), "data": [
        {"b64_json": base64.b64encode(png(np.asarray(im))).decode(), "revised_prompt": None}
        for im in images]}


def png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an HxWx3 uint8 array."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
