"""Exceptions of cysd. Bad parameters raise ValueError (TypeError for wrong types); a missing
file FileNotFoundError.

:class:`ModelLoadError` and :class:`ComputeError` are cysd's own subclasses of the family's
(``except ggml_family.ModelLoadError`` catches every host's); ``BackendError``, ``PluginError``
and ``Cancelled`` (the progress callback returned False, or :meth:`StableDiffusion.cancel` was
called) are the family's.
"""

from __future__ import annotations

import ggml_family


class ModelLoadError(ggml_family.ModelLoadError):
    """A model file could not be read or is not one stable-diffusion.cpp can use."""


class ComputeError(ggml_family.ComputeError):
    """stable-diffusion.cpp failed while generating or upscaling."""


class ImageError(ValueError):
    """An image that cannot be used: wrong type, mode, dtype, shape or size."""


ModelLoadError.__module__ = ComputeError.__module__ = ImageError.__module__ = "cysd"
