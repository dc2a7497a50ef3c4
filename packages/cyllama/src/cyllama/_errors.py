"""Exceptions of cyllama. Bad parameters raise ValueError; a missing model FileNotFoundError."""

from __future__ import annotations

from . import _core

#: A model file could not be read or is not a valid GGUF model (truncated, corrupt, wrong kind).
ModelLoadError: type[RuntimeError] = _core.ModelLoadError

#: llama.cpp failed while evaluating tokens.
ComputeError: type[RuntimeError] = _core.ComputeError

#: A backend (device) was asked for but cannot be used, or a backend module failed to load.
BackendError: type[RuntimeError] = _core.BackendError


class ContextOverflowError(ValueError):
    """The prompt (plus what must follow it) does not fit into the context window."""
