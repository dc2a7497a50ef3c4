"""
stable-diffusion.cpp on the family ggml (internal; use the cysd package).
"""

from typing import Any


class ModelLoadError(RuntimeError):
    """A model file could not be read or is not a valid model."""

class ComputeError(RuntimeError):
    """A compute call (decode, encode, sampling) failed."""

class BackendError(RuntimeError):
    """A ggml backend could not be loaded or used."""

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

def set_log_handler(handler: object | None, min_level: int = 3) -> None:
    """
    Route ggml's (and the library's) log lines to handler(level, line), or to stderr with None. Lines below min_level are dropped before reaching Python.
    """

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

class Cancelled(RuntimeError):
    pass

class Context:
    """A loaded stable-diffusion.cpp model (sd_ctx_t)."""

    def __init__(self, options: dict[str, Any]) -> None: ...

    def spatial_multiple(self) -> int:
        """Image sides must be multiples of this."""

    def default_sampler(self) -> str: ...

    def default_scheduler(self, sampler: str) -> str: ...

    def generate(self, options: dict[str, Any], progress: object | None) -> list[tuple[int, int, int, bytes]]:
        """Run generate_image; returns [(width, height, channels, bytes)]."""

class Upscaler:
    """A loaded ESRGAN model (upscaler_ctx_t)."""

    def __init__(self, path: str, n_threads: int, tile_size: int, offload_params_to_cpu: bool, direct: bool, device: str) -> None: ...

    @property
    def factor(self) -> int: ...

    def upscale(self, image: tuple[int, int, int, bytes], factor: int) -> tuple[int, int, int, bytes]: ...

def sample_methods() -> list[str]: ...

def schedulers() -> list[str]: ...

def weight_types() -> list[tuple[str, int]]: ...

def rng_types() -> list[str]: ...

def convert(input: str, vae: str, output: str, type: int, rules: str) -> None: ...

def architecture_tensors(part: str) -> list[tuple[str, list[int], str]]:
    """
    The tensors (name, shape ne0..ne3, ggml type name) stable-diffusion.cpp creates for one architecture part: 'sd1-tiny-unet', 'sdxs-512-unet', 'clip-l', 'taesd', 'esrgan-x2-1', 'esrgan-x4-1' (x scale, RRDB blocks).
    """

def sd_version() -> str: ...

def sd_commit() -> str: ...

def sd_system_info() -> str: ...

def physical_cores() -> int: ...
