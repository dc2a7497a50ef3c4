"""
Low-level bindings of whisper.cpp on the family ggml (private: use cywhisper).
"""

from collections.abc import Sequence
from typing import Annotated, Any

import numpy
from numpy.typing import NDArray


def set_log_handler(handler: object | None, min_level: int = 3) -> None:
    """
    Route ggml's (and the library's) log lines to handler(level, line), or to stderr with None. Lines below min_level are dropped before reaching Python.
    """

def set_error_classes(model_load: type, compute: type, backend: type, cancelled: type) -> None:
    """
    The Python classes raised for an unreadable model, a failed computation, an unusable backend and a cancelled call (ggml_family.register sets the host's own).
    """

def ggml_version() -> str:
    """Version of the family ggml this package was built with."""

def fingerprint() -> str:
    """
    The ggml ABI fingerprint of this build (backend modules must carry the same one).
    """

def backend_api_version() -> int:
    """ggml's GGML_BACKEND_API_VERSION at build time."""

def family_api() -> int:
    """The ggml_family API version this extension speaks (GGML_FAMILY_API)."""

def module_score(path: str) -> tuple[int, str]:
    """
    Open a backend module, ask its ggml_backend_score (0: cannot run on this machine) and close it again. Returns (score, error); score is -1 when it cannot be opened.
    """

def backend_load(path: str) -> tuple[str, list[str]]:
    """
    Load a backend module by path into ggml's registry. Returns the backend's name and the warning/error lines ggml logged while loading it (e.g. a missing driver).
    """

def backend_registered(name: str) -> bool:
    """Whether a backend with this name is in the registry."""

def backends() -> list[dict[str, Any]]:
    """
    Registered backends: name, devices (name, description, type, memory) and features.
    """

def device_memory(name: str) -> tuple[int, int]:
    """(free, total) bytes of a device's memory (an RPC server's: asked)."""

def rpc_add_server(endpoint: str) -> list[str]:
    """
    Connect to an RPC server (host:port) and register its devices; returns their names. BackendError when it cannot be reached or speaks another protocol version.
    """

def rpc_start_server(endpoint: str, cache_dir: str, n_threads: int, devices: Sequence[str]) -> None:
    """
    Serve these devices over ggml's RPC protocol at endpoint (host:port), the tensor cache in cache_dir (empty: none). Blocks (without the GIL) while it serves; raises BackendError when it cannot listen.
    """

class FullParams:
    """The settings of one whisper_full run (see cywhisper.Decoding)."""

    def __init__(self) -> None: ...

    @property
    def n_threads(self) -> int:
        """CPU threads"""

    @n_threads.setter
    def n_threads(self, arg: int, /) -> None: ...

    @property
    def language(self) -> str:
        """language code, or 'auto' to detect it"""

    @language.setter
    def language(self, arg: str, /) -> None: ...

    @property
    def translate(self) -> bool:
        """translate into English"""

    @translate.setter
    def translate(self, arg: bool, /) -> None: ...

    @property
    def initial_prompt(self) -> str:
        """text conditioning the first window; empty: none"""

    @initial_prompt.setter
    def initial_prompt(self, arg: str, /) -> None: ...

    @property
    def beam_size(self) -> int:
        """beam search with this many beams; 0: greedy"""

    @beam_size.setter
    def beam_size(self, arg: int, /) -> None: ...

    @property
    def temperature(self) -> float:
        """sampling temperature of the first attempt"""

    @temperature.setter
    def temperature(self, arg: float, /) -> None: ...

    @property
    def fallback(self) -> bool:
        """decode a failed window again at a higher temperature"""

    @fallback.setter
    def fallback(self, arg: bool, /) -> None: ...

    @property
    def token_timestamps(self) -> bool:
        """time every token"""

    @token_timestamps.setter
    def token_timestamps(self, arg: bool, /) -> None: ...

    @property
    def max_len(self) -> int:
        """longest segment in characters; 0: no limit"""

    @max_len.setter
    def max_len(self, arg: int, /) -> None: ...

    @property
    def split_on_word(self) -> bool:
        """split segments at word boundaries (max_len)"""

    @split_on_word.setter
    def split_on_word(self, arg: bool, /) -> None: ...

    @property
    def vad_model(self) -> str:
        """Silero VAD model file; empty: no VAD"""

    @vad_model.setter
    def vad_model(self, arg: str, /) -> None: ...

    def __repr__(self) -> str: ...

class Whisper:
    """A loaded whisper.cpp model with its decoding state."""

    def __init__(self, path: str, use_gpu: bool = False, flash_attn: bool = True, gpu_device: int = 0) -> None: ...

    @property
    def path(self) -> str: ...

    def full(self, pcm: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], params: FullParams, on_segment: object | None = None, on_progress: object | None = None) -> int:
        """
        Transcribe 16 kHz mono float32 samples; returns the number of segments.
        """

    def segment(self, index: int) -> tuple[Any, ...]:
        """Segment i of the last full() call."""

    def n_segments(self) -> int: ...

    def lang_id(self) -> int:
        """Language id of the last full() call."""

    def cancel(self) -> None:
        """Ask a running full() (in another thread) to stop at the next step."""

    def detect_language(self, pcm: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_threads: int, offset_ms: int = 0) -> list[float]:
        """Probability of each language id for the first 30 s."""

    @property
    def is_multilingual(self) -> bool: ...

    @property
    def model_type(self) -> str: ...

    @property
    def token_eot(self) -> int: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def n_text_ctx(self) -> int: ...

    @property
    def n_mels(self) -> int: ...

    def timings(self) -> dict[str, float]:
        """
        whisper.cpp's per-step timings of the last run (averages per call, ms).
        """

def lang_max_id() -> int: ...

def lang_id(code: str) -> int:
    """
    Language id of a code ("en") or English name ("english"); -1 if unknown.
    """

def lang_str(id: int) -> str: ...

def lang_str_full(id: int) -> str: ...

def whisper_version() -> str: ...

def whisper_system_info() -> str: ...
