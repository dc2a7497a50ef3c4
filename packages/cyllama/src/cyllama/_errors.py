"""Exceptions of cyllama. Bad parameters raise ValueError; a missing model FileNotFoundError.

:class:`ModelLoadError` and :class:`ComputeError` are cyllama's own subclasses of the family's
(``except ggml_family.ModelLoadError`` catches every host's); ``BackendError``, ``PluginError``
are the family's, about the ggml every host shares.
"""

from __future__ import annotations

import ggml_family


class ModelLoadError(ggml_family.ModelLoadError):
    """A model file could not be read or is not a valid GGUF model (truncated, corrupt, wrong
    kind), or a LoRA adapter or state file does not fit the model."""


class ComputeError(ggml_family.ComputeError):
    """llama.cpp failed while evaluating tokens."""


class ContextOverflowError(ValueError):
    """The prompt (plus what must follow it) does not fit into the context window."""


ModelLoadError.__module__ = ComputeError.__module__ = ContextOverflowError.__module__ = "cyllama"
