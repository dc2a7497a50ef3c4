"""Exceptions of cysd. Bad parameters raise ValueError (TypeError for wrong types); a missing
file FileNotFoundError."""

from __future__ import annotations

from . import _core

#: A model file could not be read or is not one stable-diffusion.cpp can use.
ModelLoadError: type[RuntimeError] = _core.ModelLoadError

#: stable-diffusion.cpp failed while generating or upscaling.
ComputeError: type[RuntimeError] = _core.ComputeError

#: A backend (device) was asked for but cannot be used, or a backend module failed to load.
BackendError: type[RuntimeError] = _core.BackendError

#: The progress callback returned False (or :meth:`StableDiffusion.cancel` was called).
Cancelled: type[RuntimeError] = _core.Cancelled


class ImageError(ValueError):
    """An image that cannot be used: wrong type, mode, dtype, shape or size."""
