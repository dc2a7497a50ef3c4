"""cyllama: llama.cpp for Python on the ggml family's shared, CPU-tuned ggml.

Importing the package loads the best ggml CPU backend module for this CPU (once per process,
shared with the other family packages) and routes ggml's log into ``logging``.
"""

from __future__ import annotations

# _ggml first: on Windows it makes ./lib (the ggml DLLs _core needs) findable.
from . import _ggml  # isort: skip
from . import _core  # isort: skip

_backends = _ggml.setup(_core, "cyllama")

from ._chat import builtin_templates as chat_templates  # noqa: E402
from ._errors import (  # noqa: E402
    BackendError,
    ComputeError,
    ContextOverflowError,
    ModelLoadError,
)
from ._ggml import GgmlPluginWarning, PluginError  # noqa: E402
from ._grammar import Grammar  # noqa: E402
from ._llm import LLM  # noqa: E402
from ._sampling import Sampling  # noqa: E402
from ._types import (  # noqa: E402
    Completion,
    LoraAdapter,
    State,
    Stream,
    Timings,
    TokenLogprob,
    Usage,
)
from ._version import __version__  # noqa: E402

__all__ = [
    "LLM",
    "BackendError",
    "Completion",
    "ComputeError",
    "ContextOverflowError",
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


def info() -> dict[str, object]:
    """The ggml build (version, ABI fingerprint), the CPU module chosen and the devices."""
    data: dict[str, object] = {"cyllama": __version__}
    data.update(_backends.info())
    data["system_info"] = _core.llama_system_info()
    return data
