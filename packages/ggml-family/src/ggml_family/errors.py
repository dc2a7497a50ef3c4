"""The family's exceptions, defined once for every host.

Each host derives its own :class:`ModelLoadError` and :class:`ComputeError` from these (they are
about its library: ``cyllama.ModelLoadError`` is a GGUF file llama.cpp refused) and re-exports
:class:`BackendError`, :class:`Cancelled` and :class:`PluginError`, which are about the ggml
all hosts share. So one ``except ggml_family.ModelLoadError`` catches a load error of any host,
and ``except cywhisper.ModelLoadError`` only whisper.cpp's. A host's ``_core`` raises the
classes :func:`ggml_family.register` gave it. Every one is also a :class:`RuntimeError`, as
they were before the family had a hierarchy.
"""

from __future__ import annotations

__all__ = ["BackendError", "Cancelled", "ComputeError", "GgmlError", "GgmlPluginWarning",
           "ModelLoadError", "PluginError"]


class GgmlError(RuntimeError):
    """Base of every error the family's hosts raise for a failure of ggml or its libraries."""


class ModelLoadError(GgmlError):
    """A model file could not be read, or is not a valid model for the library that read it."""


class ComputeError(GgmlError):
    """The library failed while computing (decoding, transcribing, generating an image)."""


class BackendError(GgmlError):
    """A backend (device) was asked for but cannot be used, or a backend module failed to load."""


class Cancelled(GgmlError):
    """A long call was stopped by its progress callback (or its ``cancel()``)."""


class PluginError(BackendError):
    """A plugin was refused while GGML_PLUGIN_STRICT=1 asks for refusals to be errors."""


class GgmlPluginWarning(RuntimeWarning):
    """A ggml backend plugin was refused or found no device; work stays on the CPU."""


# Shown (tracebacks, reprs) under the name users import them by.
for _cls in (GgmlError, ModelLoadError, ComputeError, BackendError, Cancelled, PluginError,
             GgmlPluginWarning):
    _cls.__module__ = "ggml_family"
del _cls
