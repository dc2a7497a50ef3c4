"""cyllama: llama.cpp for Python on the ggml family's shared, CPU-tuned ggml.

``import cyllama`` only registers the extension with ``ggml_family``, which routes llama.cpp's
and ggml's log lines into ``logging`` (logger ``cyllama.ggml``). The first :class:`LLM` loads
the ggml CPU module that suits this CPU (shared with cywhisper and cysd in the same process)
and any GPU plugin.
"""

from __future__ import annotations

import ggml_family
from ggml_family import BackendError, GgmlPluginWarning, PluginError

from ._errors import ComputeError, ContextOverflowError, ModelLoadError
from ._version import __version__

ggml_family.add_dll_directory(__file__)  # Windows: ./lib holds the ggml DLLs _core needs
from . import _core  # noqa: E402 (after the DLL directory)

_host = ggml_family.register(_core, "cyllama", __version__,
                              errors=(ModelLoadError, ComputeError), library="llama.cpp",
                              system_info=_core.llama_system_info)

from ._chat import builtin_templates as chat_templates  # noqa: E402
from ._engine import Engine, EngineClosedError, EngineRequest  # noqa: E402
from ._grammar import Grammar  # noqa: E402
from ._llm import LLM  # noqa: E402
from ._sampling import Sampling  # noqa: E402
from ._types import (  # noqa: E402
    Completion,
    GenerateOptions,
    LoraAdapter,
    State,
    Stream,
    Timings,
    TokenLogprob,
    Usage,
)

__all__ = [
    "LLM",
    "BackendError",
    "Completion",
    "ComputeError",
    "ContextOverflowError",
    "Engine",
    "EngineClosedError",
    "EngineRequest",
    "GenerateOptions",
    "GgmlPluginWarning",
    "Grammar",
    "LoraAdapter",
    "ModelLoadError",
    "PluginError",
    "Sampling",
    "State",
    "Stream",
    "Timings",
    "TokenLogprob",
    "Usage",
    "__version__",
    "chat_templates",
    "info",
]


#: The package and ggml build (versions, ABI fingerprint), the CPU module chosen, the plugins and
#: the registered devices, as a dict; ``python -m cyllama info`` prints it.
info = _host.info
