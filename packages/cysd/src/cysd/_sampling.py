"""Sampling settings of the denoising loop: one validated, immutable dataclass that txt2img,
img2img and inpaint share."""

from __future__ import annotations

from dataclasses import dataclass

from ggml_family.checks import check_choice, check_float, check_int

from . import _core

__all__ = ["SAMPLERS", "SCHEDULERS", "Sampling"]

#: Sampler names stable-diffusion.cpp knows (``None`` picks the model's default).
SAMPLERS: tuple[str, ...] = tuple(_core.sample_methods())
#: Scheduler names stable-diffusion.cpp knows (``None`` picks the model's default).
SCHEDULERS: tuple[str, ...] = tuple(_core.schedulers())


@dataclass(frozen=True)
class Sampling:
    """How an image is sampled; checked when made (``Sampling(steps=0)`` raises).

    Pass one to :meth:`StableDiffusion.txt2img` (and ``img2img``, ``inpaint``), or give its
    fields as keywords (``txt2img(prompt, steps=4)``), which override the object's.

    Attributes:
        steps: denoising steps (1 to 1000).
        cfg_scale: classifier-free guidance: how closely the image follows the prompt (0 to 100).
        sampler: one of :data:`SAMPLERS`; None: the model's default
            (:attr:`StableDiffusion.default_sampler`).
        scheduler: one of :data:`SCHEDULERS`; None: the default for the sampler.
        seed: the noise seed (0 to 2**63-1); the same seed and settings give the same pixels.
            None draws a random seed for every call.
        batch_count: how many images one call makes (1 to 64), with seeds seed, seed+1, ...
        clip_skip: how many of CLIP's last layers to skip (up to 12); -1: the model's default.
        eta: the noise of the ancestral and DDIM-like samplers (0 to 10); None: the sampler's
            default.
    """

    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str | None = None
    scheduler: str | None = None
    seed: int | None = 42
    batch_count: int = 1
    clip_skip: int = -1
    eta: float | None = None

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, 1000)
        object.__setattr__(self, "cfg_scale", check_float("cfg_scale", self.cfg_scale, 0, 100))
        if self.sampler is not None:
            check_choice("sampler", self.sampler, SAMPLERS)
        if self.scheduler is not None:
            check_choice("scheduler", self.scheduler, SCHEDULERS)
        if self.seed is not None:
            check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("batch_count", self.batch_count, 1, 64)
        check_int("clip_skip", self.clip_skip, -1, 12)
        if self.eta is not None:
            object.__setattr__(self, "eta", check_float("eta", self.eta, 0, 10))
