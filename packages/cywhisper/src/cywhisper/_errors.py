"""Exceptions of cywhisper. Bad parameters raise ValueError; a missing file FileNotFoundError."""

from __future__ import annotations

from . import _core

#: A model file could not be read or is not a whisper.cpp model (truncated, corrupt, wrong kind).
ModelLoadError: type[RuntimeError] = _core.ModelLoadError

#: whisper.cpp failed while transcribing.
ComputeError: type[RuntimeError] = _core.ComputeError

#: A backend (device) was asked for but cannot be used, or a backend module failed to load.
BackendError: type[RuntimeError] = _core.BackendError


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, wrong dtype or shape, unknown format."""
