"""cywhisper: whisper.cpp for Python on the ggml family's shared, CPU-tuned ggml.

Importing the package loads the best ggml CPU backend module for this CPU (once per process,
shared with the other family packages) and routes ggml's log into ``logging``.
"""

from __future__ import annotations

# _ggml first: on Windows it makes ./lib (the ggml DLLs _core needs) findable.
from . import _ggml  # isort: skip
from . import _core  # isort: skip

_backends = _ggml.setup(_core, "cywhisper")

from ._audio import SAMPLE_RATE, load_audio  # noqa: E402
from ._errors import AudioError, BackendError, ComputeError, ModelLoadError  # noqa: E402
from ._ggml import GgmlPluginWarning, PluginError  # noqa: E402
from ._results import Segment, Token, Transcript, Word  # noqa: E402
from ._version import __version__  # noqa: E402
from ._whisper import Whisper  # noqa: E402

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "BackendError",
    "ComputeError",
    "GgmlPluginWarning",
    "ModelLoadError",
    "PluginError",
    "Segment",
    "Token",
    "Transcript",
    "Whisper",
    "Word",
    "__version__",
    "info",
    "load_audio",
]


def info() -> dict[str, object]:
    """The ggml build (version, ABI fingerprint), the CPU module chosen and the devices."""
    data: dict[str, object] = {"cywhisper": __version__, "whisper_cpp": _core.whisper_version()}
    data.update(_backends.info())
    data["system_info"] = _core.whisper_system_info()
    return data
