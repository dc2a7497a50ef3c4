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

__all__ = ["BACKEND_NAME", "CUDA_ARCHITECTURES", "CUDA_DRIVER_NEEDED", "FINGERPRINT",
           "GGML_VERSION", "driver_cuda_version", "initialize", "library_path"]

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

# The CUDA major version of the build: its toolkit, and the runtime and cuBLAS it links.
_CUDA_MAJOR = 13
#: The CUDA version the driver must support, in cuDriverGetVersion's units (1000 * major + 10 *
#: minor): any driver of the build's major version runs it (minor-version compatibility).
CUDA_DRIVER_NEEDED: int = 1000 * _CUDA_MAJOR
# The oldest Linux driver branch of each CUDA major version (NVIDIA's compatibility table).
_DRIVER_BRANCH = {11: "R450", 12: "R525", 13: "R580"}

# Loaded in dependency order, RTLD_GLOBAL: the module's NEEDED entries then resolve by soname.
_RUNTIME = tuple(f"{name}.so.{_CUDA_MAJOR}" for name in ("libcudart", "libcublasLt", "libcublas"))
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


def driver_cuda_version() -> int | None:
    """The CUDA version the installed NVIDIA driver supports (``cuDriverGetVersion``: 12040 for
    12.4), read without a GPU and without initialising CUDA; None without a driver library."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return version.value


def _cuda(version: int) -> str:
    return f"CUDA {version // 1000}.{version % 1000 // 10}"


def _kernel_module() -> str:
    """The loaded NVIDIA kernel module's version ("550.54.15"), or "" when there is none."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return ""
    words = text.split("Kernel Module", 1)[-1].split()
    return words[0] if words and words[0][:1].isdigit() else ""


def _check_driver() -> None:
    found = driver_cuda_version()
    if found is None or found >= CUDA_DRIVER_NEEDED:
        return  # no driver (the module loads and finds no device), or a new enough one
    module = _kernel_module()
    driver = f"driver {module}, " if module else ""
    major = CUDA_DRIVER_NEEDED // 1000
    raise OSError(f"the NVIDIA driver is too old: it supports {driver}{_cuda(found)}, and this "
                  f"plugin, built with CUDA {major}, needs a driver for "
                  f"{_cuda(CUDA_DRIVER_NEEDED)} or newer ({_DRIVER_BRANCH.get(major, 'newer')} "
                  "or later); update the NVIDIA driver")


def initialize() -> None:
    """Check that the NVIDIA driver, if there is one, supports this build's CUDA version, then
    preload the CUDA runtime and cuBLAS from the ``nvidia-*`` wheels (idempotent). A too-old
    driver raises :class:`OSError` saying which driver was found and which is needed; the host
    then warns once and stays on the CPU."""
    if _handles:
        return
    if not sys.platform.startswith("linux"):
        raise OSError(f"ggml-cuda-plugin supports Linux only, not {sys.platform}")
    _check_driver()
    for name in _RUNTIME:
        _handles.append(ctypes.CDLL(str(_nvidia_lib(name)), mode=ctypes.RTLD_GLOBAL))
