"""Images in and out: PIL images or NumPy arrays <-> the (width, height, channels, bytes)
tuples the extension takes and returns."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._errors import ImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

try:
    from PIL import Image as _PIL
except ImportError:  # pragma: no cover - exercised where Pillow is not installed
    _PIL = None  # type: ignore[assignment,unused-ignore]

#: What the API accepts as an image: a PIL image, an HxWxC uint8 array or a file path.
ImageInput = Union["PILImage.Image", np.ndarray, str, "os.PathLike[str]"]
RawImage = tuple[int, int, int, bytes]


def have_pil() -> bool:
    return _PIL is not None


def _as_array(image: Any, what: str) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(2, f"{what} file not found", str(path))
        if _PIL is None:
            raise ImageError(f"reading {what} files needs Pillow: pip install cysd[pil]")
        try:
            with _PIL.open(path) as img:
                img.load()
                return np.asarray(img.convert("L") if what == "mask" else img.convert("RGB"))
        except (OSError, SyntaxError, ValueError, EOFError, struct.error,
                _PIL.DecompressionBombError) as e:
            # Pillow's decoders say a file is broken in all of these ways (SyntaxError for
            # some malformed headers, DecompressionBombError for absurd sizes).
            raise ImageError(f"{what} file {str(path)!r} cannot be read: "
                             f"{type(e).__name__}: {e}") from e
    if _PIL is not None and isinstance(image, _PIL.Image):
        wanted = ("L", "1") if what == "mask" else ("RGB",)
        if image.mode not in wanted:
            raise ImageError(f"{what} must be a PIL image of mode {' or '.join(wanted)}, got "
                             f"mode {image.mode!r} (convert it with .convert({wanted[0]!r}))")
        return np.asarray(image.convert("L") if image.mode == "1" else image)
    if isinstance(image, np.ndarray):
        return image
    raise ImageError(f"{what} must be a PIL image, a NumPy array or a file path, not "
                     f"{type(image).__name__}")


def to_raw(image: Any, what: str = "image") -> RawImage:
    """An RGB image (mask: single channel) as (width, height, channels, bytes)."""
    a = _as_array(image, what)
    if a.dtype != np.uint8:
        raise ImageError(f"{what} must hold uint8 pixels, got dtype {a.dtype}")
    if what == "mask":
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim != 2:
            raise ImageError(f"mask must be HxW (one channel), got shape {a.shape}")
    elif a.ndim != 3 or a.shape[2] != 3:
        raise ImageError(f"{what} must be HxWx3 (RGB), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {a.shape})")
    a = np.ascontiguousarray(a)
    channels = 1 if a.ndim == 2 else 3
    return int(a.shape[1]), int(a.shape[0]), channels, a.tobytes()


def from_raw(raw: RawImage, as_pil: bool) -> Any:
    width, height, channels, data = raw
    a = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
    if channels == 1:
        a = a[:, :, 0]
    if as_pil and _PIL is not None:
        return _PIL.fromarray(a, "L" if channels == 1 else "RGB")
    return a.copy()  # writable, owns its memory
