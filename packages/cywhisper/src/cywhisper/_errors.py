"""Exceptions of cywhisper. Bad parameters raise ValueError; a missing file FileNotFoundError.

:class:`ModelLoadError` and :class:`ComputeError` are cywhisper's own subclasses of the family's
(``except ggml_family.ModelLoadError`` catches every host's); ``BackendError``, ``PluginError``
are the family's, about the ggml every host shares.
"""

from __future__ import annotations

import ggml_family


class ModelLoadError(ggml_family.ModelLoadError):
    """A model file could not be read or is not a whisper.cpp model (truncated, corrupt, wrong
    kind)."""


class ComputeError(ggml_family.ComputeError):
    """whisper.cpp failed while transcribing."""


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, wrong dtype or shape, unknown format."""


ModelLoadError.__module__ = ComputeError.__module__ = AudioError.__module__ = "cywhisper"
