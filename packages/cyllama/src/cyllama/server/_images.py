"""``/v1/images/generations`` and ``/v1/images/edits`` over a cysd.StableDiffusion."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Form, UploadFile
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ._errors import APIError, check_model, invalid
from ._schemas import _Body

#: The largest side accepted, and the largest image upload.
MAX_SIDE = 2048
MAX_UPLOAD = 16 * 1024 * 1024


class ImageRequest(_Body):
    model: str
    prompt: Annotated[str, Field(min_length=1, max_length=8000)]
    n: Annotated[int, Field(ge=1, le=10)] = 1
    size: str = "512x512"
    response_format: Literal["b64_json", "url"] = "b64_json"
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    # stable-diffusion.cpp's settings, as documented extensions
    negative_prompt: str = ""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    steps: Annotated[int, Field(ge=1, le=150)] | None = None
    cfg_scale: Annotated[float, Field(ge=0, le=100)] | None = None
    sampler: str | None = None
    scheduler: str | None = None


def png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an HxWx3 uint8 array."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class SDService:
    """The image model behind the API: a cysd.StableDiffusion (one generation at a time)."""

    def __init__(self, sd: Any, name: str) -> None:
        self.sd = sd
        self.name = name
        self.created = int(time.time())
        self._lock = threading.Lock()

    def run(self, method: str, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        with self._lock:
            return list(getattr(self.sd, method)(*args, as_pil=False, **kwargs))


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


def router(service: SDService) -> APIRouter:
    api = APIRouter()
    from cysd import ImageError, Sampling

    def check(model: str, response_format: str) -> None:
        check_model(model, service.name, "image")
        if response_format != "b64_json":
            raise invalid("only response_format b64_json is served (no image hosting)",
                          "response_format")

    def sampling(n: int, seed: int | None, steps: int | None, cfg: float | None,
                 sampler: str | None, scheduler: str | None) -> Any:
        fields: dict[str, Any] = {"batch_count": n, "seed": seed}
        if steps is not None:
            fields["steps"] = steps
        if cfg is not None:
            fields["cfg_scale"] = cfg
        if sampler:
            fields["sampler"] = sampler
        if scheduler:
            fields["scheduler"] = scheduler
        try:
            return Sampling(**fields)
        except (ValueError, TypeError) as e:
            raise invalid(str(e)) from e

    async def generate(method: str, *args: Any, **kwargs: Any) -> JSONResponse:
        try:
            images = await run_in_threadpool(service.run, method, *args, **kwargs)
        except (ImageError, ValueError, TypeError) as e:
            raise invalid(str(e)) from e
        return JSONResponse({"created": int(time.time()), "data": [
            {"b64_json": base64.b64encode(png(np.asarray(im))).decode(), "revised_prompt": None}
            for im in images]})

    @api.post("/v1/images/generations", response_model=None)
    async def generations(body: ImageRequest) -> Response:
        check(body.model, body.response_format)
        w, h = _size(body.size, service.sd.size_multiple)
        s = sampling(body.n, body.seed, body.steps, body.cfg_scale, body.sampler,
                     body.scheduler)
        return await generate("txt2img", body.prompt, body.negative_prompt, width=w, height=h,
                              sampling=s)

    async def read_image(upload: UploadFile, what: str) -> np.ndarray:
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

    @api.post("/v1/images/edits", response_model=None)
    async def edits(
        image: UploadFile, prompt: Annotated[str, Form(min_length=1)],
        model: Annotated[str, Form()], mask: UploadFile | None = None,
        n: Annotated[int, Form(ge=1, le=10)] = 1,
        response_format: Annotated[str, Form()] = "b64_json",
        negative_prompt: Annotated[str, Form()] = "",
        strength: Annotated[float | None, Form(gt=0, le=1)] = None,
        seed: Annotated[int | None, Form(ge=0)] = None,
        steps: Annotated[int | None, Form(ge=1, le=150)] = None,
        cfg_scale: Annotated[float | None, Form(ge=0, le=100)] = None,
    ) -> Response:
        check(model, response_format)
        rgb = await read_image(image, "image")
        s = sampling(n, seed, steps, cfg_scale, None, None)
        if mask is None:
            return await generate("img2img", rgb, prompt, negative_prompt,
                                  strength=0.75 if strength is None else strength, sampling=s)
        m = await read_image(mask, "mask")
        if m.shape[:2] != rgb.shape[:2]:
            raise invalid(f"the mask is {m.shape[1]}x{m.shape[0]}, the image "
                          f"{rgb.shape[1]}x{rgb.shape[0]}: they must be the same size", "mask")
        return await generate("inpaint", rgb, m, prompt, negative_prompt,
                              strength=1.0 if strength is None else strength, sampling=s)

    return api
