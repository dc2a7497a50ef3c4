"""StableDiffusion (txt2img, img2img, inpainting, LoRAs from the prompt) and ESRGAN upscaling."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ggml_family
from ggml_family.checks import (
    check_choice,
    check_float,
    check_int,
    check_settings,
    check_threads,
    read_head,
)

from . import _core
from ._errors import ImageError, ModelLoadError
from ._images import ImageInput, RawImage, from_raw, have_pil, to_raw
from ._sampling import Sampling

__all__ = ["StableDiffusion", "Upscaler", "upscale"]

_WEIGHT_TYPES: dict[str, int] = dict(_core.weight_types())
_RNGS: tuple[str, ...] = tuple(_core.rng_types())

#: progress(step, steps, seconds_per_step): return False to cancel.
Progress = Callable[[int, int, float], object]

_MAX_SIDE = 16384
# The model files a context can be made of, in StableDiffusion's parameter order.
_PARTS = ("model", "diffusion_model", "vae", "clip_l", "clip_g", "t5xxl", "taesd")
_LORA = re.compile(r"<lora:([^:>]+):([^>]+)>")
_LORA_SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt")

# Model files: GGUF, safetensors (u64 header size, then JSON) or PyTorch (zip or pickle).
_KINDS = {b"GGUF": "GGUF", b"PK\x03\x04": "PyTorch zip", b"\x80\x02": "PyTorch pickle"}


def _check_model(path: str | os.PathLike[str], what: str) -> str:
    p, head = read_head(path, what, 9)
    if not head:
        raise ModelLoadError(f"{what} file {p} is empty")
    if head[:4] in _KINDS or head[:2] in _KINDS:
        return str(p)
    if len(head) == 9 and head[8:9] == b"{":
        header = int.from_bytes(head[:8], "little")
        if 8 + header > p.stat().st_size:
            raise ModelLoadError(f"{what} file {p} is truncated: its safetensors header alone "
                                 f"needs {8 + header} bytes, the file has {p.stat().st_size}")
        return str(p)
    raise ModelLoadError(f"{what} file {p} is not a model stable-diffusion.cpp reads (GGUF, "
                         f"safetensors or PyTorch checkpoint); it starts with {head[:8]!r}")


def _check_strength(value: object) -> float:
    return check_float("strength", value, 0.0, 1.0, low_open=True)


def _check_size(name: str, value: object, multiple: int) -> int:
    v = check_int(name, value, 1, _MAX_SIDE)
    if v % multiple:
        raise ValueError(f"{name} must be a multiple of {multiple} for this model, got {v} (try "
                         f"{max(multiple, round(v / multiple) * multiple)})")
    return v


class StableDiffusion:
    """A stable-diffusion.cpp model, loaded once, generating many images.

    Args:
        model: a full checkpoint (GGUF, safetensors or .ckpt) with UNet/DiT, VAE and text
            encoders; or leave it out and give the parts below.
        diffusion_model: the diffusion model alone (UNet or DiT: Flux, SD3, ...).
        vae: a VAE replacing (or completing) the checkpoint's.
        clip_l, clip_g, t5xxl: text encoders for models that keep them separate.
        taesd: a TAESD (tiny autoencoder) used instead of the VAE: much faster decoding.
        lora_dir: where ``<lora:NAME:WEIGHT>`` in a prompt looks for NAME(.safetensors|.gguf|...).
        n_threads: CPU threads (default: every core).
        vae_tiling: decode in tiles (large images in less memory).
        weight_type: convert weights on load (``"q8_0"``, ``"f16"``, ...); default as stored.
        rng: the noise generator: ``"cuda"`` (default; the same images as on a GPU),
            ``"std_default"`` or ``"cpu"``.
        flash_attn: use flash attention in the diffusion model and text encoders.
        use_gpu: run on the GPU of a plugin (``pip install 'cysd[cuda]'``). The default uses one
            when present; ``True`` without one raises BackendError, ``False`` stays on the CPU.
        offload_params_to_cpu, keep_clip_on_cpu, keep_vae_on_cpu: keep weights in RAM when a GPU
            plugin is in use.
        mmap: map model files instead of reading them.
        rpc: an RPC server (``"host:port"``, ``python -m ggml_family rpc-server``) whose (first)
            device runs the model instead of this machine's: a GPU in another machine.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *,
                 diffusion_model: str | os.PathLike[str] | None = None,
                 vae: str | os.PathLike[str] | None = None,
                 clip_l: str | os.PathLike[str] | None = None,
                 clip_g: str | os.PathLike[str] | None = None,
                 t5xxl: str | os.PathLike[str] | None = None,
                 taesd: str | os.PathLike[str] | None = None,
                 lora_dir: str | os.PathLike[str] | None = None,
                 n_threads: int | None = None, vae_tiling: bool = False,
                 weight_type: str | None = None, rng: str = "cuda", flash_attn: bool = False,
                 offload_params_to_cpu: bool = False, keep_clip_on_cpu: bool = False,
                 keep_vae_on_cpu: bool = False, mmap: bool = False,
                 use_gpu: bool | None = None, rpc: str | None = None) -> None:
        if model is None and diffusion_model is None:
            raise ValueError("give a model (a full checkpoint) or a diffusion_model")
        #: The model files in use, by part.
        given = (model, diffusion_model, vae, clip_l, clip_g, t5xxl, taesd)
        self.paths = {key: _check_model(path, key) for key, path in zip(_PARTS, given, strict=True)
                      if path is not None}
        if lora_dir is not None:
            lora_path = Path(lora_dir)
            if not lora_path.is_dir():
                raise NotADirectoryError(20, "lora_dir is not a directory", str(lora_path))
        self.lora_dir = Path(lora_dir) if lora_dir is not None else None
        self.n_threads = check_threads("n_threads", n_threads)
        if weight_type is not None:
            check_choice("weight_type", weight_type, tuple(_WEIGHT_TYPES))
        check_choice("rng", rng, _RNGS)
        self.vae_tiling = bool(vae_tiling)
        #: The ggml device the model runs on ("CPU", "CUDA0", "RPC0", ...).
        self.device = ggml_family.host("cysd").choose_device(use_gpu, rpc)
        parts = {key: self.paths.get(key, "") for key in _PARTS}
        self._ctx = _core.Context(ggml_family.params(
            _core.ContextParams, **parts, n_threads=self.n_threads,
            wtype=-1 if weight_type is None else _WEIGHT_TYPES[weight_type],
            rng=_RNGS.index(rng), flash_attn=bool(flash_attn),
            offload_params_to_cpu=bool(offload_params_to_cpu),
            keep_clip_on_cpu=bool(keep_clip_on_cpu), keep_vae_on_cpu=bool(keep_vae_on_cpu),
            mmap=bool(mmap), device=self.device))
        self._cancel = threading.Event()
        #: Image sides must be multiples of this: the VAE's scale times the diffusion model's
        #: down-sampling (64 for SD1/SD2/SDXL UNets, 16 for Flux).
        self.size_multiple: int = self._ctx.spatial_multiple()

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={Path(v).name!r}" for k, v in self.paths.items())
        return f"StableDiffusion({parts}, device={self.device!r})"

    @property
    def default_sampler(self) -> str:
        """The sampler used when ``sampler=None`` (stable-diffusion.cpp's choice for the model)."""
        return self._ctx.default_sampler()

    def default_scheduler(self, sampler: str | None = None) -> str:
        """The scheduler used when ``scheduler=None`` with this sampler."""
        return self._ctx.default_scheduler(sampler or self.default_sampler)

    def cancel(self) -> None:
        """Stop the generation running in another thread at its next step (it raises
        :class:`cysd.Cancelled`)."""
        self._cancel.set()

    def txt2img(self, prompt: str, negative_prompt: str = "", *, width: int = 512,
                height: int = 512, sampling: Sampling | None = None,
                progress: Progress | None = None, as_pil: bool | None = None,
                **options: Any) -> list[Any]:
        """Generate ``sampling.batch_count`` images of width x height from a prompt.

        ``sampling`` (:class:`Sampling`: steps, cfg_scale, sampler, scheduler, seed ...) says
        how; its fields may also be given as keywords (``steps=4``), overriding the object's.
        Returns PIL images (RGB) when Pillow is installed (or ``as_pil=True``), else NumPy
        arrays HxWx3 uint8. ``progress(step, steps, seconds_per_step)`` is called once per
        sampling step; returning False cancels (raises :class:`cysd.Cancelled`).
        """
        s = check_settings("sampling", sampling, Sampling, options)
        return self._generate(prompt, negative_prompt, s, width, height, progress, as_pil)

    def img2img(self, image: ImageInput, prompt: str, negative_prompt: str = "", *,
                strength: float = 0.75, sampling: Sampling | None = None,
                progress: Progress | None = None, as_pil: bool | None = None,
                **options: Any) -> list[Any]:
        """Redraw an RGB image (its sides: multiples of :attr:`size_multiple`) guided by a
        prompt. ``strength`` in (0, 1]: how far from the image the result may go (1: nothing of
        it is kept). The other arguments are :meth:`txt2img`'s."""
        s = check_settings("sampling", sampling, Sampling, options)
        init = self._fit(to_raw(image, "image"))
        return self._generate(prompt, negative_prompt, s, init[0], init[1], progress, as_pil,
                              init=init, strength=_check_strength(strength))

    def inpaint(self, image: ImageInput, mask: ImageInput, prompt: str,
                negative_prompt: str = "", *, strength: float = 1.0,
                sampling: Sampling | None = None, progress: Progress | None = None,
                as_pil: bool | None = None, **options: Any) -> list[Any]:
        """Repaint the parts of an RGB image where ``mask`` (one channel, same size) is white;
        black parts are kept. The other arguments are :meth:`img2img`'s."""
        s = check_settings("sampling", sampling, Sampling, options)
        init = to_raw(image, "image")
        mask_raw = to_raw(mask, "mask")
        if mask_raw[:2] != init[:2]:
            raise ImageError(f"mask is {mask_raw[0]}x{mask_raw[1]}, the image "
                             f"{init[0]}x{init[1]}: they must be the same size")
        self._fit(init)
        return self._generate(prompt, negative_prompt, s, init[0], init[1], progress, as_pil,
                              init=init, mask=mask_raw, strength=_check_strength(strength))

    def _fit(self, init: RawImage) -> RawImage:
        """``init`` (a starting image), checked that its sides fit the model."""
        _check_size("image width", init[0], self.size_multiple)
        _check_size("image height", init[1], self.size_multiple)
        return init

    def _loras(self, prompt: str) -> tuple[str, list[tuple[str, float]]]:
        """Take ``<lora:NAME:WEIGHT>`` tags out of the prompt; resolve NAME in lora_dir."""
        found: dict[str, float] = {}
        for name, weight in _LORA.findall(prompt):
            try:
                w = float(weight)
            except ValueError:
                raise ValueError(f"LoRA {name!r} in the prompt has weight {weight!r}, not a "
                                 "number") from None
            path = Path(name)
            if not path.is_absolute():
                if self.lora_dir is None:
                    raise ValueError(f"the prompt asks for LoRA {name!r} but no lora_dir was "
                                     "given to StableDiffusion()")
                path = self.lora_dir / name
            if not path.is_file():
                candidates = (path.with_name(path.name + s) for s in _LORA_SUFFIXES)
                path = next((c for c in candidates if c.is_file()), path)
            if not path.is_file():
                raise FileNotFoundError(2, f"LoRA {name!r} not found (tried "
                                        f"{', '.join(_LORA_SUFFIXES)})", str(path))
            _check_model(path, f"LoRA {name!r}")
            key = str(path.resolve())
            found[key] = found.get(key, 0.0) + w
        return _LORA.sub("", prompt), list(found.items())

    def _generate(self, prompt: str, negative_prompt: str, sampling: Sampling, width: int,
                  height: int, progress: Progress | None, as_pil: bool | None, *,
                  init: RawImage | None = None, mask: RawImage | None = None,
                  strength: float = 0.75) -> list[Any]:
        for name, text in (("prompt", prompt), ("negative_prompt", negative_prompt)):
            if not isinstance(text, str):
                raise TypeError(f"{name} must be a str, not {type(text).__name__}")
        width = _check_size("width", width, self.size_multiple)
        height = _check_size("height", height, self.size_multiple)
        if progress is not None and not callable(progress):
            raise TypeError("progress must be callable(step, steps, seconds_per_step)")
        if as_pil and not have_pil():
            raise ImportError("as_pil=True needs Pillow: pip install cysd[pil]")
        clean_prompt, loras = self._loras(prompt)
        seed = secrets.randbelow(2**31) if sampling.seed is None else sampling.seed
        fields = dataclasses.asdict(sampling)
        fields.update(sampler=sampling.sampler or "", scheduler=sampling.scheduler or "",
                      seed=seed)
        params = ggml_family.params(
            _core.GenerateParams, **fields, prompt=clean_prompt,
            negative_prompt=negative_prompt, width=width, height=height, strength=strength,
            vae_tiling=self.vae_tiling, loras=loras)
        self._cancel.clear()
        cancel = self._cancel

        def on_step(step: int, total: int, seconds: float) -> bool:
            if progress is not None and progress(step, total, seconds) is False:
                return False
            return not cancel.is_set()

        raws = self._ctx.generate(params, init, mask, on_step)
        pil = have_pil() if as_pil is None else as_pil
        return [from_raw(r, pil) for r in raws]


