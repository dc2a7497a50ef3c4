"""
stable-diffusion.cpp on the family ggml (internal; use the cysd package).
"""

from collections.abc import Sequence
from typing import Any


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

class ContextParams:
    """The settings of a new sd_ctx_t (see StableDiffusion)."""

    def __init__(self) -> None: ...

    @property
    def model(self) -> str:
        """full checkpoint file; empty: not given"""

    @model.setter
    def model(self, arg: str, /) -> None: ...

    @property
    def diffusion_model(self) -> str:
        """diffusion model file (UNet or DiT)"""

    @diffusion_model.setter
    def diffusion_model(self, arg: str, /) -> None: ...

    @property
    def vae(self) -> str:
        """VAE file"""

    @vae.setter
    def vae(self, arg: str, /) -> None: ...

    @property
    def clip_l(self) -> str:
        """CLIP-L text encoder file"""

    @clip_l.setter
    def clip_l(self, arg: str, /) -> None: ...

    @property
    def clip_g(self) -> str:
        """CLIP-G text encoder file"""

    @clip_g.setter
    def clip_g(self, arg: str, /) -> None: ...

    @property
    def t5xxl(self) -> str:
        """T5-XXL text encoder file"""

    @t5xxl.setter
    def t5xxl(self, arg: str, /) -> None: ...

    @property
    def taesd(self) -> str:
        """TAESD (tiny autoencoder) file"""

    @taesd.setter
    def taesd(self, arg: str, /) -> None: ...

    @property
    def n_threads(self) -> int:
        """CPU threads"""

    @n_threads.setter
    def n_threads(self, arg: int, /) -> None: ...

    @property
    def wtype(self) -> int:
        """sd_type_t to convert the weights to; -1: as stored"""

    @wtype.setter
    def wtype(self, arg: int, /) -> None: ...

    @property
    def rng(self) -> int:
        """rng_type_t of the noise"""

    @rng.setter
    def rng(self, arg: int, /) -> None: ...

    @property
    def mmap(self) -> bool:
        """map the model files instead of reading them"""

    @mmap.setter
    def mmap(self, arg: bool, /) -> None: ...

    @property
    def flash_attn(self) -> bool:
        """flash attention in the diffusion model and encoders"""

    @flash_attn.setter
    def flash_attn(self, arg: bool, /) -> None: ...

    @property
    def offload_params_to_cpu(self) -> bool:
        """keep weights in RAM"""

    @offload_params_to_cpu.setter
    def offload_params_to_cpu(self, arg: bool, /) -> None: ...

    @property
    def keep_clip_on_cpu(self) -> bool:
        """run the text encoders on the CPU"""

    @keep_clip_on_cpu.setter
    def keep_clip_on_cpu(self, arg: bool, /) -> None: ...

    @property
    def keep_vae_on_cpu(self) -> bool:
        """run the VAE on the CPU"""

    @keep_vae_on_cpu.setter
    def keep_vae_on_cpu(self, arg: bool, /) -> None: ...

    @property
    def device(self) -> str:
        """ggml device to create the context on"""

    @device.setter
    def device(self, arg: str, /) -> None: ...

    def __repr__(self) -> str: ...

class GenerateParams:
    """One generate_image call (see cysd.Sampling)."""

    def __init__(self) -> None: ...

    @property
    def prompt(self) -> str:
        """the prompt, LoRA tags taken out"""

    @prompt.setter
    def prompt(self, arg: str, /) -> None: ...

    @property
    def negative_prompt(self) -> str:
        """what the image should not show"""

    @negative_prompt.setter
    def negative_prompt(self, arg: str, /) -> None: ...

    @property
    def width(self) -> int:
        """image width in pixels"""

    @width.setter
    def width(self, arg: int, /) -> None: ...

    @property
    def height(self) -> int:
        """image height in pixels"""

    @height.setter
    def height(self, arg: int, /) -> None: ...

    @property
    def steps(self) -> int:
        """denoising steps"""

    @steps.setter
    def steps(self, arg: int, /) -> None: ...

    @property
    def cfg_scale(self) -> float:
        """classifier-free guidance scale"""

    @cfg_scale.setter
    def cfg_scale(self, arg: float, /) -> None: ...

    @property
    def sampler(self) -> str:
        """sampler name; empty: the model's default"""

    @sampler.setter
    def sampler(self, arg: str, /) -> None: ...

    @property
    def scheduler(self) -> str:
        """scheduler name; empty: the sampler's default"""

    @scheduler.setter
    def scheduler(self, arg: str, /) -> None: ...

    @property
    def seed(self) -> int:
        """noise seed"""

    @seed.setter
    def seed(self, arg: int, /) -> None: ...

    @property
    def batch_count(self) -> int:
        """images per call"""

    @batch_count.setter
    def batch_count(self, arg: int, /) -> None: ...

    @property
    def clip_skip(self) -> int:
        """CLIP layers to skip; -1: the model's default"""

    @clip_skip.setter
    def clip_skip(self, arg: int, /) -> None: ...

    @property
    def eta(self) -> float | None:
        """sampler noise; None: the sampler's default"""

    @eta.setter
    def eta(self, arg: float | None, /) -> None: ...

    @property
    def strength(self) -> float:
        """img2img/inpaint: how far from the image to go"""

    @strength.setter
    def strength(self, arg: float, /) -> None: ...

    @property
    def vae_tiling(self) -> bool:
        """decode in tiles"""

    @vae_tiling.setter
    def vae_tiling(self, arg: bool, /) -> None: ...

    @property
    def loras(self) -> list[tuple[str, float]]:
        """(LoRA file, weight) pairs"""

    @loras.setter
    def loras(self, arg: Sequence[tuple[str, float]], /) -> None: ...

    def __repr__(self) -> str: ...

class Context:
    """A loaded stable-diffusion.cpp model (sd_ctx_t)."""

    def __init__(self, params: ContextParams) -> None: ...

    def spatial_multiple(self) -> int:
        """Image sides must be multiples of this."""

    def default_sampler(self) -> str: ...

    def default_scheduler(self, sampler: str) -> str: ...

    def generate(self, params: GenerateParams, init_image: object | None, mask_image: object | None, progress: object | None) -> list[tuple[int, int, int, bytes]]:
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
