"""The ``cysd`` command (also ``python -m cysd``): txt2img, img2img, upscale, info."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _save(images: list[Any], output: str) -> None:
    from PIL import Image

    out = Path(output)
    for i, image in enumerate(images):
        path = out if len(images) == 1 else out.with_name(f"{out.stem}-{i}{out.suffix}")
        (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path)
        print(path)


def _model(args: argparse.Namespace) -> Any:
    import cysd

    return cysd.StableDiffusion(args.model, diffusion_model=args.diffusion_model,
                                vae=args.vae, clip_l=args.clip_l, clip_g=args.clip_g,
                                t5xxl=args.t5xxl, taesd=args.taesd, lora_dir=args.lora_dir,
                                n_threads=args.threads, vae_tiling=args.vae_tiling,
                                rng=args.rng, use_gpu=args.use_gpu, rpc=args.rpc)


def _progress(quiet: bool) -> Any:
    start = time.perf_counter()

    def show(step: int, steps: int, seconds: float) -> None:
        if not quiet:
            print(f"\rstep {step}/{steps}  {seconds:.2f} s/step  "
                  f"{time.perf_counter() - start:.1f} s", end="\n" if step == steps else "",
                  file=sys.stderr, flush=True)

    return show


def _sampling(args: argparse.Namespace) -> dict[str, Any]:
    return {"steps": args.steps, "cfg_scale": args.cfg_scale, "sampler": args.sampler,
            "scheduler": args.scheduler, "seed": args.seed, "batch_count": args.batch_count,
            "progress": _progress(args.quiet)}


def _txt2img(args: argparse.Namespace) -> None:
    images = _model(args).txt2img(args.prompt, args.negative_prompt, width=args.width,
                                  height=args.height, **_sampling(args))
    _save(images, args.output)


def _img2img(args: argparse.Namespace) -> None:
    sd = _model(args)
    if args.mask:
        images = sd.inpaint(args.image, args.mask, args.prompt, args.negative_prompt,
                            strength=args.strength, **_sampling(args))
    else:
        images = sd.img2img(args.image, args.prompt, args.negative_prompt,
                            strength=args.strength, **_sampling(args))
    _save(images, args.output)


def _upscale(args: argparse.Namespace) -> None:
    import cysd

    image = cysd.Upscaler(args.model, n_threads=args.threads,
                          use_gpu=args.use_gpu, rpc=args.rpc)(args.image, factor=args.factor)
    _save([image], args.output)


def _add_gpu(p: Any) -> None:
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="run on a GPU plugin's device (default: when one is installed)")
    p.add_argument("--rpc", metavar="HOST:PORT", help="run on the first device of this RPC "
                   "server (python -m ggml_family rpc-server)")


def _add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("-m", "--model", help="full checkpoint (GGUF, safetensors, ckpt)")
    g.add_argument("--diffusion-model", help="diffusion model alone (UNet/DiT)")
    g.add_argument("--vae")
    g.add_argument("--clip-l")
    g.add_argument("--clip-g")
    g.add_argument("--t5xxl")
    g.add_argument("--taesd", help="tiny autoencoder used instead of the VAE")
    g.add_argument("--lora-dir", help="folder for <lora:NAME:WEIGHT> in the prompt")
    g.add_argument("--rng", default="cuda", help="noise generator: cuda, std_default, cpu")
    g.add_argument("--vae-tiling", action="store_true")
    _add_gpu(g)
    s = p.add_argument_group("sampling")
    s.add_argument("-n", "--negative-prompt", default="")
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--cfg-scale", type=float, default=7.0)
    s.add_argument("--sampler", default=None, help="default: the model's")
    s.add_argument("--scheduler", default=None, help="default: the model's")
    s.add_argument("-s", "--seed", type=int, default=42)
    s.add_argument("-b", "--batch-count", type=int, default=1)
    p.add_argument("-t", "--threads", type=int, default=None)
    p.add_argument("-o", "--output", default="output.png", help="PNG/JPEG file (batch: -N)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cysd`` console script (also ``python -m cysd``)."""
    from ggml_family.cli import command_parser, run_main

    parser, sub = command_parser("cysd", "stable-diffusion.cpp from Python")
    p_t2i = sub.add_parser("txt2img", help="generate images from a prompt")
    p_t2i.add_argument("prompt")
    p_t2i.add_argument("-W", "--width", type=int, default=512)
    p_t2i.add_argument("-H", "--height", type=int, default=512)
    _add_model(p_t2i)
    p_i2i = sub.add_parser("img2img", help="redraw an image (inpaint with --mask)")
    p_i2i.add_argument("image")
    p_i2i.add_argument("prompt")
    p_i2i.add_argument("--strength", type=float, default=0.75)
    p_i2i.add_argument("--mask", help="white = repaint, black = keep")
    _add_model(p_i2i)
    p_up = sub.add_parser("upscale", help="upscale an image with an ESRGAN model")
    p_up.add_argument("image")
    p_up.add_argument("-m", "--model", required=True, help="ESRGAN model (.pth, safetensors)")
    p_up.add_argument("--factor", type=int, default=None, help="default: the model's scale")
    p_up.add_argument("-t", "--threads", type=int, default=None)
    _add_gpu(p_up)
    p_up.add_argument("-o", "--output", default="upscaled.png")
    args = parser.parse_args(argv)
    from ._images import have_pil

    if args.command != "info" and not have_pil():  # before minutes of generation, not after
        print(f"cysd {args.command}: reading and writing image files needs Pillow: "
              "pip install 'cysd[pil]'", file=sys.stderr)
        return 1
    return run_main("cysd", args, {"txt2img": lambda: _txt2img(args),
                                   "img2img": lambda: _img2img(args),
                                   "upscale": lambda: _upscale(args)})


if __name__ == "__main__":
    sys.exit(main())