class Upscaler:
    """An ESRGAN model (RealESRGAN_x4plus and the like; .pth, safetensors or GGUF), loaded once.
    The scale (1, 2 or 4) and block count are read from the weights."""

    def __init__(self, model: str | os.PathLike[str], *, n_threads: int | None = None,
                 tile_size: int = 128, offload_params_to_cpu: bool = False,
                 direct: bool = False, use_gpu: bool | None = None,
                 rpc: str | None = None) -> None:
        self.path = _check_model(model, "ESRGAN model")
        self.n_threads = check_threads("n_threads", n_threads)
        check_int("tile_size", tile_size, 16, 4096)
        #: The ggml device the model runs on (``use_gpu`` and ``rpc`` as for
        #: :class:`StableDiffusion`).
        self.device = ggml_family.host("cysd").choose_device(use_gpu, rpc)
        self._ctx = _core.Upscaler(self.path, n_threads=self.n_threads, tile_size=tile_size,
                                   offload_params_to_cpu=bool(offload_params_to_cpu),
                                   direct=bool(direct), device=self.device)

    @property
    def factor(self) -> int:
        """How many times larger the model makes an image (per side)."""
        return int(self._ctx.factor)

    def __call__(self, image: ImageInput, *, factor: int | None = None,
                 as_pil: bool | None = None) -> Any:
        """Upscale an RGB image; ``factor`` (default: the model's) may repeat the model."""
        raw = to_raw(image, "image")
        f = self.factor if factor is None else check_int("factor", factor, 1, 16)
        out = self._ctx.upscale(raw, f)
        return from_raw(out, have_pil() if as_pil is None else as_pil)


def upscale(image: ImageInput, model: str | os.PathLike[str], *, factor: int | None = None,
            n_threads: int | None = None, tile_size: int = 128, use_gpu: bool | None = None,
            as_pil: bool | None = None) -> Any:
    """Upscale an RGB image with an ESRGAN model (see :class:`Upscaler` to reuse one)."""
    return Upscaler(model, n_threads=n_threads, tile_size=tile_size,
                    use_gpu=use_gpu)(image, factor=factor, as_pil=as_pil)
