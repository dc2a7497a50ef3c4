"""cywhisper: whisper.cpp for Python, on the same ggml as the rest of the family.

Importing registers the extension with ``ggml_family`` (whisper.cpp's log goes to the
``cywhisper.ggml`` logger) and nothing more: NumPy, the CPU backend module chosen for this
machine and the GPU plugins come with the first :class:`Whisper` or :func:`load_audio`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ggml_family
from ggml_family import BackendError, GgmlPluginWarning, PluginError

from ._errors import AudioError, ComputeError, ModelLoadError
from ._version import __version__

ggml_family.add_dll_directory(__file__)  # Windows: ./lib holds the ggml DLLs _core needs
from . import _core  # noqa: E402 (after the DLL directory)

_host = ggml_family.register(_core, "cywhisper", __version__,
                              errors=(ModelLoadError, ComputeError), library="whisper.cpp",
                              library_version=_core.whisper_version(),
                              system_info=_core.whisper_system_info)

from ._decoding import Decoding  # noqa: E402
from ._results import Segment, Token, Transcript, Word  # noqa: E402

# The modules that need NumPy are imported when one of their names is first used.
__getattr__, __dir__ = ggml_family.lazy_exports(__name__, {
    "SAMPLE_RATE": "_audio", "load_audio": "_audio", "Whisper": "_whisper"})
if TYPE_CHECKING:
    from ._audio import SAMPLE_RATE, load_audio
    from ._whisper import Whisper

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "BackendError",
    "ComputeError",
    "Decoding",
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


#: The package and ggml build (versions, ABI fingerprint), the CPU module chosen, the plugins and
#: the registered devices, as a dict; ``python -m cywhisper info`` prints it.
info = _host.info
