"""cysd: stable-diffusion.cpp for Python on the ggml family's shared, CPU-tuned ggml.

Importing the package loads the best ggml CPU backend module for this CPU (once per process,
shared with the other family packages), discovers GPU plugins and routes ggml's and
stable-diffusion.cpp's log into ``logging``.
"""

from __future__ import annotations

# _ggml first: on Windows it makes ./lib (the ggml DLLs _core needs) findable.
from . import _ggml  # isort: skip
from . import _core  # isort: skip

_backends = _ggml.setup(_core, "cysd")

from ._errors import BackendError, Cancelled, ComputeError, ImageError, ModelLoadError  # noqa: E402
from ._ggml import GgmlPluginWarning, PluginError  # noqa: E402
from ._sd import SAMPLERS, SCHEDULERS, StableDiffusion, Upscaler, upscale  # noqa: E402
from ._version import __version__  # noqa: E402

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
    "StableDiffusion",
    "Upscaler",
    "__version__",
    "info",
    "upscale",
]


def info() -> dict[str, object]:
    """The ggml build (version, ABI fingerprint), the CPU module chosen and the devices."""
    data: dict[str, object] = {"cysd": __version__, "stable_diffusion_cpp": _core.sd_version()}
    data.update(_backends.info())
    data["system_info"] = _core.sd_system_info()
    return data
