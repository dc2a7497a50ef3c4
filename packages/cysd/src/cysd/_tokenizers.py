"""The tokenizer vocabularies stable-diffusion.cpp needs, read when a model's tokenizer is built.

Upstream compiles them into the library (20 MB of object code); cysd ships them as xz files
(csrc/tokenizer_data.py makes them at build time from the pinned source): CLIP's and T5's in this
package, those of the larger text encoders (Qwen2, Mistral, UMT5) in the optional
``cysd-tokenizers`` package, ``pip install 'cysd[tokenizers]'``. csrc/vocab.cpp calls :func:`load`.
"""

from __future__ import annotations

import lzma
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: vocabulary -> the text encoders (and so models) that need it.
USED_BY = {
    "clip_merges": "CLIP (SD 1.x/2.x, SDXL, SD3, FLUX.1)",
    "t5_tokenizer_json": "T5-XXL (SD3, FLUX.1, Chroma)",
    "qwen2_merges": "Qwen2.5-VL / Qwen3 (Qwen-Image, Z-Image)",
    "mistral_merges": "Mistral (FLUX.2)",
    "mistral_vocab_json": "Mistral (FLUX.2)",
    "umt5_tokenizer_json": "UMT5-XXL (Wan)",
}

#: where the xz files are looked for, in order.
_PACKAGES = ("cysd", "cysd_tokenizers")


def _file(name: str) -> Traversable | None:
    for package in _PACKAGES:
        try:
            candidate = resources.files(package) / "tokenizers" / f"{name}.xz"
        except ModuleNotFoundError:
            continue
        if candidate.is_file():
            return candidate
    return None


def available() -> list[str]:
    """The vocabularies installed (so the text encoders this installation can run)."""
    return [name for name in USED_BY if _file(name) is not None]


def load(name: str) -> bytes:
    """The vocabulary `name` (one of :data:`USED_BY`), decompressed."""
    if name not in USED_BY:
        raise KeyError(f"unknown tokenizer vocabulary {name!r}")
    file = _file(name)
    if file is None:
        raise FileNotFoundError(
            f"the {name} tokenizer vocabulary, needed by {USED_BY[name]}, is not installed: "
            "pip install 'cysd[tokenizers]'"
        )
    return lzma.decompress(file.read_bytes())
