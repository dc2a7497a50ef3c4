#!/usr/bin/env python3
"""cysd against sd-cli: same pinned stable-diffusion.cpp, same model, prompt, size, steps,
sampler, seed and threads; and the same pixels.

Runs alternate (who goes first alternates too), each in a fresh process: ``sd-cli`` generating
one image into a PNG, then ``cysd`` doing the same through ``StableDiffusion.txt2img`` and
saving a PNG. Timed is the generation with the model loaded: for sd-cli its own
``generate_image completed in`` (conditioning, sampling, decoding), for cysd the wall time of
``txt2img`` (the same work plus building the PIL image); sd.cpp's own figure is printed for
both as well (cysd's from its log). Whole processes (start, model load, generation, PNG) are
timed too. Every run's pixels are compared with sd-cli's first: the
benchmark fails if any differ. Prints the medians and the ratios cysd / sd-cli (lower is better
for cysd).

    python tools/bench/sd_bench.py --sd-cli build/bench/bin/sd-cli [--model M --taesd T]

Without ``--model`` the tiny random-weight SDXS checkpoint of the tests (tools/fixtures/tiny_sd.py,
with its TAESD) is used: no Stable Diffusion model is on PyPI. Its UNet is the real SDXS-512
architecture (the cost per step is a real model's), its weights random.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_WORKER = """
import json, logging, re, sys, time
import cysd, ggml_family
inner = []
class Grab(logging.Handler):
    def emit(self, record):
        m = re.search(r"generate_image completed in ([\\d.]+)s", record.getMessage())
        if m:
            inner.append(float(m.group(1)) * 1e3)
logger = logging.getLogger("cysd.ggml")
logger.setLevel(logging.INFO)
logger.addHandler(Grab())
logger.propagate = False
ggml_family.sync_log_levels()
model, taesd, out, prompt = sys.argv[1:5]
width, height, steps, seed, threads = map(int, sys.argv[5:10])
sampler = sys.argv[10]
t0 = time.perf_counter()
sd = cysd.StableDiffusion(model, taesd=taesd or None, n_threads=threads)
t1 = time.perf_counter()
(image,) = sd.txt2img(prompt, width=width, height=height, steps=steps, seed=seed,
                      sampler=sampler, as_pil=True)
t2 = time.perf_counter()
image.save(out)
print(json.dumps({"load_ms": (t1 - t0) * 1e3, "generate_ms": (t2 - t1) * 1e3,
                  "inner_ms": inner[-1]}))
"""


def pixels(path: Path) -> bytes:
    from PIL import Image

    with Image.open(path) as im:
        data: bytes = im.convert("RGB").tobytes()
    return data


def run_cli(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [str(args.sd_cli), "-m", str(args.model), "-p", args.prompt, "-W", str(args.width),
           "-H", str(args.height), "--steps", str(args.steps), "-s", str(args.seed),
           "-t", str(args.threads), "--sampling-method", args.sampler, "-o", str(out)]
    if args.taesd:
        cmd += ["--taesd", str(args.taesd)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1e3
    log = proc.stdout + proc.stderr
    m = re.search(r"generate_image completed in ([\d.]+)s", log)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"sd-cli failed ({proc.returncode}):\n{log[-3000:]}")
    ms = float(m.group(1)) * 1e3
    return {"generate_ms": ms, "inner_ms": ms, "wall_ms": wall}


def run_cysd(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    argv = [str(args.model), str(args.taesd or ""), str(out), args.prompt, str(args.width),
            str(args.height), str(args.steps), str(args.seed), str(args.threads), args.sampler]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WORKER, *argv], capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"cysd failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    result["wall_ms"] = wall
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sd-cli", type=Path, required=True)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--taesd", type=Path)
    ap.add_argument("--prompt", default="a lighthouse on a cliff at dawn, oil painting")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--sampler", default="euler_a", help="sd-cli's default for SD1: euler_a")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if args.model is None:
        sys.path.insert(0, str(FIXTURES))
        from tiny_sd import tiny_sd

        args.model, args.taesd = tiny_sd()
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    reference: bytes | None = None
    differ: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            cli_png, our_png = Path(tmp) / f"cli-{i}.png", Path(tmp) / f"cysd-{i}.png"
            if i % 2:  # who goes first alternates too
                ours, ref = run_cysd(args, our_png), run_cli(args, cli_png)
            else:
                ref, ours = run_cli(args, cli_png), run_cysd(args, our_png)
            rows.append((ref, ours))
            if reference is None:
                reference = pixels(cli_png)
            for name, png in (("sd-cli", cli_png), ("cysd", our_png)):
                if pixels(png) != reference:
                    differ.append(f"run {i + 1} {name}")
            print(f"run {i + 1}: sd-cli {ref['generate_ms']:.0f} ms | cysd "
                  f"{ours['generate_ms']:.0f} ms (process {ref['wall_ms']:.0f} | "
                  f"{ours['wall_ms']:.0f} ms)", flush=True)
    verdict = "identical" if not differ else "DIFFER: " + ", ".join(differ)
    print(f"\nmodel {args.model.name}, {args.width}x{args.height}, {args.steps} steps "
          f"{args.sampler}, seed {args.seed}, {args.threads} threads, median of {args.runs} "
          f"alternating runs; pixels {verdict}")
    print(f"{'phase':<12}{'sd-cli ms':>12}{'cysd ms':>10}{'ratio':>8}")
    for key, label in (("generate_ms", "generate"), ("inner_ms", "sd.cpp's"),
                       ("wall_ms", "process")):
        ref_ms = statistics.median(r[key] for r, _ in rows)
        our_ms = statistics.median(o[key] for _, o in rows)
        print(f"{label:<12}{ref_ms:>12.0f}{our_ms:>10.0f}{our_ms / ref_ms:>8.3f}")
    pairs = statistics.median(o["generate_ms"] / r["generate_ms"] for r, o in rows)
    print(f"median of the per-run generate ratios: {pairs:.3f}")
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
