"""ggml's Vulkan backend as a plugin of the ggml wheel family.

Family packages (cyllama, cywhisper, cysd) find this module through the ``ggml.backends`` entry
point, compare :data:`FINGERPRINT` with their own ggml ABI fingerprint, call
:func:`initialize` and load :func:`library_path` into ggml's backend registry. Nothing here
loads Vulkan until :func:`initialize` runs.

The Vulkan loader (``libvulkan.so.1``, ``vulkan-1.dll``) is the system's: it comes with the GPU
driver. ggml uses every discrete and integrated GPU the loader reports; CPU-type devices (Mesa's
lavapipe) only when ``GGML_VK_VISIBLE_DEVICES`` names them by index.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

__all__ = ["BACKEND_NAME", "FINGERPRINT", "GGML_VERSION", "VULKAN_HEADERS", "initialize",
           "library_path", "no_device_hint"]

_HERE = Path(__file__).resolve().parent
_BUILD = json.loads((_HERE / "_build.json").read_text())

#: ggml ABI fingerprint this module was built for.
FINGERPRINT: str = _BUILD["fingerprint"]
#: ggml version of that build.
GGML_VERSION: str = _BUILD["ggml_version"]
#: The name ggml's registry reports for this backend.
BACKEND_NAME = "Vulkan"
#: Version of the Vulkan headers the module was built with.
VULKAN_HEADERS: str = _BUILD["vulkan_headers"]

_handles: list[ctypes.CDLL] = []


def _names() -> tuple[str, str]:
    """(module file, Vulkan loader) on this platform."""
    if sys.platform == "win32":
        return "ggml-vulkan.dll", "vulkan-1.dll"
    if sys.platform == "darwin":
        return "libggml-vulkan.so", "libvulkan.1.dylib"
    return "libggml-vulkan.so", "libvulkan.so.1"


def library_path() -> str:
    """Absolute path of the backend module."""
    return str(_HERE / _names()[0])


def _install_advice() -> str:
    if sys.platform == "win32":
        return "install or update your GPU driver (AMD, Intel and NVIDIA drivers include it)"
    if sys.platform == "darwin":
        return "install MoltenVK (brew install molten-vk); Apple GPUs are served by Metal anyway"
    return ("install it with your GPU's Vulkan driver, e.g. `apt-get install libvulkan1 "
            "mesa-vulkan-drivers` (AMD and Intel) or the NVIDIA driver")


def initialize() -> None:
    """Check that the system's Vulkan loader is present and keep it loaded (idempotent).

    Raises :class:`OSError` naming the missing loader and how to install it; the host then
    warns once and stays on the CPU.
    """
    if _handles:
        return
    loader = _names()[1]
    try:
        _handles.append(ctypes.CDLL(loader, mode=getattr(ctypes, "RTLD_GLOBAL", 0)))
    except OSError as exc:
        raise OSError(f"the Vulkan loader {loader} is not installed ({exc}); "
                      f"{_install_advice()}") from None


def no_device_hint() -> str:
    """Why the loaded backend may have found no device, and what to do (for the host's
    warning)."""
    driver = ("e.g. `apt-get install mesa-vulkan-drivers` for AMD and Intel; NVIDIA's driver "
              "includes one" if sys.platform.startswith("linux") else "your GPU vendor's driver")
    return (f"no Vulkan GPU was found: install your GPU's Vulkan driver ({driver}); CPU-type "
            "Vulkan devices such as Mesa's lavapipe are used only when GGML_VK_VISIBLE_DEVICES "
            "names them (e.g. GGML_VK_VISIBLE_DEVICES=0)")
