"""Command line: ``python -m cyllama info`` and ``python -m cyllama generate MODEL PROMPT``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence


def _print_info(as_json: bool, model: str | None, n_gpu_layers: int | None) -> None:
    import cyllama

    data = cyllama.info()
    if model is not None:
        llm = cyllama.LLM(model, n_ctx=256, n_gpu_layers=n_gpu_layers)
        data["model"] = {"path": model, "description": llm.description,
                         "n_gpu_layers": llm.n_gpu_layers, "layers": llm.layer_devices}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(f"cyllama {data['cyllama']}")
    print(f"ggml {data['ggml_version']}  ABI fingerprint {data['fingerprint']}  "
          f"backend API {data['backend_api_version']}")
    print(f"CPU module: {data['cpu_module']} (loaded by {data['cpu_module_loaded_by']})")
    scores = data["cpu_scores"]
    assert isinstance(scores, dict)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    print("CPU variants (score, 0 = cannot run here): "
          + ", ".join(f"{name} {score}" for name, score in ranked))
    plugins = data["plugins"]
    assert isinstance(plugins, list)
    print("Plugins (entry points 'ggml.backends'):" + ("" if plugins else " none installed"))
    for p in plugins:
        reason = f": {p['reason']}" if p["reason"] else ""
        print(f"  {p['name']} ({p['distribution']} {p['version']}, fingerprint "
              f"{p['fingerprint']}): {p['state']}{reason}")
    print("Registered backends:")
    backends = data["backends"]
    assert isinstance(backends, list)
    for reg in backends:
        print(f"  {reg['name']}")
        for dev in reg["devices"]:
            mem = dev["memory_total"] / 2**30
            print(f"    device {dev['name']} [{dev['type']}] {dev['description']}, "
                  f"{mem:.1f} GiB")
        if reg["features"]:
            print("    features: " + " ".join(k for k, v in reg["features"] if v == "1"))
    if "model" in data:
        m = data["model"]
        assert isinstance(m, dict)
        print(f"Model {m['path']} ({m['description']}), n_gpu_layers={m['n_gpu_layers']}:")
        for dev, n in m["layers"].items():
            print(f"  {n} layers on {dev}")


def _generate(args: argparse.Namespace) -> None:
    from cyllama import LLM

    llm = LLM(args.model, n_ctx=args.n_ctx, n_threads=args.threads,
              n_gpu_layers=args.n_gpu_layers)
    start = time.perf_counter()
    text = llm.generate(args.prompt, max_tokens=args.max_tokens)
    elapsed = time.perf_counter() - start
    print(args.prompt + text)
    if args.verbose:
        print(f"[{elapsed:.2f} s]", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cyllama", description="llama.cpp from Python")
    parser.add_argument("-v", "--verbose", action="store_true", help="show ggml's log")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="ggml build, CPU module and devices")
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_info.add_argument("--model", help="also load this model and show where its layers run")
    p_info.add_argument("--n-gpu-layers", type=int, default=None)
    p_gen = sub.add_parser("generate", help="continue a prompt (greedy)")
    p_gen.add_argument("model", help="GGUF model file")
    p_gen.add_argument("prompt")
    p_gen.add_argument("-n", "--max-tokens", type=int, default=64)
    p_gen.add_argument("-t", "--threads", type=int, default=None)
    p_gen.add_argument("-c", "--n-ctx", type=int, default=2048)
    p_gen.add_argument("-ngl", "--n-gpu-layers", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(name)s: %(message)s")
    import cyllama

    cyllama._backends.sync_log_level()
    if args.command == "info":
        _print_info(args.json, args.model, args.n_gpu_layers)
    else:
        _generate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
