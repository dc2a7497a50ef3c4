"""ggml's CUDA backend as a plugin of the ggml wheel family.

Family packages (cyllama, cywhisper, cysd) find this module through the ``ggml.backends`` entry
point, compare :data:`FINGERPRINT` with their own ggml ABI fingerprint, call
:func:`initialize` and load :func:`library_path` into ggml's backend registry. Nothing here
imports or loads CUDA until :func:`initialize` runs.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

__all__ = ["BACKEND_NAME", "CUDA_ARCHITECTURES", "FINGERPRINT", "GGML_VERSION", "initialize",
           "library_path"]

_HERE = Path(__file__).resolve().parent
_BUILD = json.loads((_HERE / "_build.json").read_text())

#: ggml ABI fingerprint this module was built for.
FINGERPRINT: str = _BUILD["fingerprint"]
#: ggml version of that build.
GGML_VERSION: str = _BUILD["ggml_version"]
#: The name ggml's registry reports for this backend.
BACKEND_NAME = "CUDA"
#: GPU architectures compiled in (``-real``: machine code, ``-virtual``: PTX).
CUDA_ARCHITECTURES: str = _BUILD["cuda_architectures"]

# Loaded in dependency order, RTLD_GLOBAL: the module's NEEDED entries then resolve by soname.
_RUNTIME = ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13")
_handles: list[ctypes.CDLL] = []


def library_path() -> str:
    """Absolute path of the backend module."""
    return str(_HERE / "libggml-cuda.so")


def _nvidia_lib(name: str) -> Path:
    import nvidia  # namespace package of the nvidia-* wheels

    for root in map(Path, nvidia.__path__):
        candidate = root / "cu13" / "lib" / name
        if candidate.exists():
            return candidate
    raise OSError(f"{name} not found in the nvidia-* wheels; reinstall them: "
                  "pip install --force-reinstall 'nvidia-cuda-runtime>=13,<14' "
                  "'nvidia-cublas>=13,<14'")


def initialize() -> None:
    """Preload the CUDA runtime and cuBLAS from the ``nvidia-*`` wheels (idempotent)."""
    if _handles:
        return
    if not sys.platform.startswith("linux"):
        raise OSError(f"ggml-cuda-plugin supports Linux only, not {sys.platform}")
    for name in _RUNTIME:
        _handles.append(ctypes.CDLL(str(_nvidia_lib(name)), mode=ctypes.RTLD_GLOBAL))
