"""cysd: stable-diffusion.cpp for Python (txt2img, img2img, inpainting, LoRAs, upscaling).

It shares the family's ggml with cyllama and cywhisper. The import is light: the extension is
registered with ``ggml_family`` (stable-diffusion.cpp's log goes to ``cysd.ggml``); NumPy, the
CPU module for this processor and GPU plugins are loaded by the first model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ggml_family
from ggml_family import BackendError, Cancelled, GgmlPluginWarning, PluginError

from ._errors import ComputeError, ImageError, ModelLoadError
from ._version import __version__

ggml_family.add_dll_directory(__file__)  # Windows: ./lib holds the ggml DLLs _core needs
from . import _core  # noqa: E402 (after the DLL directory)

_host = ggml_family.register(_core, "cysd", __version__,
                              errors=(ModelLoadError, ComputeError), library="stable-diffusion.cpp",
                              library_version=_core.sd_version(),
                              system_info=_core.sd_system_info)

from ._sampling import SAMPLERS, SCHEDULERS, Sampling  # noqa: E402

# The modules that need NumPy are imported when one of their names is first used.
__getattr__, __dir__ = ggml_family.lazy_exports(__name__, dict.fromkeys(
    ("StableDiffusion", "Upscaler", "upscale"), "_sd"))
if TYPE_CHECKING:
    from ._sd import StableDiffusion, Upscaler, upscale

__all__ = [
    "SAMPLERS",
    "SCHEDULERS",
    "BackendError",
    "Cancelled",
    "ComputeError",
    "GgmlPluginWarning",
    "ImageError",
    "ModelLoadError",
    "PluginError",
    "Sampling",
    "StableDiffusion",
    "Upscaler",
    "__version__",
    "info",
    "upscale",
]


#: The package and ggml build (versions, ABI fingerprint), the CPU module chosen, the plugins and
#: the registered devices, as a dict; ``python -m cysd info`` prints it.
info = _host.info
